package service

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
)

// startService creates and starts a service from cfg and stops it when the
// test ends.
func startService(t *testing.T, cfg *Config) *Service {
	t.Helper()
	return startServiceLog(t, cfg, nil)
}

// startServiceLog is startService with a logger.
func startServiceLog(t *testing.T, cfg *Config, log *slog.Logger) *Service {
	t.Helper()
	svc, err := New(cfg, NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return svc
}

// syncBuffer is a bytes.Buffer a logger and a test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

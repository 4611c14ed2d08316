package service

import (
	"context"
	"log/slog"
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

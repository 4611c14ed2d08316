package service

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The embedded NATS server's and nats.go's background goroutines end
		// shortly after Shutdown/Close; wait for them instead of ignoring them.
		goleak.IgnoreCurrent(),
	)
}

// recorder logs start/stop calls in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, " ")
}

func comp(r *recorder, name string, startErr error) ComponentFuncs {
	return ComponentFuncs{
		ComponentName: name,
		StartFunc: func(context.Context) error {
			r.add("start:" + name)
			return startErr
		},
		StopFunc: func(context.Context) error {
			r.add("stop:" + name)
			return nil
		},
	}
}

func TestGroupOrder(t *testing.T) {
	tests := []struct {
		name       string
		failAt     string
		wantEvents string
		wantErr    string
	}{
		{
			name:       "start in order, stop in reverse",
			wantEvents: "start:nats start:store start:collectors stop:collectors stop:store stop:nats",
		},
		{
			name:       "failure during start stops what started",
			failAt:     "collectors",
			wantEvents: "start:nats start:store start:collectors stop:store stop:nats",
			wantErr:    "start collectors: boom",
		},
		{
			name:       "failure of the first component stops nothing",
			failAt:     "nats",
			wantEvents: "start:nats",
			wantErr:    "start nats: boom",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			var g Group
			for _, n := range []string{"nats", "store", "collectors"} {
				var err error
				if n == tt.failAt {
					err = errors.New("boom")
				}
				g.Add(comp(&r, n, err))
			}
			err := g.Start(context.Background(), time.Second)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Start error = %v, want %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if err := g.Ready(); err != nil {
					t.Fatalf("Ready after start: %v", err)
				}
				if err := g.Stop(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if got := r.String(); got != tt.wantEvents {
				t.Fatalf("events:\n got %s\nwant %s", got, tt.wantEvents)
			}
			if err := g.Stop(context.Background()); err != nil {
				t.Fatalf("second Stop: %v", err)
			}
		})
	}
}

func TestGroupReadyNamesComponent(t *testing.T) {
	var g Group
	notReady := errors.New("replaying WAL")
	g.Add(ComponentFuncs{ComponentName: "store", ReadyFunc: func() error { return notReady }})
	g.Add(ComponentFuncs{ComponentName: "http"})
	if err := g.Ready(); err == nil || !strings.Contains(err.Error(), "store: not started") {
		t.Fatalf("before start: %v", err)
	}
	if err := g.Start(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if err := g.Ready(); !errors.Is(err, notReady) || !strings.Contains(err.Error(), "store: replaying WAL") {
		t.Fatalf("Ready = %v", err)
	}
	_ = g.Stop(context.Background())
	if err := g.Ready(); err == nil {
		t.Fatal("ready after stop")
	}
}

// TestGroupDrainDeadline checks that a component that will not stop in time
// does not keep the others from stopping, and that the deadline error is
// returned.
func TestGroupDrainDeadline(t *testing.T) {
	var r recorder
	var g Group
	g.Add(comp(&r, "nats", nil))
	g.Add(ComponentFuncs{ComponentName: "slow", StopFunc: func(ctx context.Context) error {
		<-ctx.Done()
		r.add("stop:slow(timeout)")
		return ctx.Err()
	}})
	if err := g.Start(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := g.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stop slow") {
		t.Fatalf("Stop = %v", err)
	}
	if got := r.String(); got != "start:nats stop:slow(timeout) stop:nats" {
		t.Fatalf("events %s", got)
	}
}

// blocker is a component whose Start blocks until its context ends (or,
// when ignoreCtx, until release is closed).
func blocker(r *recorder, name string, entered chan<- struct{}, ignoreCtx bool, release <-chan struct{}) ComponentFuncs {
	return ComponentFuncs{
		ComponentName: name,
		StartFunc: func(ctx context.Context) error {
			r.add("start:" + name)
			close(entered)
			if ignoreCtx {
				<-release
				return nil
			}
			<-ctx.Done()
			return ctx.Err()
		},
		StopFunc: func(context.Context) error { r.add("stop:" + name); return nil },
	}
}

func TestGroupStartInterrupted(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		name := "start honours ctx"
		if ignore {
			name = "start ignores ctx"
		}
		t.Run(name, func(t *testing.T) {
			r := &recorder{}
			entered, release := make(chan struct{}), make(chan struct{})
			g := &Group{}
			g.Add(comp(r, "a", nil))
			g.Add(blocker(r, "slow", entered, ignore, release))
			g.Add(comp(r, "c", nil))
			ctx, cancel := context.WithCancelCause(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- g.Start(ctx, 50*time.Millisecond) }()
			<-entered
			cancel(errors.New("terminated signal received"))
			err := <-errc
			if !errors.Is(err, ErrStartInterrupted) || !strings.Contains(err.Error(), "while starting slow: terminated signal received") {
				t.Fatalf("err = %v", err)
			}
			if ignore {
				close(release) // the abandoned Start returns; it is stopped in the background
			}
			if got, want := r.String(), "start:a start:slow stop:a"; !strings.HasPrefix(got, want) {
				t.Fatalf("events %q, want %q", got, want)
			}
			if ignore {
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(r.String(), "stop:slow") {
					if time.Now().After(deadline) {
						t.Fatal("the abandoned component was not stopped after its Start returned")
					}
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
}

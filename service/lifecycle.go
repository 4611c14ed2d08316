package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Component is one stage of the process. Components start in the order they
// are added to a Group and stop in reverse.
type Component interface {
	// Name identifies the component in logs, metrics and /readyz.
	Name() string
	// Start brings the component up and returns once it is running; it
	// spawns whatever goroutines it needs. An error means it did not start
	// and holds no resources.
	Start(ctx context.Context) error
	// Stop drains in-flight work and releases resources, returning when
	// done or when ctx expires (then with ctx.Err()). It is called at most
	// once, and only after a successful Start.
	Stop(ctx context.Context) error
}

// ReadyChecker is implemented by components whose readiness can lag their
// start (a collector waiting for its first poll, a store replaying its WAL).
// Ready returns nil when the component can do its job.
type ReadyChecker interface {
	Ready() error
}

// startStopper is a part a component builds when it starts.
type startStopper interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// builtOnStart returns the component name that builds its part with build
// when it starts (what the part needs, such as the NATS component's
// connection, exists only then) and starts it; it stops the part if one
// was built.
func builtOnStart[T startStopper](name string, build func() (T, error)) Component {
	var (
		part  T
		built bool
	)
	return ComponentFuncs{
		ComponentName: name,
		StartFunc: func(ctx context.Context) error {
			p, err := build()
			if err != nil {
				return err
			}
			part, built = p, true
			return part.Start(ctx)
		},
		StopFunc: func(ctx context.Context) error {
			if !built {
				return nil
			}
			return part.Stop(ctx)
		},
	}
}

// ComponentFuncs builds a Component from functions; nil functions do
// nothing.
type ComponentFuncs struct {
	ComponentName string
	StartFunc     func(ctx context.Context) error
	StopFunc      func(ctx context.Context) error
	ReadyFunc     func() error
}

// Name returns ComponentName.
func (c ComponentFuncs) Name() string { return c.ComponentName }

// Start calls StartFunc.
func (c ComponentFuncs) Start(ctx context.Context) error {
	if c.StartFunc == nil {
		return nil
	}
	return c.StartFunc(ctx)
}

// Stop calls StopFunc.
func (c ComponentFuncs) Stop(ctx context.Context) error {
	if c.StopFunc == nil {
		return nil
	}
	return c.StopFunc(ctx)
}

// Ready calls ReadyFunc.
func (c ComponentFuncs) Ready() error {
	if c.ReadyFunc == nil {
		return nil
	}
	return c.ReadyFunc()
}

// Group starts components in dependency order and stops them in reverse.
// The zero Group is ready to use; it is not safe to Add after Start.
type Group struct {
	Log *slog.Logger

	mu      sync.Mutex
	comps   []Component
	started int // components [0, started) are running
	stopped bool
}

// Add appends a component; it starts after every component added before it.
func (g *Group) Add(c Component) { g.comps = append(g.comps, c) }

// Components returns the components in start order.
func (g *Group) Components() []Component { return g.comps }

func (g *Group) log() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Log
}

// ErrStartInterrupted is returned by Group.Start when its context ends
// (SIGINT/SIGTERM) before every component has started; it wraps the
// context's cause.
var ErrStartInterrupted = errors.New("start interrupted")

// Start starts every component in order. When one fails, the ones already
// started are stopped in reverse order (bounded by stopTimeout) and the
// start error is returned, naming the component.
//
// When ctx ends during start-up the component starting is expected to
// return at once (its Start has ctx); one that does not is given
// stopTimeout, then abandoned, so that a signal always ends start-up. The
// error then wraps ErrStartInterrupted and the context's cause (the
// signal).
func (g *Group) Start(ctx context.Context, stopTimeout time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, c := range g.comps {
		t0 := time.Now()
		err := ctx.Err()
		if err == nil {
			err = g.startOne(ctx, c, stopTimeout)
		}
		if err != nil {
			startErr := fmt.Errorf("start %s: %w", c.Name(), err)
			if ctx.Err() != nil {
				startErr = fmt.Errorf("%w while starting %s: %w (%w)", ErrStartInterrupted, c.Name(), context.Cause(ctx), err)
				g.log().Error("start-up interrupted; stopping the components already started", "component", c.Name(), "cause", context.Cause(ctx))
			} else {
				g.log().Error("component failed to start; stopping the others", "component", c.Name(), "err", err)
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			defer cancel()
			if stopErr := g.stopLocked(sctx); stopErr != nil {
				return errors.Join(startErr, stopErr)
			}
			return startErr
		}
		g.started = i + 1
		g.log().Info("started", "component", c.Name(), "took", time.Since(t0).Round(time.Microsecond))
	}
	return nil
}

// startOne runs c.Start, and returns when it does or, once ctx has ended,
// after at most grace more. A Start that returns after it was abandoned is
// stopped (if it succeeded) in the background.
func (g *Group) startOne(ctx context.Context, c Component, grace time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		if err == nil { // it finished starting just as the signal came: stop it
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
			defer cancel()
			if serr := c.Stop(sctx); serr != nil {
				g.log().Error("component failed to stop cleanly", "component", c.Name(), "err", serr)
			}
			return ctx.Err()
		}
		return err
	case <-t.C:
		g.log().Error("component did not return from Start after the signal; abandoning it", "component", c.Name(), "waited", grace)
		go func() {
			if err := <-done; err == nil {
				sctx, cancel := context.WithTimeout(context.Background(), grace)
				defer cancel()
				_ = c.Stop(sctx)
			}
		}()
		return fmt.Errorf("did not return within %v: %w", grace, ctx.Err())
	}
}

// Stop stops the started components in reverse order, each given what is
// left of ctx. Every component is asked to stop even when an earlier one
// fails; the errors are joined.
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopLocked(ctx)
}

func (g *Group) stopLocked(ctx context.Context) error {
	if g.stopped {
		return nil
	}
	g.stopped = true
	var errs []error
	for i := g.started - 1; i >= 0; i-- {
		c := g.comps[i]
		t0 := time.Now()
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.Name(), err))
			g.log().Error("component failed to stop cleanly", "component", c.Name(), "err", err)
			continue
		}
		g.log().Info("stopped", "component", c.Name(), "took", time.Since(t0).Round(time.Microsecond))
	}
	g.started = 0
	return errors.Join(errs...)
}

// ComponentStatus is one component's readiness: Err is nil when ready.
type ComponentStatus struct {
	Name string
	Err  error
}

// Status reports every component's readiness, in start order.
func (g *Group) Status() []ComponentStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]ComponentStatus, len(g.comps))
	for i, c := range g.comps {
		out[i].Name = c.Name()
		switch {
		case g.stopped:
			out[i].Err = errors.New("stopped")
		case i >= g.started:
			out[i].Err = errors.New("not started")
		default:
			if rc, ok := c.(ReadyChecker); ok {
				out[i].Err = rc.Ready()
			}
		}
	}
	return out
}

// Ready reports nil when every component has started and reports ready;
// otherwise one error per component that is not, naming it.
func (g *Group) Ready() error {
	var errs []error
	for _, st := range g.Status() {
		if st.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", st.Name, st.Err))
		}
	}
	return errors.Join(errs...)
}

package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/fleet"
)

// hubComponent runs a hub: fleet.Hub over the hub cluster's connection
// (nats.url), feeding the fleet tables (hubSink) that the query stage
// serves instead of a store's.
//
// The fleet tables live in memory; the hub streams (R3) are the durable
// store. So Start first deletes the hub's durable consumers: fleet.Hub
// creates them again and they deliver each stream from its first message,
// which rebuilds the tables (ids de-duplicate, rows older than retention
// are skipped). One hub process consumes a hub cluster.
type hubComponent struct {
	cfg  FleetHubConfig
	nats *NATS
	sink *hubSink
	reg  prometheus.Registerer
	log  *slog.Logger

	hub    *fleet.Hub
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Name returns "fleet-hub".
func (h *hubComponent) Name() string { return "fleet-hub" }

// Start replays the hub streams into the tables and sources the edges.
func (h *hubComponent) Start(ctx context.Context) error {
	nc := h.nats.Conn()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("fleet hub: %w", err)
	}
	n, err := h.rewind(ctx, js)
	if err != nil {
		return err
	}
	hub, err := fleet.NewHub(h.cfg.HubConfig, nc, h.sink, h.reg, h.log)
	if err != nil {
		return err
	}
	if err := hub.Start(ctx); err != nil {
		return err
	}
	h.hub = hub
	h.log.Info("fleet hub replaying its streams into the fleet tables", "streams", n, "retention", h.cfg.Retention)
	var run context.Context
	run, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(min(h.cfg.Retention/10, time.Minute))
		defer t.Stop()
		for {
			select {
			case <-run.Done():
				return
			case <-t.C:
				h.sink.expire()
			}
		}
	}()
	return nil
}

// rewind deletes the hub's durable consumer on every hub stream, so that
// the new ones deliver the streams from the start, and returns how many
// streams it found. A cluster that has just started may not have elected
// the streams' leaders yet: what fails is tried again every second, each
// call bounded by 5 s, until it succeeds or ctx ends (at most 2 minutes).
func (h *hubComponent) rewind(ctx context.Context, js jetstream.JetStream) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for attempt := 1; ; attempt++ {
		n, err := h.rewindOnce(ctx, js)
		if err == nil {
			return n, nil
		}
		last = err
		h.log.Warn("fleet hub: rewinding the hub streams failed; trying again", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("%w (gave up: %v)", last, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// rewindOnce lists the hub streams and deletes the hub's consumer on each.
func (h *hubComponent) rewindOnce(ctx context.Context, js jetstream.JetStream) (int, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	names := js.StreamNames(lctx)
	var streams []string
	for name := range names.Name() {
		if isHubStream(name) {
			streams = append(streams, name)
		}
	}
	if err := names.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return len(streams), fmt.Errorf("fleet hub: list streams: %w", err)
	}
	var errs []error
	for _, name := range streams {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := js.DeleteConsumer(dctx, name, h.cfg.Consumer)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			errs = append(errs, fmt.Errorf("fleet hub: rewind %s: %w", name, err))
		}
	}
	return len(streams), errors.Join(errs...)
}

// isHubStream reports whether name is a hub stream (NETFEAT_<KIND>_<site>).
func isHubStream(name string) bool {
	for _, k := range fleet.Kinds {
		if site, ok := strings.CutPrefix(name, fleet.EdgeStream(k)+"_"); ok && site != "" {
			return true
		}
	}
	return false
}

// Ready reports an error until Start has run.
func (h *hubComponent) Ready() error {
	if h.hub == nil {
		return errors.New("not started")
	}
	return nil
}

// Stop stops consuming and waits for the sink calls in flight.
func (h *hubComponent) Stop(ctx context.Context) error {
	if h.hub == nil {
		return nil
	}
	h.cancel()
	h.wg.Wait()
	err := h.hub.Stop(ctx)
	h.sink.close()
	return err
}

package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// natsRetry is how often and how patiently the first connection to an
// external NATS server is tried: a compose stack or systemd may start
// netfeat before the server listens, so one refused dial must not end the
// process. Attempt n (from 1) waits min·2^(n-1), at most max, before the
// next; the whole start still ends at once on SIGINT/SIGTERM.
type natsRetry struct {
	attempts int           // total attempts, at least 1
	min, max time.Duration // backoff bounds
}

// defaultNATSRetry tries for about three minutes: 1s, 2s, 4s, ... 30s
// (the defaults of nats.connect_retries and nats.connect_backoff).
var defaultNATSRetry = natsRetry{attempts: 10, min: time.Second, max: 30 * time.Second}

// connectRetry calls connectCtx until it succeeds, the attempts are spent
// or ctx ends, logging each failed attempt with the wait before the next.
// It returns the last error, or ctx's cause.
func connectRetry(ctx context.Context, url string, opts []nats.Option, r natsRetry, log *slog.Logger) (*nats.Conn, error) {
	wait := r.min
	for attempt := 1; ; attempt++ {
		conn, err := connectCtx(ctx, url, opts)
		if err == nil || ctx.Err() != nil || attempt >= r.attempts {
			return conn, err
		}
		log.Warn("NATS connect failed, retrying", "url", redactURL(url), "attempt", attempt,
			"of", r.attempts, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
		wait = min(2*wait, r.max)
	}
}

// natsRetryFor is the retry policy of a connection to url: the embedded
// server (url empty) is ready before the client dials, so one attempt;
// an external one is tried retries times, waiting at most backoff.
func natsRetryFor(url string, retries int, backoff time.Duration) natsRetry {
	if url == "" {
		return natsRetry{attempts: 1}
	}
	r := defaultNATSRetry
	if retries > 0 {
		r.attempts = retries
	}
	if backoff > 0 {
		r.max = max(backoff, r.min)
	}
	return r
}

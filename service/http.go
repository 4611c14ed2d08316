package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTP serves /healthz, /readyz, /metrics and the handlers other stages
// mount with Handle.
type HTTP struct {
	listen   string
	mux      *http.ServeMux
	gatherer prometheus.Gatherer
	ready    func() error
	log      *slog.Logger

	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// NewHTTP builds the HTTP component. ready reports whether every stage is
// ready (for /readyz); gatherer is the registry /metrics exposes.
func NewHTTP(listen string, gatherer prometheus.Gatherer, reg prometheus.Registerer, ready func() error, log *slog.Logger) *HTTP {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &HTTP{listen: listen, mux: http.NewServeMux(), gatherer: gatherer, ready: ready, log: log.With("component", "http")}
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	h.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := h.ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready:\n%v\n", err)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	h.mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(reg,
		promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{Registry: reg, ErrorHandling: promhttp.ContinueOnError})))
	return h
}

// Handle mounts a handler; call before Start.
func (h *HTTP) Handle(pattern string, handler http.Handler) { h.mux.Handle(pattern, handler) }

// Name returns "http".
func (h *HTTP) Name() string { return "http" }

// Addr returns the bound address (useful with port 0); valid after Start.
func (h *HTTP) Addr() string {
	if h.ln == nil {
		return h.listen
	}
	return h.ln.Addr().String()
}

// Start binds the listener and serves in the background.
func (h *HTTP) Start(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", h.listen)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	h.ln = ln
	h.srv = &http.Server{Handler: h.mux, ReadHeaderTimeout: 10 * time.Second}
	h.done = make(chan struct{})
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.mu.Lock()
			h.err = err
			h.mu.Unlock()
			h.log.Error("HTTP server failed", "err", err)
		}
	}()
	h.log.Info("HTTP listening", "addr", "http://"+ln.Addr().String())
	return nil
}

// Stop finishes in-flight requests within ctx, then closes.
func (h *HTTP) Stop(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	if err != nil {
		_ = h.srv.Close()
	}
	<-h.done
	return err
}

// Ready reports a failed server.
func (h *HTTP) Ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

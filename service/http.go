package service

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTP serves /healthz, /readyz, /metrics and the handlers other stages
// mount with Handle.
type HTTP struct {
	cfg      HTTPConfig
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
// ready (for /readyz); gatherer is the registry /metrics exposes. Zero
// timeouts and connection limit in cfg take their defaults.
func NewHTTP(cfg HTTPConfig, gatherer prometheus.Gatherer, reg prometheus.Registerer, ready func() error, log *slog.Logger) *HTTP {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	def := DefaultConfig().HTTP
	cfg.ReadHeaderTimeout = cmp.Or(cfg.ReadHeaderTimeout, def.ReadHeaderTimeout)
	cfg.ReadTimeout = cmp.Or(cfg.ReadTimeout, def.ReadTimeout)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, def.IdleTimeout)
	cfg.MaxConnections = cmp.Or(cfg.MaxConnections, def.MaxConnections)
	h := &HTTP{cfg: cfg, mux: http.NewServeMux(), gatherer: gatherer, ready: ready, log: log.With("component", "http")}
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
		return h.cfg.Listen
	}
	return h.ln.Addr().String()
}

// Start binds the listener and serves in the background. At most
// MaxConnections connections are open at once; a request must arrive
// within ReadHeaderTimeout (headers) and ReadTimeout (whole request).
func (h *HTTP) Start(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", h.cfg.Listen)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	tc, err := serverTLS("http.tls", h.cfg.TLS)
	if err != nil {
		_ = ln.Close()
		return err
	}
	ln = newLimitListener(ln, h.cfg.MaxConnections)
	h.ln = ln
	scheme := "http://"
	if tc != nil {
		// Wrap after the limit, so a TLS handshake holds a slot too.
		ln = tls.NewListener(ln, tc)
		scheme = "https://"
	}
	h.srv = &http.Server{Handler: h.mux, ReadHeaderTimeout: h.cfg.ReadHeaderTimeout, ReadTimeout: h.cfg.ReadTimeout,
		IdleTimeout: h.cfg.IdleTimeout, ErrorLog: slog.NewLogLogger(h.log.Handler(), slog.LevelDebug)}
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
	h.log.Info("HTTP listening", "addr", scheme+ln.Addr().String())
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

// limitListener caps the connections open at once: Accept waits for one
// to close before accepting the next, so an excess client waits in the
// kernel's backlog and holds no file descriptor of ours.
type limitListener struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	once sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

package service

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
)

// leafWatch counts and explains the leaf connection's failures: an edge
// whose credentials or TLS the hub refuses keeps running alone, and says so.
type leafWatch struct {
	log    *slog.Logger
	errors *prometheus.CounterVec

	mu     sync.Mutex
	logged map[string]time.Time // reason → last log line; the server retries every second
}

// newLeafWatch registers the leaf metrics of an edge's embedded server;
// connected reports the number of leaf connections at scrape time.
func newLeafWatch(reg prometheus.Registerer, log *slog.Logger, connected func() float64) *leafWatch {
	w := &leafWatch{log: log, logged: map[string]time.Time{}, errors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "netfeat_fleet_leaf_errors_total",
		Help: "Failures of the edge's leaf connection to the hub, by reason (auth: credentials refused, tls, other).",
	}, []string{"reason"})}
	for _, r := range []string{"auth", "tls", "other"} {
		w.errors.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(w.errors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "netfeat_fleet_leaf_connected",
			Help: "Leaf connections of the edge's embedded server to the hub (0 while cut off: the edge decides alone).",
		}, connected))
	}
	return w
}

// serverError looks at one error line of the embedded server and counts
// and explains it when it is about the leaf connection. It reports whether
// it was.
func (w *leafWatch) serverError(msg string) bool {
	low := strings.ToLower(msg)
	if !strings.Contains(low, "leaf") {
		return false
	}
	reason := "other"
	switch {
	case strings.Contains(low, "authorization") || strings.Contains(low, "authentication") || strings.Contains(low, "credentials"):
		reason = "auth"
	case strings.Contains(low, "tls") || strings.Contains(low, "x509") || strings.Contains(low, "certificate"):
		reason = "tls"
	}
	w.errors.WithLabelValues(reason).Inc()
	w.mu.Lock()
	quiet := time.Since(w.logged[reason]) < 30*time.Second
	if !quiet {
		w.logged[reason] = time.Now()
	}
	w.mu.Unlock()
	if quiet && reason != "other" {
		return true // counted; logged at most every 30 s per reason
	}
	switch reason {
	case "auth":
		w.log.Error("fleet: the hub refused this edge's leaf connection (credentials); the edge keeps collecting and deciding alone and keeps its data in its streams", "reason", reason, "err", msg)
	case "tls":
		w.log.Error("fleet: the leaf connection to the hub failed TLS; the edge keeps collecting and deciding alone and keeps its data in its streams", "reason", reason, "err", msg)
	default: // a cut link retries every second: counted, not logged at warn
		w.log.Debug("fleet: leaf connection to the hub", "err", msg)
	}
	return true
}

// serverNotice looks at one notice of the embedded server: a failed TLS
// handshake of a leaf connection is reported only there (the handshake
// error itself at debug level), as "Leafnode connection closed: TLS
// Handshake Failure".
func (w *leafWatch) serverNotice(msg string) {
	if strings.Contains(msg, "Leafnode connection closed") && strings.Contains(msg, "TLS") {
		w.serverError(msg)
	}
}

// configureLeaf makes the embedded server of an edge a leaf node of the
// hub with the site as its JetStream domain. Each remote denies netfeat.>
// both ways (docs/fleet.md): only JetStream's sourcing, which uses its
// own subjects, crosses the link, so two edges never see each other's
// decisions and the hub's subscribers no edge's.
func (n *NATS) configureLeaf(opts *server.Options) error {
	if n.site == "" {
		return nil
	}
	opts.JetStreamDomain = n.site
	opts.ServerName = "netfeat-" + n.site
	opts.LeafNode.ReconnectInterval = time.Second
	for i, r := range n.cfg.Leaf.Remotes {
		key := fmt.Sprintf("nats.leaf.remotes[%d]", i)
		ro := &server.RemoteLeafOpts{
			Credentials: r.CredentialsFile,
			DenyImports: []string{"netfeat.>"},
			DenyExports: []string{"netfeat.>"},
		}
		for _, s := range r.URLs {
			u, err := url.Parse(s)
			if err != nil {
				return fmt.Errorf("%s.urls: %w", key, err)
			}
			ro.URLs = append(ro.URLs, u)
			if u.Scheme == "tls" || u.Scheme == "wss" {
				ro.TLS = true
			}
		}
		tc, err := leafTLS(key+".tls", r.TLS)
		if err != nil {
			return err
		}
		if tc != nil {
			ro.TLS, ro.TLSConfig = true, tc
		}
		opts.LeafNode.Remotes = append(opts.LeafNode.Remotes, ro)
	}
	return nil
}

// leafTLS builds the client TLS configuration of a leaf remote, nil when
// none is configured.
func leafTLS(key string, t TLSConfig) (*tls.Config, error) {
	if t.CAFile == "" && t.CertFile == "" && !t.InsecureSkipVerify {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // only when asked for
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file %s: no PEM certificates", key, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s client certificate: %w", key, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

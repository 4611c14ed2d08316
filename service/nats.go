package service

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// NATS is the message bus component: an embedded nats-server (unless an
// external URL is configured) plus the process's client connection.
type NATS struct {
	cfg     NATSConfig
	dataDir string
	log     *slog.Logger

	srv  *server.Server
	conn *nats.Conn
	// querySubject is the SQL request subject, which the query role may
	// publish on.
	querySubject string
	// site is the JetStream domain of an edge's embedded server, which
	// then is a leaf node of the hub (nats.leaf); "" otherwise.
	site string
	leaf *leafWatch // nil unless site is set

	connected     atomic.Bool
	disconnects   prometheus.Counter
	reconnects    prometheus.Counter
	asyncErrors   prometheus.Counter
	connectedGaug prometheus.GaugeFunc
}

// NewNATS prepares the NATS component; nothing listens or connects until
// Start.
func NewNATS(cfg NATSConfig, dataDir string, reg prometheus.Registerer, log *slog.Logger) *NATS {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &NATS{cfg: cfg, dataDir: dataDir, log: log.With("component", "nats")}
	n.disconnects = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "netfeat_nats_disconnects_total", Help: "Times the NATS connection was lost.",
	})
	n.reconnects = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "netfeat_nats_reconnects_total", Help: "Times the NATS connection was re-established.",
	})
	n.asyncErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "netfeat_nats_async_errors_total", Help: "Asynchronous NATS errors (slow consumers, permission violations).",
	})
	n.connectedGaug = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "netfeat_nats_connected", Help: "1 while the NATS connection is up.",
	}, func() float64 {
		if n.connected.Load() {
			return 1
		}
		return 0
	})
	if reg != nil {
		reg.MustRegister(n.disconnects, n.reconnects, n.asyncErrors, n.connectedGaug)
	}
	return n
}

// Name returns "nats".
func (n *NATS) Name() string { return "nats" }

// Conn returns the client connection; valid after Start.
func (n *NATS) Conn() *nats.Conn { return n.conn }

// Server returns the embedded server, or nil with an external URL.
func (n *NATS) Server() *server.Server { return n.srv }

// ClientURL returns the URL outside clients use to reach the bus.
func (n *NATS) ClientURL() string {
	if n.srv != nil {
		return n.srv.ClientURL()
	}
	return n.cfg.URL
}

// Start runs the embedded server if configured and connects.
func (n *NATS) Start(ctx context.Context) error {
	url := n.cfg.URL
	opts := []nats.Option{
		nats.Name("netfeat"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(n.cfg.ReconnectWait),
		nats.ReconnectBufSize(8 << 20),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			n.connected.Store(false)
			if c.IsClosed() {
				return // our own Stop, not an outage
			}
			n.disconnects.Inc()
			n.log.Warn("NATS disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.connected.Store(true)
			n.reconnects.Inc()
			n.log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			n.asyncErrors.Inc()
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			n.log.Warn("NATS async error", "subject", subj, "err", err)
		}),
	}
	if url == "" {
		users, internalPW, err := n.embeddedUsers()
		if err != nil {
			return err
		}
		srv, err := n.startEmbedded(ctx, users)
		if err != nil {
			return err
		}
		n.srv = srv
		opts = append(opts, nats.InProcessServer(srv))
		if internalPW != "" {
			opts = append(opts, nats.UserInfo(natsInternalUser, internalPW))
		}
	} else {
		auth, err := n.authOptions()
		if err != nil {
			return err
		}
		opts = append(opts, auth...)
		opts = append(opts, nats.RetryOnFailedConnect(false))
		if n.cfg.ConnectTimeout > 0 {
			opts = append(opts, nats.Timeout(n.cfg.ConnectTimeout))
		}
	}
	conn, err := connectRetry(ctx, url, opts, natsRetryFor(url, n.cfg.ConnectRetries, n.cfg.ConnectBackoff), n.log)
	if err != nil {
		n.shutdownServer()
		return fmt.Errorf("connect to NATS %s: %w", redactURL(url), err)
	}
	n.conn = conn
	n.connected.Store(true)
	n.log.Info("NATS connected", "url", n.ClientURL(), "embedded", n.srv != nil)
	return nil
}

// connectCtx is nats.Connect returning when ctx ends (a signal during
// start-up); a connection made after that is closed.
func connectCtx(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	type result struct {
		c   *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := nats.Connect(url, opts...)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, context.Cause(ctx)
	}
}

func (n *NATS) startEmbedded(ctx context.Context, users embeddedUsers) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(n.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats.listen %q: %w", n.cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats.listen %q: bad port", n.cfg.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "netfeat",
		Host:       host,
		Port:       port,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
		Users:      users.users,
		Nkeys:      users.nkeys,
	}
	tc, err := serverTLS("nats.server_tls", n.cfg.ServerTLS)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts.TLSConfig, opts.TLS = tc, true
		opts.TLSVerify = tc.ClientAuth == tls.RequireAndVerifyClientCert
		opts.AllowNonTLS = false
	}
	if n.cfg.JetStream == nil || *n.cfg.JetStream {
		opts.JetStream = true
		opts.StoreDir = filepath.Join(n.dataDir, "nats")
		if err := os.MkdirAll(opts.StoreDir, 0o755); err != nil {
			return nil, fmt.Errorf("create JetStream store: %w", err)
		}
	}
	if err := n.configureLeaf(opts); err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	srv.SetLoggerV2(natsLogger{log: n.log, leaf: n.leaf}, false, false, false)
	go srv.Start()
	for t0 := time.Now(); !srv.ReadyForConnections(100 * time.Millisecond); {
		if ctx.Err() != nil {
			srv.Shutdown()
			return nil, context.Cause(ctx)
		}
		if time.Since(t0) > 10*time.Second {
			srv.Shutdown()
			return nil, fmt.Errorf("embedded NATS server did not become ready on %s (address in use?)", n.cfg.Listen)
		}
	}
	n.log.Info("embedded NATS server listening", "url", srv.ClientURL(), "jetstream", opts.JetStream,
		"users", len(n.cfg.Users), "tls", tc != nil)
	return srv, nil
}

// embeddedUsers are the embedded server's users and nkey users.
type embeddedUsers struct {
	users []*server.User
	nkeys []*server.NkeyUser
}

// embeddedUsers maps nats.users to the embedded server's users with their
// role's permissions, and adds netfeat's own user with every permission
// and a password made now (returned, never logged). Without nats.users the
// server has no authentication and the password is "".
//
// Only netfeat's own user may publish decisions and use the JetStream API
// ($JS.API.>): the roles' allow lists name neither.
func (n *NATS) embeddedUsers() (embeddedUsers, string, error) {
	var eu embeddedUsers
	if len(n.cfg.Users) == 0 {
		return eu, "", nil
	}
	querySubj := n.querySubject
	if querySubj == "" {
		querySubj = "netfeat.query"
	}
	for _, u := range n.cfg.Users {
		perm := &server.Permissions{
			Publish:   &server.SubjectPermission{Deny: []string{">"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"netfeat.decisions.>"}},
		}
		if u.Role == RoleQuery {
			perm.Publish = &server.SubjectPermission{Allow: []string{querySubj}}
			perm.Subscribe.Allow = append(perm.Subscribe.Allow, "_INBOX.>")
		}
		if u.NKeyFile != "" {
			k, err := readNKey(u.NKeyFile)
			if err != nil {
				return eu, "", fmt.Errorf("nats.users: %w", err)
			}
			eu.nkeys = append(eu.nkeys, &server.NkeyUser{Nkey: k, Permissions: perm})
			continue
		}
		pw, err := readSecret(u.PasswordFile, u.PasswordEnv)
		if err != nil {
			return eu, "", fmt.Errorf("nats.users %s: %w", u.User, err)
		}
		eu.users = append(eu.users, &server.User{Username: u.User, Password: pw, Permissions: perm})
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return eu, "", fmt.Errorf("nats internal password: %w", err)
	}
	pw := hex.EncodeToString(b[:])
	// The server keeps only a bcrypt hash (the lowest cost: the password
	// is random and long), so it finds no plain-text password of ours.
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		return eu, "", fmt.Errorf("nats internal password: %w", err)
	}
	eu.users = append(eu.users, &server.User{Username: natsInternalUser, Password: string(hash)})
	return eu, pw, nil
}

func (n *NATS) authOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if n.cfg.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(n.cfg.CredentialsFile))
	}
	if n.cfg.User != "" {
		pw, err := readSecret(n.cfg.PasswordFile, n.cfg.PasswordEnv)
		if err != nil {
			return nil, fmt.Errorf("nats password: %w", err)
		}
		opts = append(opts, nats.UserInfo(n.cfg.User, pw))
	}
	if n.cfg.TokenFile != "" || n.cfg.TokenEnv != "" {
		tok, err := readSecret(n.cfg.TokenFile, n.cfg.TokenEnv)
		if err != nil {
			return nil, fmt.Errorf("nats token: %w", err)
		}
		opts = append(opts, nats.Token(tok))
	}
	if t := n.cfg.TLS; t.CAFile != "" || t.CertFile != "" || t.InsecureSkipVerify {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // only when asked for
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("nats.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("nats.tls.ca_file %s: no PEM certificates", t.CAFile)
			}
			tc.RootCAs = pool
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("nats.tls client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// Stop flushes and drains the connection, then shuts the embedded server
// down.
func (n *NATS) Stop(ctx context.Context) error {
	var errs []error
	if n.conn != nil {
		if n.conn.IsConnected() {
			if err := n.conn.FlushWithContext(ctx); err != nil {
				errs = append(errs, fmt.Errorf("flush: %w", err))
			}
		}
		n.conn.Close()
		n.connected.Store(false)
	}
	n.shutdownServer()
	return errors.Join(errs...)
}

func (n *NATS) shutdownServer() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// Ready reports an error while the connection is down.
func (n *NATS) Ready() error {
	if n.conn == nil || !n.conn.IsConnected() {
		return errors.New("not connected")
	}
	return nil
}

// readSecret reads a secret from a file (trailing newline trimmed) or an
// environment variable. Error messages name the source, never the value.
func readSecret(file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", fmt.Errorf("secret file %s is empty", file)
		}
		return s, nil
	case env != "":
		s, ok := os.LookupEnv(env)
		if !ok || s == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return s, nil
	}
	return "", nil
}

// redactURL removes user information from NATS URLs for logs.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				parts[i] = p[:s+3] + "[redacted]@" + p[at+1:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// natsLogger forwards the embedded server's warnings and errors to slog;
// an edge's leaf errors go through leaf, which counts and explains them.
type natsLogger struct {
	log  *slog.Logger
	leaf *leafWatch
}

func (l natsLogger) Noticef(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if l.leaf != nil {
		l.leaf.serverNotice(msg)
	}
	l.log.Debug(msg)
}
func (l natsLogger) Warnf(format string, v ...any)  { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if l.leaf != nil && l.leaf.serverError(msg) {
		return
	}
	l.log.Error(msg)
}
func (l natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any) {}

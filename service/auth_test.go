package service

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// TestListenersLockedByDefault: a listener beyond loopback without
// authentication is a configuration error naming its key, unless its
// allow_unauthenticated is set.
func TestListenersLockedByDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" for valid
	}{
		{"defaults on loopback", func(*Config) {}, ""},
		{"localhost and ::1", func(c *Config) { c.HTTP.Listen, c.NATS.Listen = "localhost:9464", "[::1]:4222" }, ""},
		{"http on every interface", func(c *Config) { c.HTTP.Listen = "0.0.0.0:9464" }, "http.listen: binds beyond loopback"},
		{"http with empty host", func(c *Config) { c.HTTP.Listen = ":9464" }, "http.listen: binds beyond loopback"},
		{"http on a LAN address", func(c *Config) { c.HTTP.Listen = "10.1.2.3:9464" }, "http.listen: binds beyond loopback"},
		{"http allowed", func(c *Config) { c.HTTP.Listen, c.HTTP.AllowUnauthenticated = "0.0.0.0:9464", true }, ""},
		{"http with the old token", func(c *Config) { c.HTTP.Listen, c.HTTP.TokenEnv = "0.0.0.0:9464", "T" }, ""},
		{"http with auth.tokens", func(c *Config) {
			c.HTTP.Listen = "0.0.0.0:9464"
			c.Auth.Tokens = []TokenConfig{{Name: "ops", Scopes: []string{"read"}, TokenEnv: "T"}}
		}, ""},
		{"flight beyond loopback", func(c *Config) { c.Query.FlightListen = "0.0.0.0:32010" }, "query.flight_listen: binds beyond loopback"},
		{"flight allowed", func(c *Config) { c.Query.FlightListen, c.Query.FlightAllowUnauthenticated = "0.0.0.0:32010", true }, ""},
		{"nats beyond loopback", func(c *Config) { c.NATS.Listen = "0.0.0.0:4222" }, "nats.listen: binds beyond loopback"},
		{"nats with users", func(c *Config) {
			c.NATS.Listen = "0.0.0.0:4222"
			c.NATS.Users = []NATSUserConfig{{User: "grafana", PasswordEnv: "P", Role: "consumer"}}
		}, ""},
		{"nats allowed", func(c *Config) { c.NATS.Listen, c.NATS.AllowUnauthenticated = "0.0.0.0:4222", true }, ""},
		{"nats tokens do not protect nats", func(c *Config) {
			c.NATS.Listen = "0.0.0.0:4222"
			c.Auth.Tokens = []TokenConfig{{Name: "ops", Scopes: []string{"admin"}, TokenEnv: "T"}}
		}, "nats.listen: binds beyond loopback"},
		{"bad scope", func(c *Config) {
			c.Auth.Tokens = []TokenConfig{{Name: "ops", Scopes: []string{"root"}, TokenEnv: "T"}}
		}, `auth.tokens[0].scopes: "root": must be read or admin`},
		{"token without a source", func(c *Config) {
			c.Auth.Tokens = []TokenConfig{{Name: "ops", Scopes: []string{"read"}}}
		}, "auth.tokens[0].token_file: set token_file or token_env"},
		{"bad role", func(c *Config) {
			c.NATS.Users = []NATSUserConfig{{User: "u", PasswordEnv: "P", Role: "admin"}}
		}, "nats.users[0].role: must be consumer or query"},
		{"reserved user", func(c *Config) {
			c.NATS.Users = []NATSUserConfig{{User: "netfeat", PasswordEnv: "P", Role: "query"}}
		}, "netfeat's own user"},
		{"tls key alone", func(c *Config) { c.HTTP.TLS.KeyFile = "k.pem" }, "http.tls.cert_file: cert_file and key_file go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestUnauthenticatedWarning: allow_unauthenticated logs a warning at
// start (the listener itself stays on loopback in this test, so the check
// is of the message for the configuration, not of a bind to 0.0.0.0).
func TestUnauthenticatedWarning(t *testing.T) {
	c := DefaultConfig()
	c.HTTP.Listen, c.HTTP.AllowUnauthenticated = "0.0.0.0:9464", true
	var buf bytes.Buffer
	c.warnUnauthenticated(slog.New(slog.NewTextHandler(&buf, nil)))
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "listener=http") {
		t.Fatalf("log %q, want a warning for the http listener", buf.String())
	}
}

const authTestConfig = `
data_dir: %s
shutdown_timeout: 5s
http:
  listen: 127.0.0.1:0
%s
auth:
  tokens:
    - {name: dashboards, scopes: [read], token_env: %s_READ}
    - {name: ops, scopes: [read, admin], token_env: %s_ADMIN}
nats:
  listen: 127.0.0.1:0
  users:
    - {user: grafana, password_env: %s_CONSUMER, role: consumer}
    - {user: analyst, password_env: %s_QUERY, role: query}
inference:
  jetstream:
    stream: NETFEAT_DECISIONS
`

const (
	readToken   = "read-token-r34d"
	adminToken  = "admin-token-4dm1n"
	consumerPW  = "consumer-pw-c0n"
	queryUserPW = "query-pw-qu3ry"
)

// newAuthService starts a service with scoped tokens and NATS users;
// httpExtra is added under http:. It returns the service and its log.
func newAuthService(t *testing.T, httpExtra string) (*Service, *testkit.SyncBuffer) {
	t.Helper()
	env := "NETFEAT_AUTH_" + strings.ToUpper(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	t.Setenv(env+"_READ", readToken)
	t.Setenv(env+"_ADMIN", adminToken)
	t.Setenv(env+"_CONSUMER", consumerPW)
	t.Setenv(env+"_QUERY", queryUserPW)
	cfg, err := ParseConfig("auth.yaml", fmt.Appendf(nil, authTestConfig, t.TempDir(), httpExtra, env, env, env, env))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	svc := startServiceLog(t, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return svc, logs
}

// TestTokenScopes: a read token may query but not promote (403), an admin
// token may do both, a wrong or missing token gets 401.
func TestTokenScopes(t *testing.T) {
	svc, logs := newAuthService(t, "")
	base := "http://" + svc.HTTP().Addr()
	do := func(method, path, token, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const sql = `{"sql":"SELECT 1"}`
	const target = `{"snmp": {"name": "t1", "address": "127.0.0.1:1"}}`
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"query without token", "POST", "/v1/query", "", sql, 401},
		{"query with a wrong token", "POST", "/v1/query", "nope", sql, 401},
		{"query with a token's prefix", "POST", "/v1/query", readToken[:4], sql, 401},
		{"query with read", "POST", "/v1/query", readToken, sql, 200},
		{"query with admin", "POST", "/v1/query", adminToken, sql, 200},
		{"tables without token", "GET", "/v1/tables", "", "", 401},
		{"tables with a wrong token", "GET", "/v1/tables", "nope", "", 401},
		{"tables with read", "GET", "/v1/tables", readToken, "", 200},
		{"tables with admin", "GET", "/v1/tables", adminToken, "", 200},
		{"list models with read", "GET", "/v1/models", readToken, "", 200},
		{"device metrics without token", "GET", DeviceMetricsPath, "", "", 401},
		{"device metrics with a wrong token", "GET", DeviceMetricsPath, "nope", "", 401},
		{"device metrics with read", "GET", DeviceMetricsPath, readToken, "", 200},
		{"service metrics without token", "GET", "/metrics", "", "", 200},
		{"promote with read", "POST", "/v1/models/congestion/promote", readToken, `{"version":1}`, 403},
		{"rollback with read", "POST", "/v1/models/congestion/rollback", readToken, "", 403},
		{"upload with read", "POST", "/v1/models/congestion/versions", readToken, "x", 403},
		{"promote without token", "POST", "/v1/models/congestion/promote", "", `{"version":1}`, 401},
		{"list targets with read", "GET", "/v1/targets", readToken, "", 200},
		{"add a target with read", "POST", "/v1/targets", readToken, target, 403},
		{"add a target without token", "POST", "/v1/targets", "", target, 401},
		{"add a target with admin", "POST", "/v1/targets", adminToken, target, 201},
		{"remove a target with read", "DELETE", "/v1/targets/t1", readToken, "", 403},
		{"remove a target with admin", "DELETE", "/v1/targets/t1", adminToken, "", 200},
		{"console page without token", "GET", "/", "", "", 200},
		{"console script without token", "GET", "/console/app.js", "", "", 200},
		{"action stream without token", "GET", "/v1/actions/stream", "", "", 401},
		{"action stream with a wrong token", "GET", "/v1/actions/stream", "nope", "", 401},
		{"action stream with read", "GET", "/v1/actions/stream", readToken, "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := do(tc.method, tc.path, tc.token, tc.body); got != tc.want {
				t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
			}
		})
	}
	// An admin token passes authentication: whatever the model API says
	// (no such model here), it is neither 401 nor 403.
	if got := do("POST", "/v1/models/congestion/promote", adminToken, `{"version":1}`); got == 401 || got == 403 {
		t.Fatalf("promote with admin: %d", got)
	}
	assertNoSecrets(t, svc, logs.String())
}

// assertNoSecrets checks that no token or password appears in the log or
// /metrics.
func assertNoSecrets(t *testing.T, svc *Service, logs string) {
	t.Helper()
	resp, err := http.Get("http://" + svc.HTTP().Addr() + "/metrics")
	if err == nil {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		logs += b.String()
	}
	for _, s := range []string{readToken, adminToken, consumerPW, queryUserPW} {
		if strings.Contains(logs, s) {
			t.Fatalf("secret %q appears in the log or /metrics", s)
		}
	}
}

// TestHTTPTLS serves the API over TLS with a generated certificate and,
// with client_ca_file, requires a client certificate.
func TestHTTPTLS(t *testing.T) {
	dir := t.TempDir()
	certs, err := gnmitarget.WriteLabCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := newAuthService(t, fmt.Sprintf("  tls: {cert_file: %s, key_file: %s, client_ca_file: %s}",
		certs.ServerCert, certs.ServerKey, certs.CA))
	caPEM, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	url := "https://" + svc.HTTP().Addr() + "/healthz"

	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, err := noCert.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("a client without a certificate was served")
	}
	cert, err := tls.LoadX509KeyPair(certs.ClientCert, certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	resp, err := withCert.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over TLS: %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + svc.HTTP().Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered on a TLS listener")
		}
	}
}

// TestNATSUsers: with nats.users, an anonymous client is refused; a
// consumer may subscribe to decisions but not publish them, call the
// JetStream API or query; a query user may query (with a read token). The
// attacks of #19 (a forged decision stored in the stream, a stream purge
// or delete) fail.
func TestNATSUsers(t *testing.T) {
	svc, logs := newAuthService(t, "")
	url := svc.NATS().ClientURL()
	testkit.Eventually(t, "service ready", func() bool { return svc.Ready() == nil })

	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("an anonymous client was accepted")
	}
	if nc, err := nats.Connect(url, nats.UserInfo("grafana", "wrong")); err == nil {
		nc.Close()
		t.Fatal("a wrong password was accepted")
	}

	// Permission violations arrive asynchronously; collect them.
	connect := func(user, pw string) (*nats.Conn, chan error) {
		t.Helper()
		errs := make(chan error, 64)
		nc, err := nats.Connect(url, nats.UserInfo(user, pw), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		return nc, errs
	}
	consumer, consumerErrs := connect("grafana", consumerPW)
	if _, err := consumer.SubscribeSync("netfeat.decisions.>"); err != nil {
		t.Fatal(err)
	}
	if err := consumer.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-consumerErrs:
		t.Fatalf("consumer subscribing to decisions: %v", err)
	default:
	}

	// netfeat's own connection makes the stream, as at its first decision.
	own, err := jetstream.New(svc.NATS().Conn())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := own.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{
		Name: "NETFEAT_DECISIONS", Subjects: []string{"netfeat.decisions.>"}, Storage: jetstream.FileStorage,
	})
	if err != nil {
		t.Fatal(err)
	}
	// A forged decision, the JetStream API (purge, delete) and the query
	// subject: the server refuses each publish.
	for _, subj := range []string{"netfeat.decisions.congestion.nokia-7210", "$JS.API.STREAM.DELETE.NETFEAT_DECISIONS",
		"$JS.API.STREAM.PURGE.NETFEAT_DECISIONS", "$JS.API.INFO", "netfeat.query"} {
		if err := consumer.Publish(subj, []byte(`{"sql":"SELECT 1"}`)); err != nil {
			t.Fatal(err)
		}
		if err := consumer.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := <-consumerErrs; !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), subj) {
			t.Fatalf("consumer publishing on %s: %v, want a permission violation", subj, err)
		}
	}
	// The query user may query, with a read token, as over HTTP.
	analyst, _ := connect("analyst", queryUserPW)
	req := nats.NewMsg("netfeat.query")
	req.Data = []byte(`{"sql":"SELECT 42"}`)
	req.Header.Set("Authorization", "Bearer "+readToken)
	msg, err := analyst.RequestMsg(req, 10*time.Second)
	if err != nil {
		t.Fatalf("query user: %v", err)
	}
	if msg.Header.Get("Netfeat-Status") != "200" || !strings.Contains(string(msg.Data), "42") {
		t.Fatalf("query user's reply: %s %s", msg.Header.Get("Netfeat-Status"), msg.Data)
	}
	req.Header.Del("Authorization")
	if msg, err = analyst.RequestMsg(req, 10*time.Second); err != nil || msg.Header.Get("Netfeat-Status") != "401" {
		t.Fatalf("query without a token: %v %s", err, msg.Data)
	}
	// The query user cannot use JetStream either: the stream is intact.
	js, err := jetstream.New(analyst)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, "NETFEAT_DECISIONS"); err == nil {
		t.Fatal("query user deleted the stream")
	}
	if _, err := own.Stream(context.Background(), "NETFEAT_DECISIONS"); err != nil {
		t.Fatalf("stream after the attacks: %v", err)
	}
	if _, err := stream.GetLastMsgForSubject(context.Background(), "netfeat.decisions.congestion.nokia-7210"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("forged decision in the stream: %v", err)
	}
	assertNoSecrets(t, svc, logs.String())
}

// TestNATSAndFlightTLS runs the embedded NATS server and Flight SQL over
// TLS: netfeat's own in-process connection still works, a plain client is
// refused and a TLS client with the CA and a user is served.
func TestNATSAndFlightTLS(t *testing.T) {
	certs, err := gnmitarget.WriteLabCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := "NETFEAT_TLS_" + strings.ToUpper(t.Name())
	t.Setenv(env, consumerPW)
	t.Setenv(env+"_TOKEN", readToken)
	cfg, err := ParseConfig("tls.yaml", fmt.Appendf(nil, `
data_dir: %s
shutdown_timeout: 5s
http: {listen: 127.0.0.1:0}
auth:
  tokens: [{name: r, scopes: [read], token_env: %s_TOKEN}]
nats:
  listen: 127.0.0.1:0
  users: [{user: analyst, password_env: %s, role: query}]
  server_tls: {cert_file: %s, key_file: %s}
query:
  flight_listen: 127.0.0.1:0
  flight_tls: {cert_file: %s, key_file: %s}
`, t.TempDir(), env, env, certs.ServerCert, certs.ServerKey, certs.ServerCert, certs.ServerKey))
	if err != nil {
		t.Fatal(err)
	}
	svc := startService(t, cfg)
	if err := svc.NATS().Ready(); err != nil {
		t.Fatalf("netfeat's own connection: %v", err)
	}
	url := svc.NATS().ClientURL()
	if nc, err := nats.Connect(url, nats.UserInfo("analyst", consumerPW)); err == nil {
		nc.Close()
		t.Fatal("a plain-text client was accepted")
	}
	nc, err := nats.Connect(url, nats.UserInfo("analyst", consumerPW), nats.RootCAs(certs.CA))
	if err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	defer nc.Close()
	req := nats.NewMsg("netfeat.query")
	req.Data = []byte(`{"sql":"SELECT 42"}`)
	req.Header.Set("Authorization", "Bearer "+readToken)
	msg, err := nc.RequestMsg(req, 10*time.Second)
	if err != nil || msg.Header.Get("Netfeat-Status") != "200" {
		t.Fatalf("query over TLS: %v", err)
	}

	caPEM, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cl, err := flightsql.NewClient(svc.FlightSQLAddr(), nil, nil,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Execute(ctx, "SELECT 1"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Flight SQL over TLS without a token: %v, want Unauthenticated", err)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+readToken)
	if _, err := cl.Execute(ctx, "SELECT 1"); err != nil {
		t.Fatalf("Flight SQL over TLS with a token: %v", err)
	}
}

// TestNATSNKeyUser: a user known by its public nkey (from a file) connects
// by signing the server's nonce with its seed, and gets its role.
func TestNATSNKeyUser(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(t.TempDir(), "automation.pub")
	if err := os.WriteFile(pubFile, []byte(pub+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.DataDir, cfg.HTTP.Listen, cfg.NATS.Listen = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	cfg.NATS.Users = []NATSUserConfig{{NKeyFile: pubFile, Role: RoleConsumer}}
	svc := startService(t, &cfg)
	errs := make(chan error, 8)
	nc, err := nats.Connect(svc.NATS().ClientURL(), nats.Nkey(pub, kp.Sign),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("nkey user: %v", err)
	}
	defer nc.Close()
	if err := nc.Publish("netfeat.decisions.x.y", nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("nkey consumer publishing a decision: %v, want a permission violation", err)
	}
}

// TestStreamDeletedWithOwnCredentials: an operator deleting the decisions
// stream with netfeat's own credentials (here its connection) while NATS
// users are configured: netfeat recreates the stream, logs it, counts it,
// and the decisions made meanwhile drain into it.
func TestStreamDeletedWithOwnCredentials(t *testing.T) {
	env := "NETFEAT_STREAM_" + strings.ToUpper(t.Name())
	t.Setenv(env, consumerPW)
	cfg, err := ParseConfig("stream.yaml", fmt.Appendf(nil, `
data_dir: %s
shutdown_timeout: 5s
http: {listen: 127.0.0.1:0}
nats:
  listen: 127.0.0.1:0
  users: [{user: grafana, password_env: %s, role: consumer}]
views:
  - {name: traffic, entity: component, metrics: [interface.in.bps], aggregations: [mean], windows: [1s], hop: 1s, allowed_lateness: 0s}
inference:
  publish: all
  jetstream: {stream: NETFEAT_DECISIONS}
  rules:
    - {name: busy, view: traffic, feature: interface_in_bps__mean_1s, op: ">", threshold: 0}
`, t.TempDir(), env))
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.SyncBuffer
	reg := NewRegistry()
	svc, err := New(cfg, reg, slog.New(slog.NewTextHandler(&logs, nil)))
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
	base := time.Now().Truncate(time.Second).Add(-20 * time.Second)
	feed := func(from, to int) {
		t.Helper()
		var batch []schema.Sample
		for s := from; s < to; s++ {
			ts := base.Add(time.Duration(s) * time.Second).UnixNano()
			batch = append(batch, schema.Sample{TS: ts, IngestTS: ts, Entity: schema.Entity{Device: "r1", Component: "eth0"},
				Metric: "interface.in.bps", Value: 100, Source: "test"})
		}
		if err := svc.Store().Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	metric := func(name string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				m := mf.GetMetric()[0]
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return -1
	}
	js, err := jetstream.New(svc.NATS().Conn())
	if err != nil {
		t.Fatal(err)
	}
	streamMsgs := func() uint64 {
		s, err := js.Stream(context.Background(), "NETFEAT_DECISIONS")
		if err != nil {
			return 0
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	feed(0, 4)
	testkit.Eventually(t, "decisions in the stream", func() bool { return streamMsgs() > 0 })
	if err := js.DeleteStream(context.Background(), "NETFEAT_DECISIONS"); err != nil {
		t.Fatal(err)
	}
	published := metric("netfeat_inference_published_total")
	feed(4, 8)
	testkit.Eventually(t, "stream recreated", func() bool { return metric("netfeat_inference_stream_recreated_total") == 1 })
	testkit.Eventually(t, "outbox drained into the new stream", func() bool {
		return metric("netfeat_inference_outbox_pending") == 0 && metric("netfeat_inference_published_total") > published && streamMsgs() > 0
	})
	if !strings.Contains(logs.String(), "was missing and has been recreated") {
		t.Fatalf("no log line for the recreation:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), consumerPW) {
		t.Fatal("a password reached the log")
	}
}

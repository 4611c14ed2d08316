package service

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/netfeat/netfeat/schema"
)

// AuthConfig is the `auth` section: the bearer tokens every front end
// checks alike (HTTP, Flight SQL and the NATS query responder).
type AuthConfig struct {
	// Tokens are the accepted bearer tokens, each with its scopes.
	Tokens []TokenConfig `yaml:"tokens"`
}

// TokenConfig is one bearer token. The secret comes from a file (trailing
// newline trimmed) or an environment variable, never from the
// configuration itself, so a configuration dump holds no secret.
type TokenConfig struct {
	// Name identifies the token in logs; never the secret.
	Name string `yaml:"name"`
	// Scopes are read (query, watch, console, GET of models and
	// decisions) and admin (everything read allows, plus uploading,
	// promoting and rolling back models).
	Scopes    []string `yaml:"scopes"`
	TokenFile string   `yaml:"token_file"`
	TokenEnv  string   `yaml:"token_env"`
}

// ServerTLSConfig names PEM files for a TLS listener; ClientCAFile, when
// set, requires clients to present a certificate signed by it.
type ServerTLSConfig struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// NATSUserConfig is a user of the embedded NATS server: a user name with a
// password (from a file or an environment variable), or an nkey (its
// public key, from a file). Role sets its permissions.
type NATSUserConfig struct {
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// NKeyFile holds the user's public nkey ("U..."); the client keeps
	// the seed.
	NKeyFile string `yaml:"nkey_file"`
	// Role is consumer (subscribe to netfeat.decisions.> only) or query
	// (that, plus requests on the query subject).
	Role string `yaml:"role"`
}

// Scopes of a bearer token; admin includes read.
const (
	ScopeRead  = "read"
	ScopeAdmin = "admin"
)

// NATS user roles.
const (
	RoleConsumer = "consumer"
	RoleQuery    = "query"
)

// scope is what a request was granted; higher includes lower.
type scope uint8

const (
	scopeNone scope = iota
	scopeRead
	scopeAdmin
)

// enabled reports whether TLS is configured.
func (s ServerTLSConfig) enabled() bool { return s.CertFile != "" }

// hasTokens reports whether any bearer token is configured (auth.tokens,
// or the older single http.token_file/token_env, which is an admin token).
func (c *Config) hasTokens() bool {
	return len(c.Auth.Tokens) > 0 || c.HTTP.TokenFile != "" || c.HTTP.TokenEnv != ""
}

// isLoopback reports whether a host:port binds to loopback only: a host in
// 127.0.0.0/8, ::1 or "localhost". An empty host binds every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateAuth checks the auth keys and refuses listeners that bind beyond
// loopback with no authentication, unless their allow_unauthenticated says
// so (#19: locked by default).
func (c *Config) validateAuth() []error {
	var errs []error
	names := map[string]bool{}
	for i, t := range c.Auth.Tokens {
		key := fmt.Sprintf("auth.tokens[%d]", i)
		if t.Name == "" {
			errs = append(errs, schema.Errorf(key+".name", "is required"))
		} else if names[t.Name] {
			errs = append(errs, schema.Errorf(key+".name", "%q: another token has this name", t.Name))
		}
		names[t.Name] = true
		if (t.TokenFile == "") == (t.TokenEnv == "") {
			errs = append(errs, schema.Errorf(key+".token_file", "set token_file or token_env, exactly one"))
		}
		if len(t.Scopes) == 0 {
			errs = append(errs, schema.Errorf(key+".scopes", "is required: read, admin or both"))
		}
		for _, s := range t.Scopes {
			if s != ScopeRead && s != ScopeAdmin {
				errs = append(errs, schema.Errorf(key+".scopes", "%q: must be read or admin", s))
			}
		}
	}
	users := map[string]bool{}
	for i, u := range c.NATS.Users {
		key := fmt.Sprintf("nats.users[%d]", i)
		if c.NATS.URL != "" {
			errs = append(errs, schema.Errorf("nats.users", "only applies to the embedded server (without nats.url)"))
			break
		}
		pw := u.PasswordFile != "" || u.PasswordEnv != ""
		switch {
		case u.NKeyFile != "" && (u.User != "" || pw):
			errs = append(errs, schema.Errorf(key+".nkey_file", "an nkey user has no user name or password"))
		case u.NKeyFile == "" && u.User == "":
			errs = append(errs, schema.Errorf(key+".user", "is required (or nkey_file)"))
		case u.NKeyFile == "" && (u.PasswordFile == "") == (u.PasswordEnv == ""):
			errs = append(errs, schema.Errorf(key+".password_file", "set password_file or password_env, exactly one"))
		}
		if u.User == natsInternalUser {
			errs = append(errs, schema.Errorf(key+".user", "%q is netfeat's own user", u.User))
		} else if u.User != "" && users[u.User] {
			errs = append(errs, schema.Errorf(key+".user", "%q: another user has this name", u.User))
		}
		users[u.User] = true
		if u.Role != RoleConsumer && u.Role != RoleQuery {
			errs = append(errs, schema.Errorf(key+".role", "must be consumer or query, got %q", u.Role))
		}
	}
	for key, t := range map[string]ServerTLSConfig{"http.tls": c.HTTP.TLS, "query.flight_tls": c.Query.FlightTLS, "nats.server_tls": c.NATS.ServerTLS} {
		if (t.CertFile == "") != (t.KeyFile == "") {
			errs = append(errs, schema.Errorf(key+".cert_file", "cert_file and key_file go together"))
		}
		if t.ClientCAFile != "" && t.CertFile == "" {
			errs = append(errs, schema.Errorf(key+".client_ca_file", "needs cert_file and key_file"))
		}
	}
	if c.NATS.URL != "" && c.NATS.ServerTLS.enabled() {
		errs = append(errs, schema.Errorf("nats.server_tls", "only applies to the embedded server (without nats.url)"))
	}

	const why = "binds beyond loopback without authentication: configure %s, or set %s: true to accept that"
	if c.HTTP.Listen != "" && !isLoopback(c.HTTP.Listen) && !c.hasTokens() && !c.HTTP.AllowUnauthenticated {
		errs = append(errs, schema.Errorf("http.listen", why, "auth.tokens", "http.allow_unauthenticated"))
	}
	if c.Query.FlightListen != "" && !isLoopback(c.Query.FlightListen) && !c.hasTokens() && !c.Query.FlightAllowUnauthenticated {
		errs = append(errs, schema.Errorf("query.flight_listen", why, "auth.tokens", "query.flight_allow_unauthenticated"))
	}
	if c.NATS.URL == "" && !isLoopback(c.NATS.Listen) && len(c.NATS.Users) == 0 && !c.NATS.AllowUnauthenticated {
		errs = append(errs, schema.Errorf("nats.listen", why, "nats.users", "nats.allow_unauthenticated"))
	}
	return errs
}

// warnUnauthenticated logs, at start, every listener that binds beyond
// loopback with no authentication because the configuration allows it.
func (c *Config) warnUnauthenticated(log *slog.Logger) {
	const msg = "listener open to the network without authentication (allow_unauthenticated)"
	if !isLoopback(c.HTTP.Listen) && !c.hasTokens() {
		log.Warn(msg, "listener", "http", "addr", c.HTTP.Listen)
	}
	if c.Query.FlightListen != "" && !isLoopback(c.Query.FlightListen) && !c.hasTokens() {
		log.Warn(msg, "listener", "flight_sql", "addr", c.Query.FlightListen)
	}
	if c.NATS.URL == "" && !isLoopback(c.NATS.Listen) && len(c.NATS.Users) == 0 {
		log.Warn(msg, "listener", "nats", "addr", c.NATS.Listen)
	}
}

// tokenSet holds the configured bearer tokens as SHA-256 sums, so that a
// comparison takes the same time whatever the length or content of the
// token presented.
type tokenSet struct {
	tokens []namedToken
}

type namedToken struct {
	name  string
	sum   [sha256.Size]byte
	scope scope
}

// loadTokens reads every configured token. Errors name the token and its
// source, never its value.
func loadTokens(c *Config) (*tokenSet, error) {
	ts := &tokenSet{}
	if c.HTTP.TokenFile != "" || c.HTTP.TokenEnv != "" {
		secret, err := readSecret(c.HTTP.TokenFile, c.HTTP.TokenEnv)
		if err != nil {
			return nil, fmt.Errorf("http token: %w", err)
		}
		ts.tokens = append(ts.tokens, namedToken{name: "http.token", sum: sha256.Sum256([]byte(secret)), scope: scopeAdmin})
	}
	for _, t := range c.Auth.Tokens {
		secret, err := readSecret(t.TokenFile, t.TokenEnv)
		if err != nil {
			return nil, fmt.Errorf("auth token %s: %w", t.Name, err)
		}
		sc := scopeRead
		for _, s := range t.Scopes {
			if s == ScopeAdmin {
				sc = scopeAdmin
			}
		}
		ts.tokens = append(ts.tokens, namedToken{name: t.Name, sum: sha256.Sum256([]byte(secret)), scope: sc})
	}
	return ts, nil
}

// enabled reports whether requests must carry a token.
func (ts *tokenSet) enabled() bool { return ts != nil && len(ts.tokens) > 0 }

// scopeOf returns the scope an Authorization header value ("Bearer <token>")
// grants. Every token is compared, in constant time, whatever matches.
func (ts *tokenSet) scopeOf(header string) scope {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return scopeNone
	}
	sum := sha256.Sum256([]byte(tok))
	best := scopeNone
	for _, t := range ts.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 && t.scope > best {
			best = t.scope
		}
	}
	return best
}

// allows reports whether header grants need; with no tokens configured
// everything is allowed.
func (ts *tokenSet) allows(header string, need scope) bool {
	return !ts.enabled() || ts.scopeOf(header) >= need
}

// check answers 401 (no or wrong token) or 403 (token without the scope)
// and returns false, or returns true.
func (ts *tokenSet) check(w http.ResponseWriter, r *http.Request, need scope) bool {
	if !ts.enabled() {
		return true
	}
	switch got := ts.scopeOf(r.Header.Get("Authorization")); {
	case got == scopeNone:
		w.Header().Set("WWW-Authenticate", `Bearer realm="netfeat"`)
		http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
		return false
	case got < need:
		http.Error(w, "the bearer token's scope does not allow this (needs admin)", http.StatusForbidden)
		return false
	}
	return true
}

// withScope wraps an HTTP handler so that it serves only requests whose
// bearer token grants need (when tokens are configured): 401 without a
// known token, 403 with too small a scope, 503 before the query stage has
// read the tokens. New APIs mount through it: scopeRead for what only
// reads (SQL, watch, console), scopeAdmin for what changes netfeat
// (models, targets, configuration).
func (s *Service) withScope(need scope, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := s.pipe.auth.Load()
		if auth == nil {
			http.Error(w, "not started", http.StatusServiceUnavailable)
			return
		}
		if auth.check(w, r, need) {
			h.ServeHTTP(w, r)
		}
	})
}

// serverTLS builds a listener's TLS configuration, or nil when none is
// configured.
func serverTLS(key string, c ServerTLSConfig) (*tls.Config, error) {
	if !c.enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.client_ca_file: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.client_ca_file %s: no PEM certificates", key, c.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// readNKey reads a user's public nkey from a file.
func readNKey(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read nkey file: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if !nkeys.IsValidPublicUserKey(k) {
		return "", errors.New("nkey file " + file + " holds no public user nkey (U...)")
	}
	return k, nil
}

// natsInternalUser is netfeat's own user on the embedded server when users
// are configured: every permission, a password generated at each start and
// never logged.
const natsInternalUser = "netfeat"

package testkit

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// natsReady is how long [StartNATS] waits for the server to accept clients.
const natsReady = 10 * time.Second

// StartNATS runs an embedded NATS server with opts and shuts it down (and
// waits for it) when the test ends. Defaults fill what opts leaves zero:
// Host 127.0.0.1 (tests use only loopback), Port 0 means a random free
// port (nats-server would take 4222), and the server neither logs nor
// installs signal handlers. Set JetStream and StoreDir for JetStream. A
// test may shut the server down itself; the cleanup is then a no-op.
func StartNATS(t testing.TB, opts server.Options) *server.Server {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(&opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(natsReady) {
		t.Fatalf("nats server not ready within %v", natsReady)
	}
	return s
}

// ConnectNATS connects to the server at url with opts and closes the
// connection when the test ends.
func ConnectNATS(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("nats connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

package fleettest

import (
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EdgeServer is an edge's embedded NATS server: JetStream with the site as
// its domain, store in a directory, and a leafnode remote to the hub.
type EdgeServer struct {
	Site, StoreDir, LeafURL string
	Srv                     *server.Server
	t                       testing.TB
}

// StartEdge starts the embedded server of site with its JetStream store in
// storeDir and leafURL (a Link's URL) as its leafnode remote, and shuts it
// down at the end of the test. The remote denies netfeat.> both ways, as
// an edge should: only JetStream's sourcing crosses the link.
func StartEdge(t testing.TB, site, storeDir, leafURL string) *EdgeServer {
	t.Helper()
	e := &EdgeServer{Site: site, StoreDir: storeDir, LeafURL: leafURL, t: t}
	e.start()
	t.Cleanup(e.Shutdown)
	return e
}

func (e *EdgeServer) start() {
	u, err := url.Parse(e.LeafURL)
	if err != nil {
		e.t.Fatalf("fleettest: leaf url: %v", err)
	}
	opts := &server.Options{
		ServerName:      "edge-" + e.Site,
		Host:            "127.0.0.1",
		Port:            -1,
		NoSigs:          true,
		NoLog:           true,
		JetStream:       true,
		JetStreamDomain: e.Site,
		StoreDir:        e.StoreDir,
		LeafNode: server.LeafNodeOpts{
			ReconnectInterval: 100 * time.Millisecond,
			Remotes: []*server.RemoteLeafOpts{{
				URLs:        []*url.URL{u},
				DenyImports: []string{"netfeat.>"},
				DenyExports: []string{"netfeat.>"},
			}},
		},
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		e.t.Fatalf("fleettest: edge server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		e.t.Fatalf("fleettest: edge server %s not ready", e.Site)
	}
	e.Srv = srv
}

// Connect returns a client connection to the edge server, closed at the
// end of the test.
func (e *EdgeServer) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(e.Srv.ClientURL(), nats.Name("fleettest-edge-"+e.Site))
	if err != nil {
		t.Fatalf("fleettest: connect to edge: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Shutdown stops the server (a restarted edge keeps its store).
func (e *EdgeServer) Shutdown() {
	if e.Srv != nil {
		e.Srv.Shutdown()
		e.Srv.WaitForShutdown()
		e.Srv = nil
	}
}

// Restart shuts the server down and starts it again over the same store.
func (e *EdgeServer) Restart() {
	e.Shutdown()
	e.start()
}

// LeafConnected reports whether the edge has a leafnode connection.
func (e *EdgeServer) LeafConnected() bool { return e.Srv != nil && e.Srv.NumLeafNodes() > 0 }

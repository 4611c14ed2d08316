package federated

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestNoDataLeavesTheEdges runs a round of 10 edges, each behind its own
// NATS server, a leaf node of the hub's (denying netfeat.> both ways as
// the service's edges do), one of which never returns from training. A
// spy subscribed to ">" on the hub's server sees everything that crosses
// to the hub. The test asserts that only federated subjects appear, that
// every payload decodes strictly as the message its subject names (keys,
// masked vectors, reveals from edges; start, peers, unmask, global from
// the hub), that no feature value of any edge's rows appears in any
// payload (as text or as the bytes of a float64), and reports the bytes
// each edge sent and received in the round (≤ 10 kB).
func TestNoDataLeavesTheEdges(t *testing.T) {
	hubSrv, hubOpts := startServer(t, true)
	cfg := Config{Model: "congestion", Dim: 17, MinEdges: 3, Expect: 10, Deadline: 2 * time.Second}
	edges, _, _ := honestEdges(9, 17, 3)
	edges = append(edges, edgeData{name: "site09", tr: hang})

	type seen struct {
		subj string
		data []byte
	}
	var mu sync.Mutex
	var msgs []seen
	spy := connect(t, hubSrv)
	if _, err := spy.Subscribe(">", func(m *nats.Msg) {
		if strings.HasPrefix(m.Subject, "probe.") || strings.HasPrefix(m.Subject, "_PROBE.") {
			return // the test's own readiness probes, below
		}
		mu.Lock()
		msgs = append(msgs, seen{m.Subject, bytes.Clone(m.Data)})
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	c, _ := newCoordinator(t, cfg, connect(t, hubSrv))

	var conns []*nats.Conn
	for _, e := range edges {
		leaf := startLeaf(t, "edge-"+e.name, hubOpts.LeafNode.Port)
		nc := connect(t, leaf)
		conns = append(conns, nc)
	}
	startParticipants(t, cfg, edges, conns)
	// The edges' subscriptions must have crossed their leaf connections
	// before the round starts: a responder subscribed on each edge's
	// connection after its participant's answers the hub once its
	// subscriptions (sent in order) have arrived.
	hubNC, err := nats.Connect(hubSrv.ClientURL(), nats.CustomInboxPrefix("_PROBE"))
	if err != nil {
		t.Fatal(err)
	}
	defer hubNC.Close()
	for i, e := range edges {
		if _, err := conns[i].Subscribe("probe."+e.name, func(m *nats.Msg) { _ = m.Respond(nil) }); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the edges' interest at the hub", func() bool {
			_, err := hubNC.Request("probe."+e.name, nil, 100*time.Millisecond)
			return err == nil
		})
	}
	// What an edge keeps to itself on its own server (netfeat.>: its
	// decisions, its fleet streams' subjects) stays there.
	for i, e := range edges {
		if e.lr != nil {
			_ = conns[i].Publish("netfeat.fleet."+e.name+".windows.v.dev", []byte(strconv.FormatFloat(e.lr.rows[0][0], 'g', -1, 64)))
		}
	}
	st := c.RunRound(context.Background())
	if st.Result != "completed" || st.Updates != 9 || len(st.Dropped) != 1 {
		t.Fatalf("round: %+v", st)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the global message at the spy", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(msgs) > 0 && strings.HasSuffix(msgs[len(msgs)-1].subj, ".global")
	})

	// Every value of every edge's rows, as text and as float64 bytes.
	var needles [][]byte
	for _, e := range edges {
		if e.lr == nil {
			continue
		}
		for _, row := range e.lr.rows {
			for _, x := range row {
				needles = append(needles, []byte(strconv.FormatFloat(x, 'g', -1, 64)))
				var b [8]byte
				binary.LittleEndian.PutUint64(b[:], math.Float64bits(x))
				needles = append(needles, b[:])
			}
		}
	}

	mu.Lock()
	defer mu.Unlock()
	perEdge := map[string]int{}
	broadcast := 0
	phases := map[string]int{}
	for _, m := range msgs {
		rnd, phase, edge, ok := parseSubject(m.subj, "netfeat-fl", cfg.Model)
		if !ok || rnd != st.Round {
			t.Fatalf("a message on %q crossed to the hub", m.subj)
		}
		phases[phase]++
		var err error
		switch phase {
		case PhaseStart:
			err = decode(m.data, new(Start))
		case PhasePeers:
			err = decode(m.data, new(Peers))
		case PhaseUnmask:
			err = decode(m.data, new(Unmask))
		case PhaseGlobal:
			err = decode(m.data, new(Global))
		case PhaseKeys:
			var k Keys
			if err = decode(m.data, &k); err == nil && len(k.Pub) != 32 {
				t.Fatalf("keys of %d bytes", len(k.Pub))
			}
		case PhaseMasked:
			var v Masked
			if err = decode(m.data, &v); err == nil && len(v.Vec) != cfg.Dim+1 {
				t.Fatalf("masked vector of %d elements", len(v.Vec))
			}
		case PhaseReveal:
			var r Reveal
			if err = decode(m.data, &r); err == nil {
				for _, s := range r.Seeds {
					if s.Edge != "site09" {
						t.Fatalf("%s revealed its seed with %s, a survivor", r.Edge, s.Edge)
					}
				}
			}
		default:
			t.Fatalf("unknown phase %q on %s", phase, m.subj)
		}
		if err != nil {
			t.Fatalf("%s: payload does not decode as %s: %v", m.subj, phase, err)
		}
		if (edge == "") != (phase == PhaseStart || phase == PhasePeers || phase == PhaseUnmask || phase == PhaseGlobal) {
			t.Fatalf("%s: a %s message on the wrong side", m.subj, phase)
		}
		for _, n := range needles {
			if bytes.Contains(m.data, n) {
				t.Fatalf("%s carries an edge's feature value %q", m.subj, n)
			}
		}
		size := len(m.subj) + len(m.data)
		if edge == "" {
			broadcast += size
		} else {
			perEdge[edge] += size
		}
	}
	for _, p := range []string{PhaseStart, PhaseKeys, PhasePeers, PhaseMasked, PhaseUnmask, PhaseReveal, PhaseGlobal} {
		if phases[p] == 0 {
			t.Fatalf("no %s message seen: %v", p, phases)
		}
	}
	worst := 0
	for _, e := range edges {
		worst = max(worst, perEdge[e.name]+broadcast)
	}
	t.Logf("round %d, 10 edges, dim 17, 1 dropped: %d messages; per edge sent ≤ %d B, received %d B (hub broadcasts); ≤ %d B per edge per round",
		st.Round, len(msgs), worst-broadcast, broadcast, worst)
	if worst > 10_000 {
		t.Fatalf("%d bytes for one edge in one round, more than 10 kB", worst)
	}
}

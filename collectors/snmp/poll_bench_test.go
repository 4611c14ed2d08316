package snmp

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/schema"
)

// replaySession answers with recorded response messages, in turn, so that
// a benchmark measures the poller's work on a poll without the network or
// the agent.
type replaySession struct {
	msgs [][]byte
	next int
}

func (s *replaySession) answer(r *response) error {
	msg := s.msgs[s.next%len(s.msgs)]
	s.next++
	return r.decode(msg)
}

func (s *replaySession) get(_ context.Context, r *response, _ [][]uint32) error { return s.answer(r) }
func (s *replaySession) getBulk(_ context.Context, r *response, _ [][]uint32, _ uint32) error {
	return s.answer(r)
}
func (s *replaySession) watch(context.Context) func() { return func() {} }
func (s *replaySession) close()                       {}

// recordSession passes requests to a real session and keeps the answers.
type recordSession struct {
	session
	msgs [][]byte
}

func (s *recordSession) get(ctx context.Context, r *response, oids [][]uint32) error {
	err := s.session.get(ctx, r, oids)
	s.msgs = append(s.msgs, append([]byte(nil), r.msg...))
	return err
}

func (s *recordSession) getBulk(ctx context.Context, r *response, oids [][]uint32, maxRep uint32) error {
	err := s.session.getBulk(ctx, r, oids, maxRep)
	s.msgs = append(s.msgs, append([]byte(nil), r.msg...))
	return err
}

// recordedPoll polls one simulated device serving the load recording (50
// interfaces, the generic profile's plan) twice and returns the device,
// ready for a third poll, with the second poll's answers (the steady
// state: row counts known).
func recordedPoll(b *testing.B) (*device, [][]byte) {
	b.Helper()
	file := filepath.Join(b.TempDir(), "if50.snmprec")
	if err := loadRecording(file, 50); err != nil {
		b.Fatal(err)
	}
	mib, err := snmpagent.LoadMIB(file)
	if err != nil {
		b.Fatal(err)
	}
	sim := snmpagent.NewSimulator(nil)
	d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: "sim", Community: "public", Rate: 125_000})
	if err != nil {
		b.Fatal(err)
	}
	sim.Add(d, "127.0.0.1:0")
	if err := sim.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer sim.Stop(context.Background())
	cfg := DefaultConfig()
	cfg.Targets = []Target{{Name: "sim", Address: sim.Endpoints()[0].Addr}}
	p, err := New(cfg, loadPlan, schema.ObservationSinkFunc(func(context.Context, []schema.Observation) error { return nil }), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	dev := p.devices[0]
	if err := p.PollOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	rec := &recordSession{session: dev.sess}
	dev.sess = rec
	if err := p.PollOnce(context.Background()); err != nil {
		b.Fatal(err)
	}
	rec.session.close()
	dev.sess = nil
	return dev, rec.msgs
}

// BenchmarkPoll measures the poller's CPU for one poll of a 50-interface
// device (1,307 values, 7 answers), with the answers replayed from memory:
//
//   - decode=netfeat: the whole poll as the poller does it (identity,
//     walk, batch, the sink call);
//   - decode=gosnmp: only gosnmp's decoding of the same answers into
//     observations, as the poller did before it had its own v2c decoder.
//
// go test -tags duckdb_arrow -run '^$' -bench Poll -benchmem ./collectors/snmp/
func BenchmarkPoll(b *testing.B) {
	dev, msgs := recordedPoll(b)
	var values int
	for _, m := range msgs {
		var r response
		if err := r.decode(m); err != nil {
			b.Fatal(err)
		}
		values += len(r.vbs)
	}
	b.Run("decode=netfeat", func(b *testing.B) {
		var n atomic.Int64
		dev.p.sink = schema.ObservationSinkFunc(func(_ context.Context, batch []schema.Observation) error {
			n.Add(int64(len(batch)))
			return nil
		})
		dev.sess = &replaySession{msgs: msgs}
		buf := &pollBuf{}
		b.ReportAllocs()
		for b.Loop() {
			if err := dev.pollAndRecord(context.Background(), time.Now(), buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n.Load())/float64(b.N), "values/op")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n.Load()), "ns/value")
	})
	b.Run("decode=gosnmp", func(b *testing.B) {
		g := &gosnmp.GoSNMP{Version: gosnmp.Version2c}
		var batch []schema.Observation
		b.ReportAllocs()
		for b.Loop() {
			batch = batch[:0]
			for _, m := range msgs {
				pkt, err := g.SnmpDecodePacket(append([]byte(nil), m...))
				if err != nil {
					b.Fatal(err)
				}
				for i := range pkt.Variables {
					if o, ok := toObservation("sim", schema.ProtocolSNMP, &pkt.Variables[i], 1); ok {
						batch = append(batch, o)
					}
				}
			}
		}
		b.ReportMetric(float64(values), "varbinds/op")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(values), "ns/varbind")
	})
}

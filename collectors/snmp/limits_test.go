package snmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const ifDescrCol = "1.3.6.1.2.1.2.2.1.2"

// stringTableAgent serves the identity and an ifDescr column whose row i
// (1-based) is size(i) bytes long, one row per GETBULK answer.
func stringTableAgent(t *testing.T, rows int, size func(int) int) string {
	return fakeAgent(t, func(req *gosnmp.SnmpPacket, _ []byte) []byte {
		if req.PDUType != gosnmp.GetBulkRequest {
			return respond(req, identityVars(req))
		}
		var idx int
		name := strings.TrimPrefix(req.Variables[0].Name, ".")
		if rest, ok := strings.CutPrefix(name, ifDescrCol+"."); ok {
			fmt.Sscan(rest, &idx)
		}
		idx++
		if idx > rows { // past the end of the column
			return respond(req, []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.2.2.1.3.1", Type: gosnmp.Integer, Value: 6}})
		}
		v := bytes.Repeat([]byte{'x'}, size(idx))
		return respond(req, []gosnmp.SnmpPDU{{Name: fmt.Sprintf(".%s.%d", ifDescrCol, idx), Type: gosnmp.OctetString, Value: v}})
	})
}

// lockedBuf is a log destination safe for the poll goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func limitsPoller(t *testing.T, addr string, tweak func(*Config)) (*Poller, *collect, *lockedBuf) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Defaults.Timeout = 5 * time.Second
	cfg.Defaults.Retries = intp(0)
	cfg.Targets = []Target{{Name: "big-strings", Address: addr, Params: Params{MaxRepetitions: 1}}}
	tweak(&cfg)
	logs := &lockedBuf{}
	sink := &collect{}
	p, err := New(cfg, StaticPlan{Profile: "t", Columns: []string{ifDescrCol}}, sink, prometheus.NewRegistry(),
		slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p, sink, logs
}

// TestPollDropsOversizedValues: a 60 KB string is dropped and counted,
// named with its device and OID; the poll's other values arrive.
func TestPollDropsOversizedValues(t *testing.T) {
	addr := stringTableAgent(t, 3, func(i int) int {
		if i == 2 {
			return 60_000
		}
		return 10
	})
	p, sink, logs := limitsPoller(t, addr, func(*Config) {})
	if err := p.PollOnce(context.Background()); err != nil {
		t.Fatalf("poll: %v", err)
	}
	var rows []string
	for _, o := range sink.byDevice()["big-strings"] {
		if strings.HasPrefix(o.Path, ifDescrCol+".") {
			rows = append(rows, o.Path)
			if len(o.Str) > DefaultMaxValueSize {
				t.Fatalf("%s: a %d-byte value was delivered", o.Path, len(o.Str))
			}
		}
	}
	if strings.Join(rows, " ") != ifDescrCol+".1 "+ifDescrCol+".3" {
		t.Fatalf("rows delivered: %v, want rows 1 and 3", rows)
	}
	if n := testutil.ToFloat64(p.m.valuesDrop.WithLabelValues("big-strings")); n != 1 {
		t.Fatalf("netfeat_snmp_values_dropped_total = %v, want 1", n)
	}
	for _, want := range []string{"device=big-strings", "oid=" + ifDescrCol + ".2", "bytes=60000"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestPollRefusesOverMaxPollBytes: values adding up past max_poll_bytes
// fail the poll, counted, the error naming the device and the OID.
func TestPollRefusesOverMaxPollBytes(t *testing.T) {
	addr := stringTableAgent(t, 20, func(int) int { return 30_000 })
	p, sink, _ := limitsPoller(t, addr, func(c *Config) {
		c.MaxValueSize = 65535
		c.MaxPollBytes = 100_000
	})
	err := p.PollOnce(context.Background())
	var pe *PollError
	if !errors.As(err, &pe) || pe.Reason != ReasonPollSize {
		t.Fatalf("poll error %v, want reason %s", err, ReasonPollSize)
	}
	if msg := err.Error(); !strings.Contains(msg, "big-strings") || !strings.Contains(msg, "OID "+ifDescrCol+".4") {
		t.Fatalf("error %q does not name the device and the OID", msg)
	}
	if n := testutil.ToFloat64(p.m.polls.WithLabelValues("big-strings", ReasonPollSize)); n != 1 {
		t.Fatalf("netfeat_snmp_polls_total{result=%q} = %v, want 1", ReasonPollSize, n)
	}
	if len(sink.byDevice()["big-strings"]) != 0 {
		t.Fatal("a refused poll delivered observations")
	}
}

// TestReleaseDropsOversizedBuffer: a poll buffer grown past
// maxKeptPollBuf is not kept for reuse; a normal one is.
func TestReleaseDropsOversizedBuffer(t *testing.T) {
	p, _, _ := limitsPoller(t, "127.0.0.1:161", func(*Config) {})
	ctx := context.Background()
	b, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.text = append(b.text, make([]byte, maxKeptPollBuf+1)...)
	p.release(b)
	if len(p.bufs) != 0 {
		t.Fatalf("a %d-byte buffer was kept for reuse", b.retained())
	}
	if n := testutil.ToFloat64(p.m.bufsDropped); n != 1 {
		t.Fatalf("netfeat_snmp_poll_buffers_dropped_total = %v, want 1", n)
	}
	b, err = p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.text = append(b.text, make([]byte, 4096)...)
	p.release(b)
	if len(p.bufs) != 1 || p.bufs[0] != b {
		t.Fatalf("a small buffer was not kept (%d free)", len(p.bufs))
	}
}

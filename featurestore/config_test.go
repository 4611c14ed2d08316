package featurestore

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/netfeat/netfeat/schema"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		yaml   string
		fields []string // FieldError paths expected, in order
	}{
		{"empty is valid", ``, nil},
		{"all set", "seal_rows: 1000\nseal_age: 5s\nretention_age: 2h\nmemory_budget: 256MiB\nfsync: batch\n" +
			"group_commit_delay: 1ms\nchunk_ttl: 72h\nrecovery: quarantine\n", nil},
		{"bad values", "seal_rows: -1\nmemory_budget: 1000\nfsync: sometimes\nrecovery: wipe\ngroup_commit_delay: 2s\n",
			[]string{"seal_rows", "memory_budget", "fsync", "group_commit_delay", "recovery"}},
		{"negative durations", "seal_age: -1s\nretention_age: -1s\nchunk_ttl: -1h\n",
			[]string{"seal_age", "retention_age", "chunk_ttl"}},
		{"sizes that would exhaust memory at start", "commit_queue: 2000000000\nwindow_queue: 2000000000\nbadger_block_cache: 4TiB\nbadger_memtable: 2GiB\nmemory_budget: 2TiB\n",
			[]string{"memory_budget", "commit_queue", "window_queue", "badger_memtable", "badger_block_cache"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			dec := yaml.NewDecoder(strings.NewReader(tc.yaml))
			dec.KnownFields(true)
			if err := dec.Decode(&c); err != nil && tc.yaml != "" {
				t.Fatalf("decode: %v", err)
			}
			err := c.Validate()
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var fe *schema.FieldError
					if !errors.As(e, &fe) {
						t.Fatalf("error %v is not a *schema.FieldError", e)
					}
					got = append(got, fe.Field)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("fields %v, want %v (err: %v)", got, tc.fields, err)
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"512MiB", 512 << 20, true},
		{"2GiB", 2 << 30, true},
		{"64MB", 64e6, true},
		{"10 KiB", 10 << 10, true},
		{"-1", 0, false},
		{"lots", 0, false},
		{"9999999TiB", 0, false}, // overflows int64
	}
	for _, tc := range tests {
		got, err := ParseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Fatalf("ParseByteSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestOpenRejectsBadViews(t *testing.T) {
	v := cpuView([]time.Duration{time.Minute}, time.Minute, 0)
	bad := v
	bad.Hop = 0
	_, err := openStarted(t.Context(), Config{}, []schema.FeatureView{v, v, bad}, t.TempDir(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "views[1].name") || !strings.Contains(err.Error(), "views[2]") {
		t.Fatalf("Open with a duplicate and an invalid view: %v", err)
	}
}

func TestWALCodec(t *testing.T) {
	recs := []rec{
		{ts: 1_700_000_000_000_000_000, ingest: 1_700_000_000_000_000_500, value: 1.5, sid: 0},
		{ts: 1_699_999_999_000_000_000, ingest: 1_700_000_000_000_000_600, value: math.NaN(), sid: 70000},
		{ts: -5, ingest: 0, value: math.Inf(-1), sid: 3},
	}
	enc := encodeWALBatch(nil, recs)
	got, err := decodeWALBatch(nil, enc)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(got) != len(recs) {
		t.Fatalf("decoded %d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		a, b := got[i], recs[i]
		if a.ts != b.ts || a.ingest != b.ingest || a.sid != b.sid || math.Float64bits(a.value) != math.Float64bits(b.value) {
			t.Fatalf("record %d: got %+v, want %+v", i, a, b)
		}
	}
	for _, cut := range []int{0, 1, 5, len(enc) / 2, len(enc) - 1} {
		if _, err := decodeWALBatch(nil, enc[:cut]); !errors.Is(err, errTruncated) {
			t.Fatalf("decode of %d/%d bytes: %v, want errTruncated", cut, len(enc), err)
		}
	}
	flipped := append([]byte(nil), enc...)
	flipped[3] ^= 0x40
	if _, err := decodeWALBatch(nil, flipped); err == nil {
		t.Fatal("decode of a corrupted frame succeeded")
	}
}

func TestChunkCodec(t *testing.T) {
	c := &chunk{ts: []int64{3, 1, 2}, sid: []int32{0, 1, 0}, val: []float64{0.5, 1.5, 2.5}, minTS: 1, maxTS: 3, firstSeq: 4, lastSeq: 6}
	b, err := encodeChunk(c)
	if err != nil {
		t.Fatal(err)
	}
	m := chunkMeta{firstSeq: 4, lastSeq: 6, minTS: 1, maxTS: 3, rows: 3}
	if pm, err := parseChunkKey(chunkKey(m)); err != nil || pm != m {
		t.Fatalf("chunk key round trip: %+v, %v", pm, err)
	}
	got, err := decodeChunk(b, m)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.ts {
		if got.ts[i] != c.ts[i] || got.sid[i] != c.sid[i] || got.val[i] != c.val[i] {
			t.Fatalf("row %d differs", i)
		}
	}
	m.rows = 4
	if _, err := decodeChunk(b, m); err == nil {
		t.Fatal("a chunk with fewer rows than its key says decoded without error")
	}
}

func TestSeriesDefCodec(t *testing.T) {
	d := seriesDef{seriesKey: seriesKey{"r1", "Hu\x00Gi0/0", "interface.in.bps"}, source: "cisco/gnmi"}
	b := encodeSeriesDef(nil, d)
	got, err := decodeSeriesDef(b)
	if err != nil || got != d {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := decodeSeriesDef(b[:len(b)-2]); err == nil {
		t.Fatal("truncated series definition decoded")
	}
}

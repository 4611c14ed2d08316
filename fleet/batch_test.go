package fleet

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/netfeat/netfeat/schema"
)

// TestFleetBatches: windows, decisions and actions published in batches
// reach the sink one item at a time with their own ids; a retry of a batch
// is stored once, and items published again in another batch (an edge
// restarted) come to the sink under the same item ids.
func TestFleetBatches(t *testing.T) {
	t.Parallel()
	w := newWorld(t, HubConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publish := func(from, to int) {
		t.Helper()
		var rows []*schema.FeatureRow
		var ds []*schema.Decision
		var as []*Action
		for i := from; i < to; i++ {
			rows, ds, as = append(rows, testWindow(i)), append(ds, testDecision(i)), append(as, testAction(i))
		}
		if err := w.edge.PublishWindows(ctx, rows); err != nil {
			t.Fatal(err)
		}
		if err := w.edge.PublishDecisions(ctx, ds); err != nil {
			t.Fatal(err)
		}
		if err := w.edge.PublishActions(ctx, as); err != nil {
			t.Fatal(err)
		}
	}
	publish(0, 10)
	publish(10, 20)
	publish(20, 30)
	publish(10, 20) // a retry: the same message id, stored once
	publish(5, 15)  // another batch of items already sent
	kinds := []Kind{KindWindows, KindDecisions, KindActions}
	waitFor(t, 20*time.Second, "30 distinct items of every kind", func() bool {
		for _, k := range kinds {
			if w.sink.count(k) < 30 {
				return false
			}
		}
		return true
	})
	js, err := jetstream.New(w.cluster.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		if got := w.sink.count(k); got != 30 {
			t.Errorf("%s: %d distinct items at the sink, want 30", k, got)
		}
		s, err := js.Stream(ctx, HubStream(w.site, k))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().State.Msgs; got != 4 {
			t.Errorf("hub stream %s holds %d messages, want 4 (the retry stored once)", HubStream(w.site, k), got)
		}
	}
	// Every id the sink got is an item id, never a batch's.
	want := map[string]bool{}
	for i := range 30 {
		want[WindowID(w.site, testWindow(i))] = true
		want[DecisionID(w.site, testDecision(i))] = true
		want[ActionID(w.site, testAction(i))] = true
	}
	w.sink.mu.Lock()
	for id := range w.sink.seen {
		if !want[id] {
			t.Errorf("sink got id %s, not an item's", id)
		}
	}
	w.sink.mu.Unlock()
}

func TestDecodeItems(t *testing.T) {
	w1, _ := EncodeWindow(testWindow(1))
	w2, _ := EncodeWindow(testWindow(2))
	batch, err := encodeBatch([][]byte{w1, []byte(`{"schema_version":1,"view":""}`), w2})
	if err != nil {
		t.Fatal(err)
	}
	items, err := DecodeItems("paris", KindWindows, batch, EncodingZstd, "paris/windows/batch")
	if len(items) != 2 || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a batch with a bad item: %d items, err %v; want 2 and ErrCorrupt", len(items), err)
	}
	if items[0].ID != WindowID("paris", testWindow(1)) || items[1].ID != WindowID("paris", testWindow(2)) {
		t.Errorf("item ids %s %s", items[0].ID, items[1].ID)
	}
	// A plain message of one document keeps the message's id.
	items, err = DecodeItems("paris", KindWindows, w1, "", "paris/windows/x")
	if err != nil || len(items) != 1 || items[0].ID != "paris/windows/x" {
		t.Fatalf("plain: %+v, %v", items, err)
	}
	enc, _, _ := zstdCodec()
	bomb := enc.EncodeAll(bytes.Repeat([]byte("a"), maxBatchBytes+1), nil)
	for name, c := range map[string]struct {
		data     []byte
		encoding string
	}{
		"not zstd":                    {[]byte("garbage"), EncodingZstd},
		"unknown encoding":            {w1, "gzip"},
		"empty":                       {[]byte("\n\n"), ""},
		"decompresses past the bound": {bomb, EncodingZstd},
	} {
		if _, err := SplitBatch(c.data, c.encoding); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", name, err)
		}
	}
}

// encodeBatch joins docs with newlines and compresses them.
func encodeBatch(docs [][]byte) ([]byte, error) {
	return compressBatch(bytes.Join(docs, []byte("\n")))
}

package console

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	h := Handler()
	for _, p := range Patterns {
		mux.Handle(p, h)
	}
	// A method-less API pattern beside them, as the service has.
	mux.Handle("/v1/models/", http.NotFoundHandler())
	return mux
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	cases := []struct {
		method, path string
		status       int
		ctype, body  string
	}{
		{"GET", "/", 200, "text/html", `<script src="/console/app.js" defer>`},
		{"HEAD", "/", 200, "text/html", ""},
		{"GET", "/console/app.js", 200, "text/javascript", "function el("},
		{"GET", "/console/app.css", 200, "text/css", ".state-firing"},
		{"GET", "/console/vendor/uPlot.iife.min.js", 200, "text/javascript", "uPlot"},
		{"GET", "/console/vendor/uPlot.LICENSE", 200, "", "Leon Sorokin"},
		{"GET", "/console/vendor/README.md", 200, "", "1.6.32"},
		{"GET", "/console/", 404, "", ""},
		{"GET", "/console/vendor/", 404, "", ""},
		{"GET", "/console/nope.js", 404, "", ""},
		{"GET", "/index.html", 404, "", ""},
		{"GET", "/console/../console.go", 404, "", ""},
		{"POST", "/", 405, "", ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
			if c.status != 200 {
				return
			}
			if !strings.HasPrefix(res.Header.Get("Content-Type"), c.ctype) {
				t.Errorf("Content-Type %q, want %s", res.Header.Get("Content-Type"), c.ctype)
			}
			if !strings.Contains(string(body), c.body) {
				t.Errorf("body lacks %q", c.body)
			}
			if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			etag := res.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			req.Header.Set("If-None-Match", etag)
			again, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			again.Body.Close()
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("revalidation: status %d, want 304", again.StatusCode)
			}
		})
	}
}

// TestNoHTMLFromData checks the rule that keeps names from being markup:
// the page's script never hands a string to the HTML parser.
func TestNoHTMLFromData(t *testing.T) {
	b, err := assets.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(string(b), sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

func readEvents(r *bufio.Reader, ch chan<- sseEvent) {
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			close(ch)
			return
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.name != "" {
				ch <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

func decision(fp, state string, features map[string]float64) *schema.Decision {
	return &schema.Decision{Model: "congestion", ModelVersion: "v1", Fingerprint: fp, State: state, Transition: true,
		Entity: schema.Entity{Device: "r1", Component: "<script>"}, Time: time.Now(), Since: time.Now(), Features: features}
}

func TestActionFeed(t *testing.T) {
	current := []inference.ActionState{{Model: "congestion", Fingerprint: "a", State: schema.StateFiring,
		Entity: schema.Entity{Device: "r1", Component: "<script>"}}}
	reg := prometheus.NewRegistry()
	f := NewActionFeed(func() []inference.ActionState { return current }, reg)
	// A transition before any stream: its features reach the snapshot.
	f.Observe(decision("a", schema.StateFiring, map[string]float64{"util": 0.97}))
	srv := httptest.NewServer(f)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	ch := make(chan sseEvent, 16)
	go readEvents(bufio.NewReader(res.Body), ch)

	ev := next(t, ch)
	var snap []ActionEvent
	if err := json.Unmarshal([]byte(ev.data), &snap); err != nil || ev.name != "snapshot" {
		t.Fatalf("first event %q %s (%v), want the snapshot", ev.name, ev.data, err)
	}
	if len(snap) != 1 || snap[0].Features["util"] != 0.97 || snap[0].Entity.Component != "<script>" {
		t.Fatalf("snapshot %+v", snap)
	}
	testkit.Eventually(t, "one stream open", func() bool { return testutil.ToFloat64(f.streams) == 1 })

	// A NaN input (missing) is left out rather than breaking the JSON.
	nan := 0.0
	nan /= nan
	f.Observe(decision("b", schema.StatePending, map[string]float64{"util": 0.95, "missing": nan}))
	ev = next(t, ch)
	var got ActionEvent
	if err := json.Unmarshal([]byte(ev.data), &got); err != nil || ev.name != "action" {
		t.Fatalf("event %q %s (%v), want an action", ev.name, ev.data, err)
	}
	if got.Fingerprint != "b" || got.State != schema.StatePending || len(got.Features) != 1 || got.Transition.IsZero() {
		t.Fatalf("action %+v", got)
	}

	// A stream that falls behind is marked, and its next event is a
	// snapshot instead of the events it missed (a subscriber of its own
	// here: the HTTP stream's socket buffers would absorb the burst).
	slow, ok := f.subscribe()
	if !ok {
		t.Fatal("subscribe refused")
	}
	for range subscriberBuffer + 10 {
		f.Observe(decision("c", schema.StateFiring, nil))
	}
	if got := testutil.ToFloat64(f.dropped); got < 10 {
		t.Fatalf("%v events dropped with a full buffer, want at least 10", got)
	}
	if !f.takeLagged(slow) || f.takeLagged(slow) {
		t.Fatal("the slow subscriber is not marked lagging exactly once")
	}
	f.unsubscribe(slow)

	// An inactive transition forgets the features.
	f.Observe(decision("a", schema.StateInactive, nil))
	f.mu.Lock()
	_, kept := f.features["a"]
	f.mu.Unlock()
	if kept {
		t.Error("features of an inactive action kept")
	}

	// Close ends the stream and refuses new ones.
	f.Close()
	for range ch { // drains until the stream ends
	}
	res2, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: status %d, want 503", res2.StatusCode)
	}
	testkit.Eventually(t, "no stream open", func() bool { return testutil.ToFloat64(f.streams) == 0 })
	if err := f.Stop(context.Background()); err != nil { // a second close is harmless
		t.Fatal(err)
	}
}

package frontend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/query"
)

// holdSlots occupies every database of e with a query that waits in its
// result callback until the returned function is called. The engine must
// run MaxConcurrent databases (TotalMemory unset or large enough).
func holdSlots(t *testing.T, e *query.Engine) (release func()) {
	t.Helper()
	stop := make(chan struct{})
	var started, done sync.WaitGroup
	for range e.Options().MaxConcurrent {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			err := e.Query(context.Background(), query.Request{SQL: "SELECT 1 AS held"}, func(*query.Result) error {
				started.Done()
				<-stop
				return nil
			})
			if err != nil {
				t.Errorf("holding query: %v", err)
			}
		}()
	}
	started.Wait()
	var once sync.Once
	release = func() { once.Do(func() { close(stop); done.Wait() }) }
	t.Cleanup(release)
	return release
}

// TestBusy holds every database of an engine with no queue and checks that
// each front end refuses a query at once (HTTP 429 with Retry-After, NATS
// 429 with Retry-After, Flight SQL UNAVAILABLE), and that NATS answers a
// point query, which needs no database.
func TestBusy(t *testing.T) {
	e := newTestEngine(t, testSource(t, 1000, 100), func(o *query.Options) {
		o.MaxConcurrent, o.MaxQueued = 1, 0
	})
	release := holdSlots(t, e)

	_, srv := newTestServerFor(t, e, "")
	resp, err := srv.Client().Post(srv.URL+"/v1/query", "application/json", strings.NewReader(`{"sql":"SELECT 5"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "busy, retry") {
		t.Fatalf("HTTP: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	nc := testkit.ConnectNATS(t, testkit.StartNATS(t, server.Options{MaxPayload: 64 << 10}).ClientURL())
	r := NewNATSResponder("", func() *nats.Conn { return nc }, e, nil)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	m, err := nc.Request(DefaultNATSSubject, []byte(`{"sql":"SELECT 6"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(HeaderStatus) != "429" || m.Header.Get("Retry-After") != "1" || !strings.Contains(string(m.Data), "busy, retry") {
		t.Fatalf("NATS: %v %s", m.Header, m.Data)
	}

	fc := startFlightFor(t, e, "")
	info, err := fc.Execute(t.Context(), "SELECT 7")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := fc.DoGet(t.Context(), info.Endpoint[0].Ticket)
	if err == nil {
		for rd.Next() {
		}
		err = rd.Err()
		rd.Release()
	}
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "busy, retry") {
		t.Fatalf("Flight SQL: %v, want UNAVAILABLE busy", err)
	}

	// A point query needs no database.
	m, err = nc.Request(DefaultNATSSubject, []byte(`{"sql":"SELECT * FROM latest_if_traffic WHERE device = 'r1'"}`), 5*time.Second)
	if err != nil || m.Header.Get(HeaderStatus) != "200" {
		t.Fatalf("point query over NATS while busy: %v %v %s", err, m.Header, m.Data)
	}

	release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestStatusOf checks the status each query error maps to, wrapped as the
// engine wraps them.
func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: Parser Error", query.ErrInvalid), http.StatusBadRequest},
		{fmt.Errorf("%w (query.total_memory)", query.ErrMemory), http.StatusBadRequest},
		{fmt.Errorf("%w after 1s", query.ErrTimeout), http.StatusGatewayTimeout},
		{fmt.Errorf("%w: 1 running", query.ErrBusy), http.StatusTooManyRequests},
		{fmt.Errorf("waiting: %w", context.Canceled), http.StatusServiceUnavailable},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	} {
		if got := StatusOf(tc.err); got != tc.want {
			t.Errorf("StatusOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestNATSBurst sends more requests than the responder takes in hand at
// once: every one gets an answer (a result or busy), none is dropped.
func TestNATSBurst(t *testing.T) {
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t, server.Options{MaxPayload: 64 << 10}).ClientURL())
	e := newTestEngine(t, testSource(t, 1000, 100), func(o *query.Options) { o.MaxConcurrent, o.MaxQueued = 1, 2 })
	r := NewNATSResponder("", func() *nats.Conn { return nc }, e, nil)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	const n = 500
	statuses := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			m, err := nc.Request(DefaultNATSSubject, []byte(`{"sql":"SELECT count(*) FROM samples, range(2000)"}`), 30*time.Second)
			if err != nil {
				statuses <- err.Error()
				return
			}
			statuses <- m.Header.Get(HeaderStatus)
		})
	}
	wg.Wait()
	close(statuses)
	count := map[string]int{}
	for s := range statuses {
		count[s]++
	}
	t.Logf("statuses of %d requests: %v", n, count)
	if count["200"]+count["429"] != n || count["200"] == 0 {
		t.Fatalf("statuses %v: want only 200 and 429", count)
	}
}

// TestHTTPRequestChecks covers request bodies refused before the engine.
func TestHTTPRequestChecks(t *testing.T) {
	_, srv := newTestServer(t, "")
	big := `{"sql":"SELECT '` + strings.Repeat("x", 10<<20) + `'"}`
	tests := []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"too large", []byte(big), http.StatusRequestEntityTooLarge, fmt.Sprintf("body too large (limit %d bytes)", maxRequestBytes)},
		{"negative max_rows", []byte(`{"sql":"SELECT 1","max_rows":-1}`), http.StatusBadRequest, "max_rows -1: must be positive"},
		{"invalid UTF-8", []byte("{\"sql\":\"SELECT '\xff\xfe secret'\"}"), http.StatusBadRequest, "not valid UTF-8"},
		{"two values", []byte(`{"sql":"SELECT 1"} {"sql":"SELECT 2"}`), http.StatusBadRequest, "more than one JSON value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := srv.Client().Post(srv.URL+"/v1/query", "application/json", bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, body, tc.status, tc.want)
			}
			if bytes.Contains(body, []byte("secret")) || bytes.Contains(body, []byte("xxxx")) {
				t.Fatalf("body echoed: %s", body)
			}
		})
	}
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Query kinds of the mix.
const (
	queryPoint     = "point"
	queryAggregate = "aggregate"
)

// queryMix runs point lookups and aggregates against POST /v1/query at a
// paced rate while the load runs.
type queryMix struct {
	url     string
	devices []string
	rate    float64
	workers int
	point   float64
	client  *http.Client

	mu    sync.Mutex
	lat   map[string]*Recorder
	stats map[string]*QueryStats
}

func newQueryMix(httpAddr string, devices []string, rate float64, workers int, pointShare float64) *queryMix {
	q := &queryMix{
		url: "http://" + httpAddr + "/v1/query", devices: devices, rate: rate, workers: workers, point: pointShare,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}},
		lat:    map[string]*Recorder{queryPoint: {}, queryAggregate: {}},
		stats:  map[string]*QueryStats{queryPoint: {}, queryAggregate: {}},
	}
	q.stats[queryPoint].SQL = fmt.Sprintf("SELECT * FROM latest_%s WHERE device = '<one of %d devices>'", benchView, len(devices))
	q.stats[queryAggregate].SQL = aggregateSQL
	return q
}

// aggregateSQL reads every sample in the hot tier.
const aggregateSQL = "SELECT metric, count(*) AS n, avg(value) AS mean, max(value) AS peak FROM samples GROUP BY metric"

// run issues queries until ctx ends. Each worker takes its share of the
// rate; a query that takes longer than its slot delays that worker only.
func (q *queryMix) run(ctx context.Context) {
	var wg sync.WaitGroup
	gap := time.Duration(float64(q.workers) / q.rate * float64(time.Second))
	for w := range q.workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			due := time.Now().Add(time.Duration(w) * gap / time.Duration(q.workers))
			for {
				if wait := time.Until(due); wait > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				}
				if ctx.Err() != nil {
					return
				}
				kind, sql := queryAggregate, aggregateSQL
				if rng.Float64() < q.point {
					kind = queryPoint
					sql = fmt.Sprintf("SELECT * FROM latest_%s WHERE device = '%s'", benchView, q.devices[rng.IntN(len(q.devices))])
				}
				q.once(ctx, kind, sql)
				due = due.Add(gap)
				if time.Since(due) > time.Second {
					due = time.Now()
				}
			}
		})
	}
	wg.Wait()
}

// queryResponse is the JSON result document of /v1/query, as far as the
// bench reads it.
type queryResponse struct {
	RowCount int64  `json:"row_count"`
	Error    string `json:"error"`
}

func (q *queryMix) once(ctx context.Context, kind, sql string) {
	body, _ := json.Marshal(map[string]string{"sql": sql, "format": "json"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.url, bytes.NewReader(body))
	if err != nil {
		q.fail(kind, err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := q.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			q.fail(kind, err.Error())
		}
		return
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(t0)
	if err != nil {
		if ctx.Err() == nil {
			q.fail(kind, "read response: "+err.Error())
		}
		return
	}
	if resp.StatusCode != http.StatusOK {
		q.fail(kind, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, oneLine(string(b), 200)))
		return
	}
	var doc queryResponse
	if err := json.Unmarshal(b, &doc); err != nil {
		q.fail(kind, "response is not the JSON result document: "+err.Error())
		return
	}
	if doc.Error != "" {
		q.fail(kind, "error after the first row: "+oneLine(doc.Error, 200))
		return
	}
	q.mu.Lock()
	st := q.stats[kind]
	st.OK++
	st.Rows += doc.RowCount
	q.mu.Unlock()
	q.lat[kind].Record(took)
}

func (q *queryMix) fail(kind, msg string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.stats[kind]
	st.Errors++
	if st.ErrorSamples == nil {
		st.ErrorSamples = map[string]int{}
	}
	if _, ok := st.ErrorSamples[msg]; ok || len(st.ErrorSamples) < 5 {
		st.ErrorSamples[msg]++
	} else {
		st.ErrorSamples["(other errors)"]++
	}
}

// total returns the queries answered or failed so far.
func (q *queryMix) total() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, st := range q.stats {
		n += st.OK + st.Errors
	}
	return n
}

// results returns the statistics per query kind, sorted by kind.
func (q *queryMix) results() []QueryStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	kinds := make([]string, 0, len(q.stats))
	for k := range q.stats {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	out := make([]QueryStats, 0, len(kinds))
	for _, k := range kinds {
		st := *q.stats[k]
		st.Kind = k
		st.Latency = q.lat[k].Summary()
		out = append(out, st)
	}
	return out
}

// QueryStats is the outcome of one kind of query in the mix.
type QueryStats struct {
	Kind string `json:"kind"`
	SQL  string `json:"sql"`
	// OK queries returned a complete result; their latency is Latency
	// (request sent → whole response read).
	OK      int            `json:"ok"`
	Rows    int64          `json:"rows"`
	Latency LatencySummary `json:"latency"`
	// Errors are failed queries (HTTP status, transport, or an error in
	// the result), with up to five distinct messages and their counts.
	Errors       int            `json:"errors"`
	ErrorSamples map[string]int `json:"error_samples,omitempty"`
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

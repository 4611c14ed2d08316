package frontend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/netfeat/netfeat/query"
)

// DefaultNATSSubject is the request/reply subject of the NATS front end.
const DefaultNATSSubject = "netfeat.query"

// NATS reply headers, beside query.HeaderRows, query.HeaderTruncated and
// query.HeaderError.
const (
	// HeaderStatus is the HTTP-style status of a NATS reply: 200, 400
	// (bad query or request), 413 (result over the server's max payload),
	// 429 (busy: retry after the Retry-After header's seconds), 503, 504 or
	// 500.
	HeaderStatus = "Netfeat-Status"
)

// NATSResponder answers queries on a NATS subject: the request body is a
// JSON query.Request, the reply body the result in the requested format
// (as over HTTP) with status, row count and truncation in headers. A failed query
// replies {"error": "..."} with the status header set. Replies must fit in
// the server's max payload; larger results get status 413, so ask for
// fewer rows (max_rows) or use HTTP or Flight SQL. Authentication is NATS's
// own (accounts, credentials, permissions on the subject) and, when
// Authorize is set, a bearer token in the request's Authorization header
// ("Bearer <token>"), as over HTTP and Flight SQL: without it the reply
// has status 401.
type NATSResponder struct {
	conn    func() *nats.Conn // called once by Start
	nc      *nats.Conn        // set by Start
	engine  *query.Engine
	subject string
	log     *slog.Logger

	// Authorize, when set, is given each request's Authorization header
	// and reports whether it admits the query. Set before Start.
	Authorize func(authorization string) bool

	sub     *nats.Subscription
	workers chan struct{} // one token per request in hand

	mu       sync.Mutex // orders wg.Add in dispatch before wg.Wait in Stop
	stopping bool
	wg       sync.WaitGroup
}

// NewNATSResponder returns a responder on subject (DefaultNATSSubject when
// empty), in queue group subject so that several netfeat processes share
// the load. nc is called once, by Start, for the connection to subscribe
// on (the service's exists only once NATS has started). A nil logger
// discards.
func NewNATSResponder(subject string, nc func() *nats.Conn, e *query.Engine, log *slog.Logger) *NATSResponder {
	if subject == "" {
		subject = DefaultNATSSubject
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &NATSResponder{conn: nc, engine: e, subject: subject, log: log.With("component", "query.nats")}
}

// pointWorkers are the requests in hand beyond the engine's running and
// queued queries: room for point queries, which never wait for DuckDB,
// and for refusals.
const pointWorkers = 16

// Start subscribes. Each request is answered on its own goroutine, at most
// as many at once as the engine runs and queues plus pointWorkers; one
// more is answered busy at once, so that the subscription never falls
// behind (a slow consumer would drop requests unanswered).
func (r *NATSResponder) Start(context.Context) error {
	o := r.engine.Options()
	r.workers = make(chan struct{}, o.MaxConcurrent+o.MaxQueued+pointWorkers)
	nc := r.conn()
	if nc == nil {
		return fmt.Errorf("subscribe %s: no NATS connection", r.subject)
	}
	r.nc = nc
	sub, err := nc.QueueSubscribe(r.subject, r.subject, r.dispatch)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", r.subject, err)
	}
	r.sub = sub
	return nil
}

// dispatch runs on the subscription's goroutine: it must not wait.
func (r *NATSResponder) dispatch(m *nats.Msg) {
	select {
	case r.workers <- struct{}{}:
	default:
		if m.Reply != "" {
			r.respondBusy(nats.NewMsg(m.Reply), fmt.Errorf("%w: %d requests in hand", query.ErrBusy, cap(r.workers)))
		}
		return
	}
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		<-r.workers
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer func() { <-r.workers; r.wg.Done() }()
		r.handle(m)
	}()
}

// Stop unsubscribes, then waits within ctx for the queries in hand to be
// answered.
func (r *NATSResponder) Stop(ctx context.Context) error {
	if r.sub == nil {
		return nil
	}
	err := r.sub.Unsubscribe()
	r.mu.Lock()
	r.stopping = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return errors.Join(err, fmt.Errorf("nats query responder: %w", ctx.Err()))
	}
	if err != nil {
		return fmt.Errorf("unsubscribe %s: %w", r.subject, err)
	}
	return nil
}

func (r *NATSResponder) handle(m *nats.Msg) {
	if m.Reply == "" {
		r.log.Warn("query without a reply subject dropped", "subject", m.Subject)
		return
	}
	reply := nats.NewMsg(m.Reply)
	if r.Authorize != nil && !r.Authorize(m.Header.Get("Authorization")) {
		r.respondError(reply, 401, "missing or wrong bearer token (header Authorization: Bearer <token>)")
		return
	}
	req, err := decodeRequest(m.Data)
	if err != nil {
		r.respondError(reply, 400, err.Error())
		return
	}
	max := r.nc.MaxPayload()
	var buf bytes.Buffer
	err = r.engine.Query(context.Background(), req, func(res *query.Result) error {
		werr := query.WriteResult(&limitedWriter{w: &buf, left: max}, req.Format, res)
		reply.Header.Set(query.HeaderRows, strconv.FormatInt(res.Rows(), 10))
		reply.Header.Set(query.HeaderTruncated, strconv.FormatBool(res.Truncated()))
		return werr
	})
	switch {
	case errors.Is(err, errTooLarge):
		r.respondError(reply, 413, fmt.Sprintf("result is over the NATS max payload of %d bytes: lower max_rows or use HTTP or Flight SQL", max))
		return
	case errors.Is(err, query.ErrBusy):
		r.respondBusy(reply, err)
		return
	case err != nil:
		r.respondError(reply, StatusOf(err), err.Error())
		return
	}
	reply.Header.Set(HeaderStatus, "200")
	reply.Data = buf.Bytes()
	if err := r.nc.PublishMsg(reply); err != nil {
		r.log.Warn("query reply failed", "err", err)
	}
}

func (r *NATSResponder) respondError(reply *nats.Msg, status int, msg string) {
	reply.Header = nats.Header{}
	r.respondMsg(reply, status, msg)
}

func (r *NATSResponder) respondMsg(reply *nats.Msg, status int, msg string) {
	reply.Header.Set(HeaderStatus, strconv.Itoa(status))
	reply.Header.Set(query.HeaderError, oneLine(msg))
	reply.Data, _ = json.Marshal(map[string]string{"error": msg})
	if err := r.nc.PublishMsg(reply); err != nil {
		r.log.Warn("query error reply failed", "err", err)
	}
}

// respondBusy answers status 429 with a Retry-After header in seconds, as
// over HTTP.
func (r *NATSResponder) respondBusy(reply *nats.Msg, err error) {
	reply.Header = nats.Header{}
	reply.Header.Set("Retry-After", strconv.Itoa(int(query.RetryAfter/time.Second)))
	r.respondMsg(reply, StatusOf(err), err.Error())
}

var errTooLarge = errors.New("reply too large")

// limitedWriter fails once more than left bytes are written.
type limitedWriter struct {
	w    *bytes.Buffer
	left int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, errTooLarge
	}
	l.left -= int64(len(p))
	return l.w.Write(p)
}

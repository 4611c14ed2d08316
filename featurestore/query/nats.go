package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
)

// DefaultNATSSubject is the request/reply subject of the NATS front end.
const DefaultNATSSubject = "netfeat.query"

// NATS reply headers, beside HeaderRows, HeaderTruncated and HeaderError.
const (
	// HeaderStatus is the HTTP-style status of a NATS reply: 200, 400
	// (bad query), 413 (result over the server's max payload), 503, 504 or
	// 500.
	HeaderStatus = "Netfeat-Status"
)

// NATSResponder answers queries on a NATS subject: the request body is a
// JSON Request, the reply body the result in the requested format (as over
// HTTP) with status, row count and truncation in headers. A failed query
// replies {"error": "..."} with the status header set. Replies must fit in
// the server's max payload; larger results get status 413, so ask for
// fewer rows (max_rows) or use HTTP or Flight SQL. Authentication is NATS's
// own (accounts, credentials).
type NATSResponder struct {
	nc      *nats.Conn
	engine  *Engine
	subject string
	log     *slog.Logger

	sub  *nats.Subscription
	msgs chan *nats.Msg
	wg   sync.WaitGroup
}

// NewNATSResponder returns a responder on subject (DefaultNATSSubject when
// empty), in queue group subject so that several netfeat processes share
// the load. A nil logger discards.
func NewNATSResponder(nc *nats.Conn, e *Engine, subject string, log *slog.Logger) *NATSResponder {
	if subject == "" {
		subject = DefaultNATSSubject
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &NATSResponder{nc: nc, engine: e, subject: subject, log: log.With("component", "query.nats")}
}

// Start subscribes and starts one worker per concurrent query the engine
// allows.
func (r *NATSResponder) Start(context.Context) error {
	workers := r.engine.Options().MaxConcurrent
	r.msgs = make(chan *nats.Msg, 64)
	sub, err := r.nc.ChanQueueSubscribe(r.subject, r.subject, r.msgs)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", r.subject, err)
	}
	r.sub = sub
	for range workers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for m := range r.msgs {
				r.handle(m)
			}
		}()
	}
	return nil
}

// Stop unsubscribes, then waits within ctx for the queries in hand to be
// answered.
func (r *NATSResponder) Stop(ctx context.Context) error {
	if r.sub == nil {
		return nil
	}
	err := r.sub.Unsubscribe()
	close(r.msgs) // nats.go does not send on the channel after Unsubscribe
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
	req, err := decodeRequest(m.Data)
	if err != nil {
		r.respondError(reply, 400, err.Error())
		return
	}
	max := r.nc.MaxPayload()
	var buf bytes.Buffer
	err = r.engine.Query(context.Background(), req, func(res *Result) error {
		werr := WriteResult(&limitedWriter{w: &buf, left: max}, req.Format, res)
		reply.Header.Set(HeaderRows, strconv.FormatInt(res.Rows(), 10))
		reply.Header.Set(HeaderTruncated, strconv.FormatBool(res.Truncated()))
		return werr
	})
	switch {
	case errors.Is(err, errTooLarge):
		r.respondError(reply, 413, fmt.Sprintf("result is over the NATS max payload of %d bytes: lower max_rows or use HTTP or Flight SQL", max))
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
	reply.Header.Set(HeaderStatus, strconv.Itoa(status))
	reply.Header.Set(HeaderError, oneLine(msg))
	reply.Data, _ = json.Marshal(map[string]string{"error": msg})
	if err := r.nc.PublishMsg(reply); err != nil {
		r.log.Warn("query error reply failed", "err", err)
	}
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

package frontend

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/netfeat/netfeat/query"
)

// maxRequestBytes bounds a query request body.
const maxRequestBytes = 1 << 20

// Handler serves POST /v1/query: a JSON query.Request in, the result
// streamed out in the requested format (json, csv, arrow). Errors found
// before the first row are a JSON {"error": "..."} with status 400 (DuckDB's message for a
// bad query or request), 401 (missing or wrong bearer token), 413 (body
// over 1 MiB), 429 (busy, with Retry-After), 503 (client gone), 504
// (timeout) or 500; an error after the first row ends the JSON document
// with an "error" member, or sets the Netfeat-Error trailer for csv and
// arrow.
type Handler struct {
	engine *query.Engine
	token  string
	log    *slog.Logger
}

// NewHandler returns the HTTP front end. When token is not empty, requests
// must carry "Authorization: Bearer <token>". A nil logger discards.
func NewHandler(token string, e *query.Engine, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{engine: e, token: token, log: log.With("component", "query.http")}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeHTTPError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !bearerOK(h.token, r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="netfeat"`)
		writeHTTPError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil {
		writeHTTPError(w, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	if len(body) > maxRequestBytes {
		writeHTTPError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body too large (limit %d bytes)", maxRequestBytes))
		return
	}
	req, err := decodeRequest(body)
	if err != nil {
		writeHTTPError(w, http.StatusBadRequest, err.Error())
		return
	}
	started := false
	err = h.engine.Query(r.Context(), req, func(res *query.Result) error {
		started = true
		hdr := w.Header()
		hdr.Set("Content-Type", query.ContentType(req.Format))
		hdr.Set("Trailer", query.HeaderRows+", "+query.HeaderTruncated+", "+query.HeaderError)
		w.WriteHeader(http.StatusOK)
		err := query.WriteResult(w, req.Format, res)
		hdr.Set(query.HeaderRows, strconv.FormatInt(res.Rows(), 10))
		hdr.Set(query.HeaderTruncated, strconv.FormatBool(res.Truncated()))
		if err != nil {
			hdr.Set(query.HeaderError, oneLine(err.Error()))
		}
		return err
	})
	if err == nil {
		return
	}
	if started {
		h.log.Warn("query failed while streaming", "err", err)
		return
	}
	if errors.Is(err, query.ErrBusy) {
		w.Header().Set("Retry-After", strconv.Itoa(int(query.RetryAfter/time.Second)))
	}
	writeHTTPError(w, StatusOf(err), err.Error())
}

// decodeRequest parses a JSON query.Request (HTTP and NATS) and checks what
// does not depend on the engine. Its errors quote nothing of the body but
// the format, and that only when it is valid UTF-8.
func decodeRequest(body []byte) (query.Request, error) {
	var req query.Request
	if !utf8.Valid(body) {
		return req, errors.New("bad request body: not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("bad request body: %w", err)
	}
	if dec.More() {
		return req, errors.New("bad request body: more than one JSON value")
	}
	switch req.Format {
	case "":
		req.Format = query.FormatJSON
	case query.FormatJSON, query.FormatCSV, query.FormatArrow:
	default:
		return req, fmt.Errorf("format %q: want json, csv or arrow", req.Format)
	}
	if req.MaxRows < 0 {
		return req, fmt.Errorf("max_rows %d: must be positive, or 0 (or absent) for the server's limit", req.MaxRows)
	}
	return req, nil
}

// StatusOf maps a query error to an HTTP status code.
func StatusOf(err error) int {
	switch {
	case errors.Is(err, query.ErrInvalid), errors.Is(err, query.ErrMemory):
		return http.StatusBadRequest
	case errors.Is(err, query.ErrTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, query.ErrBusy):
		return http.StatusTooManyRequests
	case errors.Is(err, context.Canceled), errors.Is(err, query.ErrNotRunning):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeHTTPError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// bearerOK reports whether an Authorization header value satisfies token;
// an empty token admits everything.
func bearerOK(token, header string) bool {
	if token == "" {
		return true
	}
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

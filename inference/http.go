package inference

// The HTTP API of the registry and the decisions (Handler). Handlers run on
// the HTTP server's goroutines and call the methods of api.go and
// records.go; the service answers 503 for them until Start.

import (
	"github.com/netfeat/netfeat/schema"

	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// maxArtifact bounds an uploaded model file.
const maxArtifact = 64 << 20

// Handler returns the model API, for the service to mount at /v1/models
// and /v1/models/ (paths are absolute):
//
//	GET  /v1/models                         every model and rule (ModelInfo)
//	GET  /v1/models/{name}                  one model
//	POST /v1/models/{name}/versions[?version=V]  body: the model file → VersionInfo
//	POST /v1/models/{name}/shadow           {"version": "V"} ("" stops the shadow)
//	POST /v1/models/{name}/promote          {"version": "V"} ("" promotes the shadow);
//	                                        behind the promotion gate on "gate_metric" (default learning.gate.metric), "force": true past it
//	GET  /v1/models/{name}/versions/{version}/artifact  the version's model file
//	POST /v1/models/{name}/versions/{version}/backtest  body: Backtest → VersionInfo
//	POST /v1/models/{name}/rollback
//	GET  /v1/decisions/recent[?limit=N]     recent decisions, newest last
//	GET  /v1/actions[?state=S]              current actions (pending, firing, resolved)
//	POST /v1/actions/{fingerprint}/feedback {"label": "true_positive|false_positive", "note": "..."} → 201 Feedback
//	GET  /v1/feedback[?format=labels&model=M]  stored feedback (JSON, or a labels CSV for netfeat export)
//
// Errors are JSON {"error": "..."} with 404 for an unknown model or
// version, 409 for a conflict (nothing to roll back to, a taken version
// name, a rule), 400 for a bad request or a malformed model file
// (ErrInvalidModel), 422 for another model file that does not load.
func (r *Runtime) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, q *http.Request) {
		ms, err := r.Models(q.Context())
		reply(w, http.StatusOK, ms, err)
	})
	mux.HandleFunc("GET /v1/models/{name}", func(w http.ResponseWriter, q *http.Request) {
		mi, err := r.Model(q.Context(), q.PathValue("name"))
		reply(w, http.StatusOK, mi, err)
	})
	mux.HandleFunc("POST /v1/models/{name}/versions", func(w http.ResponseWriter, q *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, q.Body, maxArtifact))
		if err != nil {
			reply(w, 0, nil, badRequest{fmt.Errorf("read model file: %w", err)})
			return
		}
		vi, err := r.AddVersion(q.Context(), q.PathValue("name"), q.URL.Query().Get("version"), body)
		reply(w, http.StatusCreated, vi, err)
	})
	mux.HandleFunc("POST /v1/models/{name}/shadow", func(w http.ResponseWriter, q *http.Request) {
		v, err := versionBody(w, q)
		if err == nil {
			err = r.SetShadow(q.Context(), q.PathValue("name"), v)
		}
		r.replyModel(w, q, err)
	})
	mux.HandleFunc("POST /v1/models/{name}/promote", func(w http.ResponseWriter, q *http.Request) {
		var body struct {
			Version string `json:"version"`
			Gate
		}
		err := readBody(w, q, &body)
		if body.Metric == "" {
			body.Metric = r.gateMetric
		}
		if err == nil {
			err = r.PromoteGated(q.Context(), q.PathValue("name"), body.Version, body.Gate)
		}
		r.replyModel(w, q, err)
	})
	mux.HandleFunc("GET /v1/models/{name}/versions/{version}/artifact", func(w http.ResponseWriter, q *http.Request) {
		_, b, err := r.VersionArtifact(q.Context(), q.PathValue("name"), q.PathValue("version"))
		if err != nil {
			reply(w, 0, nil, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("POST /v1/models/{name}/versions/{version}/backtest", func(w http.ResponseWriter, q *http.Request) {
		var bt Backtest
		err := readBody(w, q, &bt)
		var vi VersionInfo
		if err == nil {
			vi, err = r.RecordBacktest(q.Context(), q.PathValue("name"), q.PathValue("version"), bt)
		}
		reply(w, http.StatusOK, vi, err)
	})
	mux.HandleFunc("POST /v1/models/{name}/rollback", func(w http.ResponseWriter, q *http.Request) {
		r.replyModel(w, q, r.Rollback(q.Context(), q.PathValue("name")))
	})
	mux.HandleFunc("GET /v1/decisions/recent", func(w http.ResponseWriter, q *http.Request) {
		n := 100
		if s := q.URL.Query().Get("limit"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 {
				reply(w, 0, nil, badRequest{fmt.Errorf("limit %q: want a positive integer", s)})
				return
			}
			n = v
		}
		ds, sh := r.RecentDecisions(n)
		out := make([]map[string]any, len(ds))
		for i := range ds {
			b, _ := json.Marshal(sanitized(&ds[i]))
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			m["shadow"] = sh[i]
			out[i] = m
		}
		reply(w, http.StatusOK, out, nil)
	})
	mux.HandleFunc("GET /v1/actions", func(w http.ResponseWriter, q *http.Request) {
		want := q.URL.Query().Get("state")
		switch want {
		case "", schema.StatePending, schema.StateFiring, schema.StateResolved:
		default:
			reply(w, 0, nil, badRequest{fmt.Errorf("state %q: want pending, firing or resolved", want)})
			return
		}
		out := []ActionState{}
		for _, a := range r.Actions() {
			if want == "" || a.State == want {
				out = append(out, a)
			}
		}
		reply(w, http.StatusOK, out, nil)
	})
	mux.HandleFunc("POST /v1/actions/{fingerprint}/feedback", func(w http.ResponseWriter, q *http.Request) {
		var body struct {
			Label string `json:"label"`
			Note  string `json:"note"`
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, q.Body, 2*maxNote))
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err = dec.Decode(&body); err != nil {
				err = fmt.Errorf(`body: want {"label": "true_positive|false_positive", "note": "..."}: %w`, err)
			}
		}
		if err != nil {
			r.m.feedbackRefused.Inc()
			reply(w, 0, nil, badRequest{err})
			return
		}
		fb, err := r.AddFeedback(q.Context(), q.PathValue("fingerprint"), body.Label, body.Note)
		reply(w, http.StatusCreated, fb, err)
	})
	mux.HandleFunc("GET /v1/feedback", func(w http.ResponseWriter, q *http.Request) {
		if q.URL.Query().Get("format") == "labels" {
			ls, err := r.LabelledDecisions(q.Context(), q.URL.Query().Get("model"))
			if err != nil {
				reply(w, 0, nil, err)
				return
			}
			writeLabels(w, ls)
			return
		}
		fbs, err := r.Feedbacks(q.Context())
		if fbs == nil {
			fbs = []Feedback{}
		}
		reply(w, http.StatusOK, fbs, err)
	})
	return mux
}

// writeLabels writes labelled decisions as a labels file for `netfeat
// export --labels` (query.ReadLabelsCSV): ts (the window's end), device,
// component, label (1 true positive, 0 false positive), model,
// fingerprint.
func writeLabels(w http.ResponseWriter, ls []Labelled) {
	w.Header().Set("Content-Type", "text/csv")
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"ts", "device", "component", "label", "model", "fingerprint"})
	for _, l := range ls {
		fb := l.Feedback
		_ = cw.Write([]string{l.WindowEnd.Format(time.RFC3339Nano), fb.Entity.Device, fb.Entity.Component,
			strconv.Itoa(int(l.Label)), fb.Model, fb.Fingerprint})
	}
	cw.Flush()
}

type badRequest struct{ error }

func (b badRequest) Unwrap() error { return b.error }

func versionBody(w http.ResponseWriter, q *http.Request) (string, error) {
	var body struct {
		Version string `json:"version"`
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, q.Body, 4096))
	if err != nil {
		return "", badRequest{err}
	}
	if len(b) == 0 {
		return "", nil
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return "", badRequest{fmt.Errorf(`body: want {"version": "..."}: %w`, err)}
	}
	return body.Version, nil
}

// readBody decodes a JSON request body of up to 1 MiB into v; an empty
// body leaves v as it is.
func readBody(w http.ResponseWriter, q *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, q.Body, 1<<20))
	if err != nil {
		return badRequest{err}
	}
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest{fmt.Errorf("body: %w", err)}
	}
	return nil
}

func (r *Runtime) replyModel(w http.ResponseWriter, q *http.Request, err error) {
	if err != nil {
		reply(w, 0, nil, err)
		return
	}
	mi, err := r.Model(q.Context(), q.PathValue("name"))
	reply(w, http.StatusOK, mi, err)
}

func reply(w http.ResponseWriter, code int, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		var br badRequest
		switch {
		case errors.As(err, &br), errors.Is(err, ErrInvalidModel):
			code = http.StatusBadRequest
		case errors.Is(err, ErrUnknownModel), errors.Is(err, ErrUnknownVersion), errors.Is(err, ErrUnknownAction):
			code = http.StatusNotFound
		case errors.Is(err, ErrNoPrevious), errors.Is(err, ErrNoShadow), errors.Is(err, ErrVersionExists), errors.Is(err, ErrVersionFailed),
			errors.Is(err, ErrRuleNotVersioned), errors.Is(err, ErrGateRefused):
			code = http.StatusConflict
		default:
			code = http.StatusUnprocessableEntity
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

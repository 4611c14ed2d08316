package frontend

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/netfeat/netfeat/query"
)

// TablesHandler serves GET /v1/tables: every table a query can read now,
// with its one-line description and its columns' SQL types (the JSON of
// query.TableList). When token is not empty, requests must carry it as a
// bearer token. It answers before the engine starts too: the tables are
// the sources', not the databases'. A nil logger discards.
func TablesHandler(token string, e *query.Engine, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "query.http")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeHTTPError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		if !bearerOK(token, r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="netfeat"`)
			writeHTTPError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		b, err := json.Marshal(query.Describe(e.Tables()))
		if err != nil {
			log.Error("encode the table list", "err", err)
			writeHTTPError(w, http.StatusInternalServerError, "encode the table list: "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
	})
}

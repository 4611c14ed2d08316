// Package console serves the operator's web console: one page at "/" and
// its files under /console/, embedded in the binary (no CDN, works with no
// internet), and the live action feed it reads (ActionFeed, mounted at
// GET /v1/actions/stream).
//
// The page is plain JavaScript with no build step; its charts are uPlot,
// vendored under assets/vendor with its licence. Everything else it shows
// comes from the service's HTTP API (/v1/query, /v1/actions, /v1/models,
// /v1/decisions/recent, /v1/tables), with the API's bearer token when one
// is configured: the page asks for it on the first 401 and keeps it in the
// tab's sessionStorage.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// Patterns are the ServeMux patterns Handler answers: the page at exactly
// "/" and its files under /console/. They are narrow so that they overlap
// no API pattern (a GET "/" would conflict with method-less ones).
var Patterns = []string{"GET /{$}", "GET /console/"}

// contentSecurityPolicy allows only the console's own files: no inline
// script, no other origin, so that a name that slipped through escaping
// still could not run code.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Handler serves the console: index.html at "/" and the embedded files
// under /console/ (other paths 404). Mount it at each of Patterns. Every
// file has an ETag of its content, so a browser revalidates rather than
// downloads again.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic("console: embedded assets: " + err.Error()) // the embed directive guarantees the directory
	}
	etags := map[string]string{}
	_ = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, rerr := fs.ReadFile(sub, name); rerr == nil {
				sum := sha256.Sum256(b)
				etags[name] = `"` + hex.EncodeToString(sum[:8]) + `"`
			}
		}
		return nil
	})
	files := http.StripPrefix("/console/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		switch {
		case r.URL.Path == "/":
			// Revalidated each time, so an upgraded binary's page is
			// picked up at once.
			h.Set("Cache-Control", "no-cache")
			h.Set("ETag", etags["index.html"])
			http.ServeFileFS(w, r, sub, "index.html")
		case strings.HasPrefix(r.URL.Path, "/console/") && !strings.HasSuffix(r.URL.Path, "/"):
			h.Set("Cache-Control", "no-cache")
			if e, ok := etags[strings.TrimPrefix(r.URL.Path, "/console/")]; ok {
				h.Set("ETag", e)
			}
			files.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

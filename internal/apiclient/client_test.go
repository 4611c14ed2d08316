package apiclient

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = io.WriteString(w, r.Method+" "+r.Header.Get("Authorization"))
		case "/json":
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"error":"no previous version"}`)
		default:
			http.Error(w, "  not here  ", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/", Token: "tok"}

	req, err := c.NewRequest(t.Context(), http.MethodPost, "/ok", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST Bearer tok" {
		t.Fatalf("answer %q", b)
	}

	for path, want := range map[string]Error{
		"/json":  {Status: 409, StatusText: "409 Conflict", Message: "no previous version"},
		"/other": {Status: 404, StatusText: "404 Not Found", Message: "not here"},
	} {
		req, err := c.NewRequest(t.Context(), http.MethodGet, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Do(req)
		apiErr, ok := errors.AsType[*Error](err)
		if !ok || *apiErr != want {
			t.Fatalf("%s: %v, want %+v", path, err, want)
		}
		if got := err.Error(); got != want.Message+" (HTTP "+want.StatusText[:3]+")" {
			t.Fatalf("%s: message %q", path, got)
		}
	}
}

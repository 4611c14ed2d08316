package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	tests := []struct {
		status  int
		wantErr string
	}{
		{status: 200},
		{status: 503, wantErr: "503 Service Unavailable store: not started"},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(tt.status)
			_, _ = w.Write([]byte("store: not started\nnats: ok\n"))
		}))
		err := healthcheck(t.Context(), srv.URL)
		srv.Close()
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Fatalf("status %d: err %v, want %q", tt.status, err, tt.wantErr)
		}
	}
	if err := healthcheck(t.Context(), "http://127.0.0.1:1/readyz"); err == nil {
		t.Fatal("healthy with nothing listening")
	}
}

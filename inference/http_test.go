package inference

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/testkit"
)

func TestHandler(t *testing.T) {
	r := newRuntime(t, testConfig(), nil, t.TempDir())
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	do := func(method, path, body string, wantCode int) []byte {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantCode {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, wantCode)
		}
		return b
	}
	var models []ModelInfo
	if err := json.Unmarshal(do("GET", "/v1/models", "", 200), &models); err != nil {
		t.Fatal(err)
	}
	if len(models) != 2 || models[0].Kind != KindRule || models[1].Name != "congestion" || models[1].Live != "v1" {
		t.Fatalf("models %+v", models)
	}
	var vi VersionInfo
	if err := json.Unmarshal(do("POST", "/v1/models/congestion/versions?version=v2-small", string(variant(t, 5, -1)), 201), &vi); err != nil {
		t.Fatal(err)
	}
	if vi.Version != "v2-small" || vi.Source != "upload" {
		t.Fatalf("version %+v", vi)
	}
	do("POST", "/v1/models/congestion/shadow", `{"version":"v2-small"}`, 200)
	var mi ModelInfo
	_ = json.Unmarshal(do("POST", "/v1/models/congestion/promote", "", 200), &mi)
	if mi.Live != "v2-small" || mi.Shadow != "" || len(mi.History) != 1 {
		t.Fatalf("after promote %+v", mi)
	}
	_ = json.Unmarshal(do("POST", "/v1/models/congestion/rollback", "", 200), &mi)
	if mi.Live != "v1" {
		t.Fatalf("after rollback %+v", mi)
	}
	errCases := []struct{ method, path, body string }{
		{"POST", "/v1/models/congestion/rollback", ""},
		{"POST", "/v1/models/out_util_high/promote", `{"version":"x"}`},
	}
	for _, c := range errCases {
		b := do(c.method, c.path, c.body, 409)
		if !bytes.Contains(b, []byte(`"error"`)) {
			t.Fatalf("%s: body %s", c.path, b)
		}
	}
	do("GET", "/v1/models/nope", "", 404)
	do("POST", "/v1/models/congestion/promote", `{"version":"v7"}`, 404)
	do("POST", "/v1/models/congestion/promote", `{"version":`, 400)
	do("POST", "/v1/models/congestion/versions", "garbage", 422)

	r.HandleRow(row("pe1", "Gi0/1", time.Now(), congested))
	testkit.Eventually(t, "len(r.rec.snapshot()) == 2", func() bool { return len(r.rec.snapshot()) == 2 })
	var recent []map[string]any
	_ = json.Unmarshal(do("GET", "/v1/decisions/recent?limit=1", "", 200), &recent)
	if len(recent) != 1 || recent[0]["shadow"] != false || recent[0]["schema_version"] != 1.0 {
		t.Fatalf("recent %v", recent)
	}
}

package client

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/netfeat/netfeat/inference"
)

func TestClient(t *testing.T) {
	ctx := context.Background()
	cfg := inference.DefaultConfig()
	cfg.Models = []inference.ModelConfig{{Name: "congestion", Kind: inference.KindXGBoost, View: "interface_1m", File: "../../models/congestion.json"}}
	r, err := inference.New(cfg, nil, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Stop(ctx)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	c := &Client{}
	c.BaseURL = srv.URL + "/"

	ms, err := c.List(ctx)
	if err != nil || len(ms) != 1 || ms[0].Live != "v1" {
		t.Fatalf("List: %+v %v", ms, err)
	}
	art, err := os.ReadFile("../xgboost/testdata/binary_logistic.json") // stores no feature names
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Upload(ctx, "congestion", "", art)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != 422 {
		t.Fatalf("uploading a model without feature names: %v", err)
	}
	same, _ := os.ReadFile("../../models/congestion.json")
	vi, err := c.Upload(ctx, "congestion", "v1", same)
	if err != nil || vi.Version != "v1" {
		t.Fatalf("re-upload of v1's content: %+v %v", vi, err)
	}
	if _, err := c.Upload(ctx, "congestion", "v2", append(same, ' ')); err != nil {
		t.Fatal(err)
	}
	if mi, err := c.Shadow(ctx, "congestion", "v2"); err != nil || mi.Shadow != "v2" {
		t.Fatalf("Shadow: %+v %v", mi, err)
	}
	if mi, err := c.Promote(ctx, "congestion", ""); err != nil || mi.Live != "v2" {
		t.Fatalf("Promote: %+v %v", mi, err)
	}
	if mi, err := c.Rollback(ctx, "congestion"); err != nil || mi.Live != "v1" {
		t.Fatalf("Rollback: %+v %v", mi, err)
	}
	if _, err := c.Rollback(ctx, "congestion"); !errors.As(err, &apiErr) || apiErr.Status != 409 {
		t.Fatalf("Rollback with no history: %v", err)
	}
	if _, err := c.Get(ctx, "nope"); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("Get unknown: %v", err)
	}
}

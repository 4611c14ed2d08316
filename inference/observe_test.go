package inference

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// TestObserveRegistry: the observer hears of every successful change, after
// the registry's lock is released (it can read the state), and of no
// failed one; nil stops it.
func TestObserveRegistry(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, testConfig(), nil, t.TempDir())
	var (
		mu  sync.Mutex
		got []RegistryChange
		// what Model said inside the observer, per change
		live []string
	)
	r.ObserveRegistry(func(c RegistryChange) {
		mi, err := r.Model(ctx, c.Model) // would deadlock under the lock
		if err != nil {
			t.Errorf("Model in the observer: %v", err)
		}
		mu.Lock()
		got = append(got, c)
		live = append(live, mi.Live+"/"+mi.Shadow)
		mu.Unlock()
	})
	if _, err := r.AddVersion(ctx, "congestion", "v2", variant(t, 5, -1)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetShadow(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	if err := r.Promote(ctx, "congestion", ""); err != nil {
		t.Fatal(err)
	}
	if err := r.Rollback(ctx, "congestion"); err != nil {
		t.Fatal(err)
	}
	// Failures report nothing.
	if err := r.Promote(ctx, "congestion", "nope"); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("promote of an unknown version: %v", err)
	}
	if _, err := r.AddVersion(ctx, "congestion", "v3", []byte("not a model")); err == nil {
		t.Fatal("a malformed model was accepted")
	}
	want := []RegistryChange{
		{Model: "congestion", Op: OpAdd, Version: "v2"},
		{Model: "congestion", Op: OpShadow},
		{Model: "congestion", Op: OpPromote},
		{Model: "congestion", Op: OpRollback},
	}
	wantLive := []string{"v1/", "v1/v2", "v2/", "v1/"}
	mu.Lock()
	if !slices.Equal(got, want) || !slices.Equal(live, wantLive) {
		t.Errorf("observed %v with states %v, want %v with %v", got, live, want, wantLive)
	}
	mu.Unlock()

	r.ObserveRegistry(nil)
	if err := r.Promote(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Errorf("observer called after ObserveRegistry(nil): %v", got[len(want):])
	}
}

// TestVersionArtifactInstall: a version's stored file comes back with its
// checksum; InstallVersion records its source, is a no-op for the same
// content, refuses other content under the name and a model that does not
// load, as an upload does.
func TestVersionArtifactInstall(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, testConfig(), nil, t.TempDir())
	art := variant(t, 5, -1)
	vi, err := r.InstallVersion(ctx, "congestion", "h1", art, "hub")
	if err != nil {
		t.Fatal(err)
	}
	if vi.Source != "hub" || vi.SHA256 != digest(art) {
		t.Errorf("installed %+v, want source hub and sha256 %s", vi, digest(art))
	}
	got, b, err := r.VersionArtifact(ctx, "congestion", "h1")
	if err != nil || string(b) != string(art) || got.SHA256 != vi.SHA256 {
		t.Fatalf("VersionArtifact: %+v, %d bytes, %v", got, len(b), err)
	}
	if again, err := r.InstallVersion(ctx, "congestion", "h1", art, "hub"); err != nil || again.Created != vi.Created {
		t.Errorf("same content again: %+v, %v; want the stored version", again, err)
	}
	if _, err := r.InstallVersion(ctx, "congestion", "h1", variant(t, 3, -1), "hub"); !errors.Is(err, ErrVersionExists) {
		t.Errorf("other content under h1: %v, want ErrVersionExists", err)
	}
	if _, err := r.InstallVersion(ctx, "congestion", "h2", []byte(`{"learner": 1}`), "hub"); err == nil {
		t.Error("a model that does not load was installed")
	}
	if _, _, err := r.VersionArtifact(ctx, "congestion", "h2"); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("VersionArtifact of a refused version: %v, want ErrUnknownVersion", err)
	}
	if _, _, err := r.VersionArtifact(ctx, "out_util_high", "v1"); !errors.Is(err, ErrRuleNotVersioned) {
		t.Errorf("VersionArtifact of a rule: %v, want ErrRuleNotVersioned", err)
	}
}

// TestRemoveVersion: a version neither live, shadow nor the rollback
// target is removed with its file and leaves the rollback history; the
// others are refused and stay.
func TestRemoveVersion(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, testConfig(), nil, t.TempDir())
	for i, v := range []string{"h1", "h2", "h3", "h4"} {
		if _, err := r.InstallVersion(ctx, "congestion", v, variant(t, 2+i, -1), "hub"); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"h1", "h2", "h3"} { // live h3, history [v1 h1 h2]
		if err := r.Promote(ctx, "congestion", v); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.SetShadow(ctx, "congestion", "h4"); err != nil {
		t.Fatal(err)
	}
	h1, _, err := r.VersionArtifact(ctx, "congestion", "h1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		version string
		want    error
	}{
		{"h3", ErrVersionInUse}, // live
		{"h4", ErrVersionInUse}, // shadow
		{"h2", ErrVersionInUse}, // rollback target
		{"h1", nil},
		{"h1", ErrUnknownVersion},
	}
	for _, tc := range tests {
		if err := r.RemoveVersion(ctx, "congestion", tc.version); !errors.Is(err, tc.want) {
			t.Errorf("RemoveVersion(%s): %v, want %v", tc.version, err, tc.want)
		}
	}
	mi, err := r.Model(ctx, "congestion")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range mi.Versions {
		names = append(names, v.Version)
	}
	if slices.Contains(names, "h1") || !slices.Contains(names, "h2") || mi.Live != "h3" || mi.Shadow != "h4" ||
		slices.Contains(mi.History, "h1") || len(mi.History) == 0 || mi.History[len(mi.History)-1] != "h2" {
		t.Errorf("after removing h1: versions %v, live %s, shadow %s, history %v", names, mi.Live, mi.Shadow, mi.History)
	}
	if _, err := os.Stat(filepath.Join(r.dir, h1.Path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("h1's file is still there: %v", err)
	}
	if err := r.Rollback(ctx, "congestion"); err != nil {
		t.Fatalf("rollback after the removal: %v", err)
	}
}

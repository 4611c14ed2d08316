package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/learning"
)

// TestTrainFromExport trains on the shipped training set (an export of the
// simulators' windows) and loads the result as the runtime would.
func TestTrainFromExport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.json")
	var stdout, stderr bytes.Buffer
	err := runTrain(context.Background(), &stdout, &stderr, trainFlags{
		model: "congestion", from: "../../models/training/windows.csv", label: "congested", out: out,
		l2: 1e-4, holdout: 0.2, threshold: 0.5,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if err := inference.CheckModelFile(inference.KindLogistic, out, nil, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	m, err := learning.LoadLogistic(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Features) != 8 || m.Features[0] != "interface_in_utilization__mean_1m" || m.Profile == nil {
		t.Fatalf("features %v, profile %v", m.Features, m.Profile != nil)
	}
	if !strings.Contains(stderr.String(), "held out") {
		t.Errorf("no held-out report:\n%s", stderr.String())
	}
}

func TestTrainRefusesBadExports(t *testing.T) {
	header := "ts,device,label,v__a__mean_1m,v__b__mean_1m\n"
	rows := func(f func(i int) string) string {
		var sb strings.Builder
		sb.WriteString(header)
		for i := range 40 {
			sb.WriteString(f(i))
		}
		return sb.String()
	}
	good := func(i int) string { return fmt.Sprintf("2026-01-01T00:00:%02dZ,d,%d,%d,%d\n", i, i%2, i, 40-i) }
	for _, tc := range []struct {
		name, csv, want string
	}{
		{"NaN feature", rows(func(i int) string {
			if i == 7 {
				return "2026-01-01T00:00:07Z,d,1,NaN,3\n"
			}
			return good(i)
		}), "row 8: feature a__mean_1m is NaN"},
		{"Inf feature", rows(func(i int) string {
			if i == 3 {
				return "2026-01-01T00:00:03Z,d,1,2,+Inf\n"
			}
			return good(i)
		}), "feature b__mean_1m is +Inf"},
		{"one class", rows(func(i int) string { return fmt.Sprintf("2026-01-01T00:00:%02dZ,d,1,%d,%d\n", i, i, i) }), "all 40 labels are 1"},
		{"bad label", rows(func(i int) string { return fmt.Sprintf("2026-01-01T00:00:%02dZ,d,yes,%d,%d\n", i, i, i) }), `label "yes"`},
		{"no features", "ts,device,label,x\n2026-01-01T00:00:00Z,d,1,2\n", "no feature columns"},
		{"short row", header + "2026-01-01T00:00:00Z,d,1,2\n", "wrong number of fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.csv")
			if err := os.WriteFile(path, []byte(tc.csv), 0o644); err != nil {
				t.Fatal(err)
			}
			var o, e bytes.Buffer
			err := runTrain(context.Background(), &o, &e, trainFlags{model: "m", from: path, out: filepath.Join(t.TempDir(), "m.json"), l2: 1e-4})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestTrainDetectorBaseline(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ewma.json")
	var o, e bytes.Buffer
	err := runTrain(context.Background(), &o, &e, trainFlags{
		kind: "ewma", model: "util", from: "../../models/training/windows.csv", label: "congested", out: out,
		features: []string{"interface_out_utilization__mean_1m"},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, e.String())
	}
	b, _ := os.ReadFile(out)
	var spec struct {
		Features []string           `json:"features"`
		Baseline *learning.Baseline `json:"baseline"`
	}
	if err := json.Unmarshal(b, &spec); err != nil || spec.Baseline == nil || len(spec.Baseline.Features) != 1 {
		t.Fatalf("%s: %v", b, err)
	}
	if m := spec.Baseline.Features[0].Mean; m <= 0 || m >= 1 {
		t.Errorf("mean utilisation of normal windows %v", m)
	}
	if err := runTrain(context.Background(), &o, &e, trainFlags{kind: "mad", model: "m", from: "../../models/training/windows.csv", out: out}); err == nil {
		t.Error("--kind mad accepted")
	}
}

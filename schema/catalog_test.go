package schema

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/metrics.md from the catalog")

// TestMetricsDoc fails when docs/metrics.md no longer matches the catalog.
// Regenerate with: go test ./schema -run TestMetricsDoc -update
func TestMetricsDoc(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCatalogMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "docs", "metrics.md")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with: go test ./schema -run TestMetricsDoc -update)", err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatal("docs/metrics.md is stale; regenerate with: go test ./schema -run TestMetricsDoc -update")
	}
}

func TestCatalogConsistent(t *testing.T) {
	for _, m := range Catalog {
		if m.Name == "" || m.Unit == "" || m.Description == "" || m.Entity == "" {
			t.Errorf("%q: name, unit, entity and description are required", m.Name)
		}
		switch m.Kind {
		case KindGaugeMetric, KindCounterMetric, KindStateMetric:
			if m.DerivedFrom != "" {
				t.Errorf("%s: only rates are derived", m.Name)
			}
		case KindRateMetric:
			src, ok := LookupMetric(m.DerivedFrom)
			if !ok {
				t.Errorf("%s: derived from unknown %q", m.Name, m.DerivedFrom)
			} else if src.Kind != KindCounterMetric && src.Kind != KindRateMetric {
				t.Errorf("%s: derived from %s, a %s", m.Name, src.Name, src.Kind)
			}
		default:
			t.Errorf("%s: unknown kind %q", m.Name, m.Kind)
		}
	}
	if got := RatesOf("interface.in.octets"); len(got) != 1 || got[0].Name != "interface.in.bps" || got[0].Scale != 8 {
		t.Fatalf("RatesOf(interface.in.octets) = %+v", got)
	}
}

func TestFeatureViewValidateAndNames(t *testing.T) {
	v := FeatureView{
		Name: "link", Entity: EntityComponent, Metrics: []string{"interface.in.bps"},
		Aggregations: []Aggregation{AggMean, AggP99}, Windows: []time.Duration{time.Minute, 5 * time.Minute}, Hop: 10 * time.Second,
	}
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"interface_in_bps__mean_1m", "interface_in_bps__p99_1m",
		"interface_in_bps__mean_5m", "interface_in_bps__p99_5m",
	}
	got := v.FeatureNames()
	if len(got) != len(want) {
		t.Fatalf("names %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("names %v, want %v", got, want)
		}
	}
	bad := FeatureView{Name: "Bad-Name", Entity: "site", Metrics: []string{"nope"}, Aggregations: []Aggregation{"median"},
		Windows: []time.Duration{15 * time.Second}, Hop: 10 * time.Second}
	err := bad.Validate()
	for _, frag := range []string{`name "Bad-Name"`, `entity "site"`, `"nope" is not in the metric catalog`, `unknown aggregation "median"`, "15s must be a positive multiple of hop 10s"} {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(frag)) {
			t.Errorf("Validate error %v lacks %q", err, frag)
		}
	}
}

func TestDurationLabel(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second: "10s", time.Minute: "1m", 90 * time.Second: "1m30s", time.Hour: "1h",
		90 * time.Minute: "1h30m", 500 * time.Millisecond: "500ms",
	} {
		if got := DurationLabel(d); got != want {
			t.Errorf("DurationLabel(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestSubjectToken(t *testing.T) {
	for in, want := range map[string]string{
		"r1": "r1", "core.r1": "core_r1", "a b": "a_b", "x*>": "x__", "": "_",
	} {
		if got := SubjectToken(in); got != want {
			t.Errorf("SubjectToken(%q) = %q, want %q", in, got, want)
		}
	}
	if got := DecisionSubject("congestion.v1", "pe1.lon"); got != "netfeat.decisions.congestion_v1.pe1_lon" {
		t.Fatalf("DecisionSubject = %q", got)
	}
}

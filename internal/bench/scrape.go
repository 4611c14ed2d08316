package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a netfeat /metrics endpoint.
type Metrics map[string]*dto.MetricFamily

// Scrape fetches and parses the Prometheus text exposition at url.
func Scrape(ctx context.Context, client *http.Client, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("scrape %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics parses the Prometheus text exposition format.
func ParseMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return Metrics(fams), nil
}

// Sum returns the sum of every series of a counter or gauge family whose
// labels include all of match (name=value pairs); 0 when absent.
func (m Metrics) Sum(name string, match ...string) float64 {
	f := m[name]
	if f == nil {
		return 0
	}
	var sum float64
	for _, s := range f.GetMetric() {
		if !hasLabels(s, match) {
			continue
		}
		sum += value(s)
	}
	return sum
}

func hasLabels(s *dto.Metric, match []string) bool {
	for i := 0; i+1 < len(match); i += 2 {
		found := false
		for _, lp := range s.GetLabel() {
			if lp.GetName() == match[i] && lp.GetValue() == match[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Untyped != nil:
		return s.Untyped.GetValue()
	}
	return math.NaN()
}

// Drop is one kind of loss, refusal or failure the service counted: a
// counter summed over the labels that only say where (device, path,
// component, target), keeping those that say why.
type Drop struct {
	Metric string `json:"metric"`
	// Labels are the remaining labels, "k=v,k=v" sorted; empty for none.
	Labels string  `json:"labels,omitempty"`
	Value  float64 `json:"value"`
	// Series is how many series were summed (for example, devices).
	Series int `json:"series"`
	// Where holds up to three distinct locations (the summed labels other
	// than device, e.g. "path=1.3.6.1.2.1.1.1.0"), to say what to look at.
	Where []string `json:"where,omitempty"`
}

// dropWords mark a counter as counting something lost, refused, late or
// failed. They are matched against the metric name.
var dropWords = []string{"drop", "late", "reject", "unmapped", "error", "fail", "skipped", "discontinu", "damaged", "unpersisted", "fallback", "bad_", "timeout", "overrun"}

// whereLabels only say where a loss happened; Drops sums over them.
var whereLabels = map[string]bool{"device": true, "path": true, "component": true, "target": true, "view": true, "model": true, "version": true}

// okResults are the values of a "result" or "outcome" label that are not
// failures; every other value of those labels counts as a drop.
var okResults = map[string]bool{"ok": true, "success": true}

// Drops returns every drop-like counter with a non-zero value: counters
// whose name says so (dropWords) and, for counters with a result label
// (netfeat_snmp_polls_total, netfeat_query_queries_total, ...), every result
// other than ok. Nothing non-zero is left out. The result is sorted by
// metric and labels.
func (m Metrics) Drops() []Drop {
	type key struct{ metric, labels string }
	agg := map[key]*Drop{}
	for name, f := range m {
		if f.GetType() != dto.MetricType_COUNTER {
			continue
		}
		byName := false
		for _, w := range dropWords {
			if strings.Contains(name, w) {
				byName = true
				break
			}
		}
		for _, s := range f.GetMetric() {
			var keep, where []string
			failedResult := false
			for _, lp := range s.GetLabel() {
				if whereLabels[lp.GetName()] {
					if lp.GetName() != "device" {
						where = append(where, lp.GetName()+"="+lp.GetValue())
					}
					continue
				}
				if (lp.GetName() == "result" || lp.GetName() == "outcome") && !okResults[lp.GetValue()] {
					failedResult = true
				}
				keep = append(keep, lp.GetName()+"="+lp.GetValue())
			}
			if !byName && !failedResult {
				continue
			}
			v := value(s)
			if v == 0 {
				continue
			}
			slices.Sort(keep)
			k := key{name, strings.Join(keep, ",")}
			d := agg[k]
			if d == nil {
				d = &Drop{Metric: name, Labels: k.labels}
				agg[k] = d
			}
			d.Value += v
			d.Series++
			if w := strings.Join(where, ","); w != "" && len(d.Where) < 3 && !slices.Contains(d.Where, w) {
				d.Where = append(d.Where, w)
			}
		}
	}
	out := make([]Drop, 0, len(agg))
	for _, d := range agg {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Drop) int {
		if c := strings.Compare(a.Metric, b.Metric); c != 0 {
			return c
		}
		return strings.Compare(a.Labels, b.Labels)
	})
	return out
}

package service

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// scraped is what a Prometheus parser read from one page.
type scraped struct {
	samples map[string]scrapedSample // series (name and labels) → sample
	types   map[string]model.MetricType
	units   map[string]string
	helps   map[string]string
	eof     bool
}

type scrapedSample struct {
	value float64
	ts    int64 // ms; 0 without a timestamp
}

// seriesKey renders a series as Prometheus prints it.
func seriesKey(name string, lbls map[string]string) string {
	b := labels.NewBuilder(labels.EmptyLabels())
	b.Set("__name__", name)
	for k, v := range lbls {
		b.Set(k, v)
	}
	return b.Labels().String()
}

// scrapePage parses a page with Prometheus's own scrape parser, chosen by
// the Content-Type as Prometheus chooses it.
func scrapePage(t *testing.T, body []byte, contentType string) scraped {
	t.Helper()
	p, err := textparse.New(body, contentType, labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil || p == nil {
		t.Fatalf("no parser for Content-Type %q: %v", contentType, err)
	}
	s := scraped{samples: map[string]scrapedSample{}, types: map[string]model.MetricType{}, units: map[string]string{}, helps: map[string]string{}}
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			s.eof = true
			break
		}
		if err != nil {
			t.Fatalf("parse (%s): %v\npage:\n%s", contentType, err, clipPage(body))
		}
		switch e {
		case textparse.EntryType:
			n, typ := p.Type()
			s.types[string(n)] = typ
		case textparse.EntryUnit:
			n, u := p.Unit()
			s.units[string(n)] = string(u)
		case textparse.EntryHelp:
			n, h := p.Help()
			s.helps[string(n)] = string(h)
		case textparse.EntrySeries:
			_, ts, v := p.Series()
			var l labels.Labels
			p.Labels(&l)
			k := l.String()
			if _, dup := s.samples[k]; dup {
				t.Fatalf("series %s twice", k)
			}
			x := scrapedSample{value: v}
			if ts != nil {
				x.ts = *ts
			}
			s.samples[k] = x
		default:
			t.Fatalf("unexpected entry %d", e)
		}
	}
	return s
}

func clipPage(b []byte) string {
	if len(b) > 4000 {
		return string(b[:4000]) + "…"
	}
	return string(b)
}

// getPage fetches path with the given Accept and Accept-Encoding headers.
func getPage(t *testing.T, url, accept, encoding, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// Accept headers as Prometheus 3 sends them (scrape_protocols), and as a
// scraper of the 0.0.4 text format does.
const (
	acceptOpenMetrics = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
	acceptText004     = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
)

const deviceMetricsConfig = `
data_dir: %s
shutdown_timeout: 5s
http: {listen: "127.0.0.1:0"}
nats: {listen: "127.0.0.1:0", jetstream: false}
store: {fsync: interval}
normalize:
  inventory:
    r1: {site: "par\"is\\1", role: "pe\ncore"}
    "<script>alert(1)</script>": {site: ams1}
views:
  - name: traffic
    entity: component
    metrics: [interface.in.bps, interface.in.octets]
    aggregations: [count, mean, max, rate]
    windows: [1s, 2s]
    hop: 1s
    allowed_lateness: 0s
    idle_timeout: 1h
  - name: short
    entity: component
    metrics: [interface.in.bps]
    aggregations: [mean]
    windows: [1s]
    hop: 1s
    allowed_lateness: 0s
    idle_timeout: 1h
`

// TestDeviceMetricsPage appends samples with hostile labels to a running
// service's store, lets windows close, and scrapes /metrics/devices as
// Prometheus does, in OpenMetrics and in text 0.0.4, with and without gzip:
// every series must come back with its labels (escaped and unescaped
// again, invalid UTF-8 replaced), value and timestamp, every family with
// its type, unit and help, and nothing else.
func TestDeviceMetricsPage(t *testing.T) {
	cfg, err := ParseConfig("devmetrics.yaml", fmt.Appendf(nil, deviceMetricsConfig, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	svc := startService(t, cfg)
	url := "http://" + svc.HTTP().Addr() + DeviceMetricsPath

	// Before any sample: an empty, valid page.
	resp, body := getPage(t, url, acceptOpenMetrics, "", "")
	if resp.StatusCode != 200 || string(body) != "# EOF\n" {
		t.Fatalf("empty store: %d %q", resp.StatusCode, body)
	}

	type dev struct{ name, stored, site, role string }
	devices := []dev{
		{"r1", "r1", `par"is\1`, "pe\ncore"},
		{`dev"quote`, `dev"quote`, "", ""},
		{`back\slash`, `back\slash`, "", ""},
		{"new\nline", "new\nline", "", ""},
		{"<script>alert(1)</script>", "<script>alert(1)</script>", "ams1", ""},
		{"bad\xffutf8", "bad\uFFFDutf8", "", ""},
	}
	components := []string{"Gi0/0/0/1", `x"y\z` + "\n"}
	now := time.Now().Truncate(time.Second)
	// Samples 250 ms into each second: windows end on whole seconds, and
	// the timestamps keep their milliseconds.
	base := now.Add(-5*time.Second + 250*time.Millisecond).UnixNano()
	old := now.Add(-time.Hour).UnixNano()
	ctx := context.Background()
	var batch []schema.Sample
	for step := range 4 { // windows of steps 0–2 close as the next arrives
		batch = batch[:0]
		ts := base + int64(step)*int64(time.Second)
		for di, d := range devices {
			batch = append(batch,
				schema.Sample{TS: ts, IngestTS: ts, Entity: schema.Entity{Device: d.name}, Metric: "system.uptime", Value: float64(1000 + step)},
				schema.Sample{TS: ts, IngestTS: ts, Entity: schema.Entity{Device: d.name}, Metric: "not.in.catalog", Value: 1})
			for ci, c := range components {
				v := float64(di*10 + ci + step)
				batch = append(batch,
					schema.Sample{TS: ts, IngestTS: ts, Entity: schema.Entity{Device: d.name, Component: c}, Metric: "interface.in.octets", Value: 1e12 + v*1e6},
					schema.Sample{TS: ts, IngestTS: ts, Entity: schema.Entity{Device: d.name, Component: c}, Metric: "interface.in.bps", Value: v + 0.5},
					schema.Sample{TS: ts, IngestTS: ts, Entity: schema.Entity{Device: d.name, Component: c}, Metric: "interface.oper_status", Value: 1})
			}
		}
		if err := svc.Store().Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// A series whose newest sample is older than the default max_age.
	if err := svc.Store().Append(ctx, []schema.Sample{{TS: old, IngestTS: old, Entity: schema.Entity{Device: "stale", Component: "Gi0"}, Metric: "interface.in.bps", Value: 7}}); err != nil {
		t.Fatal(err)
	}
	last := now.Add(-2 * time.Second).UnixNano() // the end of the window step 3 closed
	for _, d := range devices {
		for _, c := range components {
			e := schema.Entity{Device: d.stored, Component: c}
			testkit.Eventually(t, "windows of "+d.stored+" closed", func() bool {
				r, ok := svc.Store().Latest("traffic", e)
				r2, ok2 := svc.Store().Latest("short", e)
				return ok && ok2 && r.WindowEnd == last && r2.WindowEnd == last
			})
		}
	}

	// What Prometheus must read: the latest sample of every catalog series,
	// and the features of the last closed window.
	want := map[string]scrapedSample{}
	lbl := func(d dev, comp string, extra ...string) map[string]string {
		m := map[string]string{"device": d.stored}
		if comp != "" {
			m["component"] = comp
		}
		if d.site != "" {
			m["site"] = d.site
		}
		if d.role != "" {
			m["role"] = d.role
		}
		for i := 0; i < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	lastMS, endMS := (base+3*int64(time.Second))/1e6, last/1e6
	for di, d := range devices {
		want[seriesKey("system_uptime_seconds", lbl(d, ""))] = scrapedSample{1003, lastMS}
		for ci, c := range components {
			v := float64(di*10 + ci + 3)
			want[seriesKey("interface_in_octets_bytes_total", lbl(d, c))] = scrapedSample{1e12 + v*1e6, lastMS}
			want[seriesKey("interface_in_bps_bits_per_second", lbl(d, c))] = scrapedSample{v + 0.5, lastMS}
			want[seriesKey("interface_oper_status", lbl(d, c))] = scrapedSample{1, lastMS}
			// The last closed window [last-1s, last) holds step 2's sample;
			// the 2 s one steps 1 and 2.
			v2, v1 := v-1+0.5, v-2+0.5
			for _, f := range []struct {
				name, view, window string
				value              float64
			}{
				{"feature_interface_in_bps_samples", "traffic", "1s", 1},
				{"feature_interface_in_bps_samples", "traffic", "2s", 2},
				{"feature_interface_in_bps_mean_bits_per_second", "traffic", "1s", v2},
				{"feature_interface_in_bps_mean_bits_per_second", "traffic", "2s", (v1 + v2) / 2},
				{"feature_interface_in_bps_mean_bits_per_second", "short", "1s", v2},
				{"feature_interface_in_bps_max_bits_per_second", "traffic", "1s", v2},
				{"feature_interface_in_bps_max_bits_per_second", "traffic", "2s", v2},
				{"feature_interface_in_bps_rate_bits_per_second_per_second", "traffic", "2s", 1},
				{"feature_interface_in_octets_samples", "traffic", "1s", 1},
				{"feature_interface_in_octets_samples", "traffic", "2s", 2},
				{"feature_interface_in_octets_mean_bytes", "traffic", "1s", 1e12 + (v-1)*1e6},
				{"feature_interface_in_octets_mean_bytes", "traffic", "2s", 1e12 + (v-1.5)*1e6},
				{"feature_interface_in_octets_max_bytes", "traffic", "1s", 1e12 + (v-1)*1e6},
				{"feature_interface_in_octets_max_bytes", "traffic", "2s", 1e12 + (v-1)*1e6},
				{"feature_interface_in_octets_rate_bytes_per_second", "traffic", "2s", 1e6},
			} {
				want[seriesKey(f.name, lbl(d, c, "view", f.view, "window", f.window))] = scrapedSample{f.value, endMS}
			}
		}
	}
	wantTypes := map[string]model.MetricType{
		"system_uptime_seconds":                                    model.MetricTypeGauge,
		"interface_in_octets_bytes":                                model.MetricTypeCounter,
		"interface_in_bps_bits_per_second":                         model.MetricTypeGauge,
		"interface_oper_status":                                    model.MetricTypeGauge,
		"feature_interface_in_bps_samples":                         model.MetricTypeGauge,
		"feature_interface_in_bps_mean_bits_per_second":            model.MetricTypeGauge,
		"feature_interface_in_bps_max_bits_per_second":             model.MetricTypeGauge,
		"feature_interface_in_bps_rate_bits_per_second_per_second": model.MetricTypeGauge,
		"feature_interface_in_octets_samples":                      model.MetricTypeGauge,
		"feature_interface_in_octets_mean_bytes":                   model.MetricTypeGauge,
		"feature_interface_in_octets_max_bytes":                    model.MetricTypeGauge,
		"feature_interface_in_octets_rate_bytes_per_second":        model.MetricTypeGauge,
	}

	check := func(t *testing.T, got scraped, om bool) {
		t.Helper()
		for k, w := range want {
			g, ok := got.samples[k]
			if !ok {
				t.Errorf("missing %s", k)
				continue
			}
			if math.Abs(g.value-w.value) > 1e-9*math.Max(1, math.Abs(w.value)) || g.ts != w.ts {
				t.Errorf("%s: %v @%d, want %v @%d", k, g.value, g.ts, w.value, w.ts)
			}
		}
		for k := range got.samples {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected series %s", k)
			}
		}
		for fam, typ := range wantTypes {
			name := fam
			if !om && typ == model.MetricTypeCounter {
				name += "_total" // format 0.0.4 names a counter by its sample
			}
			if got.types[name] != typ {
				t.Errorf("family %s: type %q, want %q", name, got.types[name], typ)
			}
			if got.helps[name] == "" {
				t.Errorf("family %s: no help", name)
			}
			if !om {
				continue
			}
			unit := got.units[name]
			if unit != "" && !strings.HasSuffix(name, "_"+unit) {
				t.Errorf("family %s: unit %q is not its suffix", name, unit)
			}
		}
		if om {
			for fam, unit := range map[string]string{"interface_in_octets_bytes": "bytes", "system_uptime_seconds": "seconds",
				"interface_in_bps_bits_per_second": "bits_per_second", "interface_oper_status": "",
				"feature_interface_in_octets_rate_bytes_per_second": "bytes_per_second", "feature_interface_in_bps_samples": ""} {
				if got.units[fam] != unit {
					t.Errorf("family %s: unit %q, want %q", fam, got.units[fam], unit)
				}
			}
		}
	}
	for _, tc := range []struct {
		name, accept, encoding, wantType string
		om                               bool
	}{
		{"openmetrics", acceptOpenMetrics, "", ContentTypeOpenMetrics, true},
		{"openmetrics gzip", acceptOpenMetrics, "gzip", ContentTypeOpenMetrics, true},
		{"text 0.0.4", acceptText004, "", ContentTypeText004, false},
		{"text 0.0.4 gzip", acceptText004, "gzip", ContentTypeText004, false},
		{"no Accept", "", "", ContentTypeText004, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := getPage(t, url, tc.accept, tc.encoding, "")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tc.wantType {
				t.Fatalf("Content-Type %q, want %q", ct, tc.wantType)
			}
			if tc.encoding == "gzip" && resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
			}
			if bytes.Contains(body, []byte("\xff")) || bytes.Contains(body, []byte("<script>alert(1)</script>\n")) {
				t.Fatal("raw invalid UTF-8 or an unescaped line break in the page")
			}
			if tc.om != bytes.HasSuffix(body, []byte("\n# EOF\n")) {
				t.Fatalf("# EOF at the end: %v, want %v", !tc.om, tc.om)
			}
			check(t, scrapePage(t, body, resp.Header.Get("Content-Type")), tc.om)
			if !tc.om {
				// The client library's own parser of format 0.0.4 too.
				tp := expfmt.NewTextParser(model.LegacyValidation)
				fams, err := tp.TextToMetricFamilies(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("expfmt: %v", err)
				}
				n := 0
				for _, f := range fams {
					n += len(f.GetMetric())
				}
				if n != len(want) {
					t.Fatalf("expfmt read %d samples, want %d", n, len(want))
				}
			}
		})
	}

	// max_age: the stale series with a long enough max_age or none.
	staleKey := seriesKey("interface_in_bps_bits_per_second", map[string]string{"device": "stale", "component": "Gi0"})
	for _, q := range []string{"?max_age=2h", "?max_age=0s"} {
		resp, body := getPage(t, url+q, acceptOpenMetrics, "", "")
		got := scrapePage(t, body, resp.Header.Get("Content-Type"))
		if s, ok := got.samples[staleKey]; !ok || s.ts != old/1e6 {
			t.Errorf("%s: stale series %v %v, want it at %d", q, s, ok, old/1e6)
		}
	}
	for _, q := range []string{"?max_age=forever", "?max_age=-1s", "?max_age=9000h"} {
		if resp, _ := getPage(t, url+q, "", "", ""); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, resp.StatusCode)
		}
	}
	if resp, _ := getPage(t, url+"?max_age=1ms", acceptOpenMetrics, "", ""); resp.StatusCode != 200 {
		t.Fatalf("max_age=1ms: %d", resp.StatusCode)
	}
}

// TestMetricFamilyNames: every catalog metric gets a distinct valid name
// ending in its unit, as do the features of every aggregation; the names
// users write in dashboards are spelled out.
func TestMetricFamilyNames(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	reserved := regexp.MustCompile(`_(total|created|count|sum|bucket|gcount|gsum|info)$`)
	seen := map[string]string{}
	note := func(f expoFamily, of string) {
		t.Helper()
		if !valid.MatchString(f.name) || reserved.MatchString(f.name) {
			t.Errorf("%s: family %q is not a valid OpenMetrics family name", of, f.name)
		}
		if f.unit != "" && !strings.HasSuffix(f.name, "_"+f.unit) {
			t.Errorf("%s: family %q does not end with its unit %q", of, f.name, f.unit)
		}
		if prev, ok := seen[f.name]; ok {
			t.Errorf("%s and %s share family %q", prev, of, f.name)
		}
		seen[f.name] = of
	}
	for _, m := range schema.Catalog {
		note(metricFamily(m), m.Name)
		for _, a := range schema.Aggregations {
			note(featureFamily(m, a), m.Name+" "+string(a))
		}
	}
	for _, f := range []expoFamily{deviceUpFamily, deviceLastSuccessFamily, actionFiringFamily} {
		note(f, f.name)
	}
	for _, tc := range []struct{ metric, agg, want string }{
		{"interface.in.octets", "", "interface_in_octets_bytes"},
		{"interface.out.errors", "", "interface_out_errors_packets"},
		{"interface.in.bps", "", "interface_in_bps_bits_per_second"},
		{"interface.in.utilization", "", "interface_in_utilization_ratio"},
		{"interface.oper_status", "", "interface_oper_status"},
		{"system.uptime", "", "system_uptime_seconds"},
		{"system.memory.total", "", "system_memory_total_bytes"},
		{"transceiver.rx_power", "", "transceiver_rx_power_dbm"},
		{"interface.in.bps", "p95", "feature_interface_in_bps_p95_bits_per_second"},
		{"interface.in.errors", "rate", "feature_interface_in_errors_rate_packets_per_second"},
		{"interface.oper_status", "rate", "feature_interface_oper_status_rate_per_second"},
		{"interface.in.bps", "count", "feature_interface_in_bps_samples"},
	} {
		m, _ := schema.LookupMetric(tc.metric)
		f := metricFamily(m)
		if tc.agg != "" {
			f = featureFamily(m, schema.Aggregation(tc.agg))
		}
		if f.name != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.metric, tc.agg, f.name, tc.want)
		}
	}
}

// TestAcceptsGzip covers the Accept-Encoding forms.
func TestAcceptsGzip(t *testing.T) {
	for in, want := range map[string]bool{
		"": false, "gzip": true, "identity": false, "deflate, gzip;q=0.5": true,
		"gzip;q=0": false, "GZIP": true, "br, zstd": false, "gzip; q=0.0": false,
	} {
		if got := acceptsGzip(in); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestDeviceMetricsDevicesAndActions: device_up and
// device_last_success_timestamp_seconds from the collectors' states (a
// target another cluster node owns left out, a never-reached one without a
// last success), action_firing from the actions' states, with the
// inventory's site and role.
func TestDeviceMetricsDevicesAndActions(t *testing.T) {
	st, err := featurestore.New(featurestore.Config{}, nil, t.TempDir(), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Stop(context.Background()) })
	d, err := newDeviceMetrics(st, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	d.info = func(dev string) (string, string) {
		if dev == "r1" {
			return "ams1", `p"e`
		}
		return "", ""
	}
	last := time.Date(2026, 12, 8, 1, 2, 3, 456e6, time.UTC).UnixNano()
	d.devices = func() []schema.DeviceState {
		return []schema.DeviceState{
			{Device: "r1", Protocol: "snmp", State: "up", LastSuccess: last},
			{Device: "r2\n", Protocol: "gnmi", State: "down"},
			{Device: "r3", Protocol: "snmp", State: "not_owned", LastSuccess: last},
		}
	}
	d.actions = func() []actionState {
		return []actionState{
			{model: "congestion", entity: schema.Entity{Device: "r1", Component: "Gi0/1"}, firing: true},
			{model: "link_down", entity: schema.Entity{Device: "r2\n", Component: "Gi0/2"}},
		}
	}
	req := httptest.NewRequest(http.MethodGet, DeviceMetricsPath, nil)
	req.Header.Set("Accept", acceptOpenMetrics)
	w := httptest.NewRecorder()
	d.ServeHTTP(w, req)
	got := scrapePage(t, w.Body.Bytes(), w.Header().Get("Content-Type"))
	r1 := map[string]string{"device": "r1", "site": "ams1", "role": `p"e`}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	want := map[string]scrapedSample{
		seriesKey("device_up", with(r1, "protocol", "snmp")):                                                        {1, 0},
		seriesKey("device_up", map[string]string{"device": "r2\n", "protocol": "gnmi"}):                             {0, 0},
		seriesKey("device_last_success_timestamp_seconds", with(r1, "protocol", "snmp")):                            {float64(last) / 1e9, 0},
		seriesKey("action_firing", with(r1, "component", "Gi0/1", "model", "congestion")):                           {1, 0},
		seriesKey("action_firing", map[string]string{"device": "r2\n", "component": "Gi0/2", "model": "link_down"}): {0, 0},
	}
	if len(got.samples) != len(want) {
		t.Errorf("%d samples, want %d: %v", len(got.samples), len(want), got.samples)
	}
	for k, v := range want {
		if g, ok := got.samples[k]; !ok || math.Abs(g.value-v.value) > 1e-6 || g.ts != v.ts {
			t.Errorf("%s: %v %v, want %v", k, g, ok, v)
		}
	}
	if got.types["device_up"] != model.MetricTypeGauge || got.units["device_last_success_timestamp_seconds"] != "seconds" || got.types["action_firing"] != model.MetricTypeGauge {
		t.Errorf("metadata: types %v, units %v", got.types, got.units)
	}
}

package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/schema"
)

// The encoders of jsonenc.go against the encoding/json implementation they
// replaced (kept here as the reference): the same bytes for every input,
// and an error where the reference fails.

// refEncodeWindow is EncodeWindow as it was, with encoding/json.
func refEncodeWindow(row *schema.FeatureRow) ([]byte, error) {
	if len(row.Names) != len(row.Values) {
		return nil, fmt.Errorf("fleet: window %s %s: %d names, %d values", row.View, row.Entity, len(row.Names), len(row.Values))
	}
	vals := make([]jsonFloat, len(row.Values))
	for i, v := range row.Values {
		vals[i] = jsonFloat(v)
	}
	return json.Marshal(windowDoc{
		SchemaVersion: WindowSchemaVersion, View: row.View, Device: row.Device, Component: row.Component,
		WindowStart: row.WindowStart, WindowEnd: row.WindowEnd, Names: row.Names, Values: vals,
		LastIngestTS: row.LastIngestTS, ClosedAt: row.ClosedAt, CloseReason: row.CloseReason,
		TriggerIngestTS: row.TriggerIngestTS,
	})
}

// refEncodeDecision is EncodeDecision as it was, with encoding/json.
func refEncodeDecision(d *schema.Decision) ([]byte, error) {
	c := *d
	if math.IsNaN(c.Score) || math.IsInf(c.Score, 0) {
		c.Score = 0
	}
	if d.Features != nil {
		c.Features = make(map[string]float64, len(d.Features))
		for k, v := range d.Features {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				c.Features[k] = v
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("fleet: decision %s: %w", d.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// refEncodeAction is EncodeAction as it was, with encoding/json.
func refEncodeAction(a *Action) ([]byte, error) {
	c := *a
	c.SchemaVersion = ActionSchemaVersion
	if math.IsNaN(c.Score) || math.IsInf(c.Score, 0) {
		c.Score = 0
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("fleet: action %s %s: %w", a.Model, a.Entity, err)
	}
	return b, nil
}

// Edge cases of the documents' fields.
var (
	edgeFloats = []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.5, -2.25, 1e20, 1e21, -1e21, 123456789012345678901234.0,
		1e-6, 1e-7, -1e-7, 9.999999e-7, 5e-324, -5e-324, math.SmallestNonzeroFloat64, math.MaxFloat64, -math.MaxFloat64,
		1e-300, 1e300, 1 << 53, 1<<53 + 1, 1e100, 12345.678, 0.000001234, 100, 1e6, 1e7, 1.7976931348623157e308,
		math.NaN(), math.Float64frombits(0x7ff8_0000_dead_beef), math.Inf(1), math.Inf(-1)}
	edgeStrings = []string{"", "pe1", "eth0/1", "a b", "x > 0.9 && y < 1", "<script>&amp;</script>", `quote " back \ slash`,
		"tab\tnl\nret\rff\fbs\b", "\x00\x01\x1f\x7f", "é日本語🙂", "\u2028line\u2029para", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate",
		"trunc \xe2\x82", "ok\u00a0nbsp", "\ufffd literal", strings.Repeat("long<", 40)}
	edgeTimes = []time.Time{
		{}, time.Unix(0, 0).UTC(), time.Date(2026, 12, 7, 23, 45, 0, 0, time.UTC),
		time.Date(2026, 12, 7, 23, 45, 0, 123456789, time.UTC), time.Date(2026, 12, 7, 23, 45, 0, 120000000, time.UTC),
		time.Date(2026, 3, 1, 1, 2, 3, 1, time.FixedZone("CET", 3600)),
		time.Date(2026, 3, 1, 1, 2, 3, 500, time.FixedZone("", -(9*3600+30*60))),
		time.Date(2026, 3, 1, 1, 2, 3, 0, time.FixedZone("odd", 5*3600+45*60+30)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Now(), // with a monotonic reading
	}
	// badTimes are refused by time.Time's MarshalJSON.
	badTimes = []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", -100*3600)),
	}
)

// windowCases returns windows covering the edge cases.
func windowCases() []*schema.FeatureRow {
	base := func() *schema.FeatureRow { return testWindow(3) }
	var rows []*schema.FeatureRow
	rows = append(rows, base(), &schema.FeatureRow{}, &schema.FeatureRow{Names: []string{}, Values: []float64{}},
		&schema.FeatureRow{Names: []string{}}, &schema.FeatureRow{Values: []float64{}})
	for _, v := range edgeFloats {
		r := base()
		r.Values = []float64{v, -v}
		rows = append(rows, r)
	}
	all := base()
	all.Names, all.Values = nil, nil
	for i, v := range edgeFloats {
		all.Names, all.Values = append(all.Names, fmt.Sprint("f", i)), append(all.Values, v)
	}
	rows = append(rows, all)
	for _, s := range edgeStrings {
		r := base()
		r.View, r.Device, r.Component, r.CloseReason, r.Names = s, s, s, s, []string{s, ""}
		rows = append(rows, r)
	}
	ints := base()
	ints.WindowStart, ints.WindowEnd, ints.LastIngestTS, ints.ClosedAt, ints.TriggerIngestTS = math.MinInt64, math.MaxInt64, -1, 0, 7
	rows = append(rows, ints)
	bad := base()
	bad.Values = bad.Values[:1]
	return append(rows, bad)
}

// decisionCases returns decisions covering the edge cases.
func decisionCases() []*schema.Decision {
	base := func() *schema.Decision { return testDecision(4) }
	var ds []*schema.Decision
	ds = append(ds, base(), &schema.Decision{})
	empty := base()
	empty.Features, empty.MissingFeatures = map[string]float64{}, []string{}
	nilf := base()
	nilf.Features = nil
	allNaN := base()
	allNaN.Features = map[string]float64{"x": math.NaN(), "y": math.Inf(1), "z": math.Inf(-1)}
	ds = append(ds, empty, nilf, allNaN)
	for _, v := range edgeFloats {
		d := base()
		d.Score = v
		d.Features = map[string]float64{"a": v, "b": -v}
		ds = append(ds, d)
	}
	many := base()
	many.Features = map[string]float64{}
	for i := range 40 {
		many.Features[fmt.Sprintf("feat_%02d", 40-i)] = float64(i) / 7
	}
	ds = append(ds, many)
	for _, s := range edgeStrings {
		d := base()
		d.ID, d.View, d.Model, d.ModelVersion, d.Action, d.State = s, s, s, s, s, s
		d.Fingerprint, d.Reason, d.Fallback, d.Trigger = s, s, s, s
		d.Entity = schema.Entity{Device: s, Component: s}
		d.Features = map[string]float64{s: 1, s + "2": 2, "plain": 3}
		d.MissingFeatures = []string{s, ""}
		d.Event = &schema.DecisionEvent{Metric: s, State: s, Prev: s, Time: d.Time}
		d.Flapping, d.Transition = true, true
		d.IngestToDecisionUS, d.TriggerToDecisionUS = math.MaxInt64, math.MinInt64
		ds = append(ds, d)
	}
	for _, tm := range append(append([]time.Time{}, edgeTimes...), badTimes...) {
		for field := range 5 {
			d := base()
			d.Event = &schema.DecisionEvent{Metric: "interface.oper_status", State: "down"}
			*[]*time.Time{&d.Time, &d.Since, &d.Window.Start, &d.Window.End, &d.Event.Time}[field] = tm
			ds = append(ds, d)
		}
	}
	return ds
}

// actionCases returns actions covering the edge cases.
func actionCases() []*Action {
	base := func() *Action { return testAction(2) }
	var as []*Action
	as = append(as, base(), &Action{}, &Action{SchemaVersion: 7})
	for _, v := range edgeFloats {
		a := base()
		a.Score = v
		as = append(as, a)
	}
	for _, s := range edgeStrings {
		a := base()
		a.Model, a.ModelVersion, a.Fingerprint, a.View, a.Trigger, a.State, a.Action, a.Reason = s, s, s, s, s, s, s, s
		a.Entity = schema.Entity{Device: s, Component: s}
		a.Flapping, a.Suppressed = true, -3
		as = append(as, a)
	}
	for _, tm := range append(append([]time.Time{}, edgeTimes...), badTimes...) {
		for field := range 3 {
			a := base()
			*[]*time.Time{&a.Since, &a.LastDecision, &a.LastPublished}[field] = tm
			as = append(as, a)
		}
	}
	return as
}

// sameEncoding fails t unless got and want are the same bytes, or both
// calls failed.
func sameEncoding(t *testing.T, what string, got []byte, gotErr error, want []byte, wantErr error) {
	t.Helper()
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("%s: error %v, encoding/json's %v", what, gotErr, wantErr)
	}
	if gotErr == nil && !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got  %s\n want %s", what, got, want)
	}
}

func TestEncodeWindowMatchesJSON(t *testing.T) {
	for i, row := range windowCases() {
		got, err := EncodeWindow(row)
		want, wantErr := refEncodeWindow(row)
		sameEncoding(t, fmt.Sprintf("window %d %+v", i, row), got, err, want, wantErr)
	}
}

func TestEncodeDecisionMatchesJSON(t *testing.T) {
	fails := 0
	for i, d := range decisionCases() {
		got, err := EncodeDecision(d)
		want, wantErr := refEncodeDecision(d)
		sameEncoding(t, fmt.Sprintf("decision %d %+v", i, d), got, err, want, wantErr)
		if err != nil {
			fails++
		}
	}
	if want := 5 * len(badTimes); fails != want {
		t.Errorf("%d decisions refused, want %d (the bad times)", fails, want)
	}
}

func TestEncodeActionMatchesJSON(t *testing.T) {
	fails := 0
	for i, a := range actionCases() {
		got, err := EncodeAction(a)
		want, wantErr := refEncodeAction(a)
		sameEncoding(t, fmt.Sprintf("action %d %+v", i, a), got, err, want, wantErr)
		if err != nil {
			fails++
		}
	}
	if want := 3 * len(badTimes); fails != want {
		t.Errorf("%d actions refused, want %d (the bad times)", fails, want)
	}
}

// TestAppendDocsMatchesJoin: a batch body appended into one buffer (a
// reused one, holding an older body) is the documents joined with
// newlines.
func TestAppendDocsMatchesJoin(t *testing.T) {
	rows, ds, as := windowCases(), decisionCases(), actionCases()
	rows = rows[:len(rows)-1] // the last one fails
	var okDs []*schema.Decision
	for _, d := range ds {
		if _, err := refEncodeDecision(d); err == nil {
			okDs = append(okDs, d)
		}
	}
	var okAs []*Action
	for _, a := range as {
		if _, err := refEncodeAction(a); err == nil {
			okAs = append(okAs, a)
		}
	}
	buf := []byte("an older body that is longer than nothing")
	check := func(kind string, n int, ref func(i int) ([]byte, error), appendDoc func(b []byte, i int) ([]byte, error)) {
		t.Helper()
		docs := make([][]byte, n)
		for i := range n {
			var err error
			if docs[i], err = ref(i); err != nil {
				t.Fatal(err)
			}
		}
		got, err := appendDocs(buf[:0], n, appendDoc)
		if err != nil {
			t.Fatal(err)
		}
		if want := bytes.Join(docs, []byte("\n")); !bytes.Equal(got, want) {
			t.Fatalf("%s batch body differs from the joined documents", kind)
		}
		buf = got
	}
	check("windows", len(rows), func(i int) ([]byte, error) { return refEncodeWindow(rows[i]) },
		func(b []byte, i int) ([]byte, error) { return appendWindowDoc(b, rows[i]) })
	check("decisions", len(okDs), func(i int) ([]byte, error) { return refEncodeDecision(okDs[i]) },
		func(b []byte, i int) ([]byte, error) { return appendDecisionDoc(b, okDs[i]) })
	check("actions", len(okAs), func(i int) ([]byte, error) { return refEncodeAction(okAs[i]) },
		func(b []byte, i int) ([]byte, error) { return appendActionDoc(b, okAs[i]) })
	bad := windowCases()
	if _, err := appendDocs(nil, len(bad), func(b []byte, i int) ([]byte, error) { return appendWindowDoc(b, bad[i]) }); err == nil {
		t.Error("a batch with a window of 2 names and 1 value encoded")
	}
}

// fuzzTime makes a time of the fuzzer's numbers: seconds, nanoseconds and a
// zone offset in seconds (0: UTC; 1: the local zone).
func fuzzTime(sec, nsec int64, off int32) time.Time {
	t := time.Unix(sec, nsec)
	switch off {
	case 0:
		return t.UTC()
	case 1:
		return t
	}
	return t.In(time.FixedZone("z", int(off)))
}

func FuzzEncodeWindowMatchesJSON(f *testing.F) {
	for i, s := range edgeStrings {
		v := edgeFloats[i%len(edgeFloats)]
		f.Add(s, "pe1", s, int64(i), int64(i)*60, "a|"+s+"|", v, -v, edgeFloats[(i+7)%len(edgeFloats)], int64(-i), s, int64(i%2), false)
	}
	for _, v := range edgeFloats {
		f.Add("v", "d", "", int64(0), int64(0), "x", v, v, v, int64(0), "", int64(0), true)
	}
	f.Fuzz(func(t *testing.T, view, device, component string, start, end int64, names string, v0, v1, v2 float64, last int64, reason string, trigger int64, nilNames bool) {
		row := &schema.FeatureRow{View: view, Entity: schema.Entity{Device: device, Component: component},
			WindowStart: start, WindowEnd: end, LastIngestTS: last, ClosedAt: end ^ last, CloseReason: reason, TriggerIngestTS: trigger}
		if !nilNames {
			row.Names = strings.Split(names, "|")
			vals := []float64{v0, v1, v2}
			for i := range row.Names {
				row.Values = append(row.Values, vals[i%3])
			}
			if len(row.Names) == 5 { // a mismatch now and then
				row.Values = row.Values[1:]
			}
		}
		got, err := EncodeWindow(row)
		want, wantErr := refEncodeWindow(row)
		sameEncoding(t, "window", got, err, want, wantErr)
	})
}

func FuzzEncodeDecisionMatchesJSON(f *testing.F) {
	for i, s := range edgeStrings {
		tm := edgeTimes[i%len(edgeTimes)]
		_, off := tm.Zone()
		f.Add(s, s, "pe1", s, edgeFloats[i%len(edgeFloats)], s, "k|"+s, edgeFloats[(i+3)%len(edgeFloats)], tm.Unix(), int64(tm.Nanosecond()), int32(off), i%2 == 0, uint8(i))
	}
	for _, tm := range badTimes {
		_, off := tm.Zone()
		f.Add("id", "m", "d", "", 0.5, "r", "a", 1.0, tm.Unix(), int64(0), int32(off), true, uint8(255))
	}
	f.Fuzz(func(t *testing.T, id, model, device, component string, score float64, reason, features string, fv float64, sec, nsec int64, off int32, flag bool, shape uint8) {
		tm := fuzzTime(sec, nsec, off)
		d := &schema.Decision{SchemaVersion: int(shape) - 1, ID: id, Time: tm, Entity: schema.Entity{Device: device, Component: component},
			View: reason, Model: model, ModelVersion: component, Score: score, Action: id, State: model, Since: tm.Add(-time.Duration(nsec)),
			Transition: flag, Fingerprint: device + model, Flapping: !flag, Reason: reason, Window: schema.Window{Start: tm, End: tm.Add(time.Minute)},
			Trigger: component, IngestToDecisionUS: sec, TriggerToDecisionUS: nsec}
		if shape&1 != 0 {
			d.Fallback = reason
		}
		if shape&2 != 0 {
			d.Features = map[string]float64{}
			for i, k := range strings.Split(features, "|") {
				d.Features[k] = fv * float64(i)
				if shape&8 != 0 && i == 1 {
					d.Features[k] = math.NaN()
				}
			}
		}
		if shape&4 != 0 {
			d.MissingFeatures = strings.Split(features, "|")
		}
		if shape&16 != 0 {
			d.Event = &schema.DecisionEvent{Metric: model, State: id, Prev: reason, Time: tm}
		}
		got, err := EncodeDecision(d)
		want, wantErr := refEncodeDecision(d)
		sameEncoding(t, "decision", got, err, want, wantErr)
	})
}

func FuzzEncodeActionMatchesJSON(f *testing.F) {
	for i, s := range edgeStrings {
		tm := edgeTimes[i%len(edgeTimes)]
		_, off := tm.Zone()
		f.Add(s, "pe1", s, s, edgeFloats[i%len(edgeFloats)], tm.Unix(), int64(tm.Nanosecond()), int32(off), i%2 == 0, int64(i-3))
	}
	for _, tm := range badTimes {
		_, off := tm.Zone()
		f.Add("m", "d", "", "firing", 1.0, tm.Unix(), int64(0), int32(off), false, int64(0))
	}
	f.Fuzz(func(t *testing.T, model, device, component, state string, score float64, sec, nsec int64, off int32, flapping bool, suppressed int64) {
		tm := fuzzTime(sec, nsec, off)
		a := &Action{SchemaVersion: int(suppressed), ActionState: inference.ActionState{Model: model, ModelVersion: component, Fingerprint: state + model,
			Entity: schema.Entity{Device: device, Component: component}, View: component, Trigger: state, State: state, Since: tm,
			Action: model, Score: score, Reason: state, LastDecision: tm.Add(time.Duration(nsec)), Flapping: flapping, Suppressed: suppressed}}
		if flapping {
			a.LastPublished = tm
		}
		got, err := EncodeAction(a)
		want, wantErr := refEncodeAction(a)
		sameEncoding(t, "action", got, err, want, wantErr)
	})
}

// benchWindow, benchDecision and benchAction are items as an edge sends
// them: a window of an interface view with 12 features (two without
// data), a decision with 8 features, an action transition.
func benchWindow() *schema.FeatureRow {
	row := testWindow(5)
	row.Names, row.Values = nil, nil
	for i := range 12 {
		row.Names = append(row.Names, fmt.Sprintf("interface_in_octets_rate__mean_%dm", i+1))
		row.Values = append(row.Values, 1234567.891*float64(i+1))
	}
	row.Values[3], row.Values[7] = math.NaN(), math.NaN()
	row.LastIngestTS, row.TriggerIngestTS = row.WindowEnd+1234567, row.WindowEnd+2345678
	return row
}

func benchDecision() *schema.Decision {
	d := testDecision(5)
	d.Features = map[string]float64{}
	for i := range 8 {
		d.Features[fmt.Sprintf("interface_in_octets_rate__mean_%dm", i+1)] = 0.123456789 * float64(i+1)
	}
	d.Reason, d.Score = "utilisation > 0.9 for 3m", 0.934
	d.Time = d.Time.Add(123456789)
	return d
}

func benchAction() *Action {
	a := testAction(1)
	a.Score, a.Reason = 0.934, "utilisation > 0.9 for 3m"
	a.LastDecision = a.LastDecision.Add(123456789)
	return a
}

// BenchmarkEncodeWindow, BenchmarkEncodeDecision, BenchmarkEncodeAction:
// one item's document with encoding/json (the reference, as it was) and
// with the appenders (EncodeX, and appending into a reused buffer as a
// batch does).
func BenchmarkEncodeWindow(b *testing.B) {
	row := benchWindow()
	benchEncode(b, func() ([]byte, error) { return refEncodeWindow(row) }, func() ([]byte, error) { return EncodeWindow(row) },
		func(buf []byte) ([]byte, error) { return appendWindowDoc(buf, row) })
}

func BenchmarkEncodeDecision(b *testing.B) {
	d := benchDecision()
	benchEncode(b, func() ([]byte, error) { return refEncodeDecision(d) }, func() ([]byte, error) { return EncodeDecision(d) },
		func(buf []byte) ([]byte, error) { return appendDecisionDoc(buf, d) })
}

func BenchmarkEncodeAction(b *testing.B) {
	a := benchAction()
	benchEncode(b, func() ([]byte, error) { return refEncodeAction(a) }, func() ([]byte, error) { return EncodeAction(a) },
		func(buf []byte) ([]byte, error) { return appendActionDoc(buf, a) })
}

func benchEncode(b *testing.B, ref, enc func() ([]byte, error), appendDoc func([]byte) ([]byte, error)) {
	for _, bc := range []struct {
		name string
		f    func() ([]byte, error)
	}{{"encoding_json", ref}, {"encode", enc}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.f(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = appendDoc(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/query"
)

// The training set `netfeat demo --training-set` writes: every window of
// the view the congestion model scores, labelled with what the scenarios
// scripted at the window's end (models/README.md).
const (
	// trainingView is the view whose windows are labelled.
	trainingView = "interface_1m"
	// trainingWindow is its window length: windows ending earlier than
	// this after the simulators started are partial and left out.
	trainingWindow = time.Minute
	// congestedUtilization and congestedStrength define a congested
	// interface: a scripted congestion episode with queue drops, driving
	// the link to at least 85% of its speed, at least half-way ramped up.
	// Drops at a lower load (a policer, micro-bursts) and a hot link that
	// drops nothing are not congestion.
	congestedUtilization = 0.85
	congestedStrength    = 0.5
)

// windowKey is one window of the training view.
type windowKey struct {
	device, component string
	end               time.Time
}

// writeTrainingSet labels every full window of trainingView the run
// produced and writes the labelled windows, with their features, to path
// (.csv or .parquet) through the same point-in-time join as netfeat export.
func writeTrainingSet(ctx context.Context, client *query.Client, scenarios []demoScenario, simStart time.Time, path string, out io.Writer) error {
	format := query.OutputCSV
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".parquet" || ext == ".pq" {
		format = query.OutputParquet
	}
	windows, err := runWindows(ctx, client, simStart)
	if err != nil {
		return fmt.Errorf("training set: %w", err)
	}
	byDevice := map[string]*scenario.Scenario{}
	for _, ds := range scenarios {
		byDevice[ds.device.target] = ds.sc
	}
	labels, positives := congestionLabels(windows, byDevice, simStart)
	if positives == 0 {
		return fmt.Errorf("training set: none of the %d windows is congested: run longer, or script a congestion episode", len(windows))
	}
	rec, err := query.ReadLabelsCSV(bytes.NewReader(labels))
	if err != nil {
		return fmt.Errorf("training set: %w", err)
	}
	defer rec.Release()
	tmp := path + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("training set: %w", err)
	}
	defer os.Remove(tmp) // a no-op after the rename
	ts := &query.TrainingSet{Client: client, Labels: rec, Views: []string{trainingView}, TTL: 2 * trainingWindow}
	n, err := ts.Write(ctx, f, format)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("training set %s: %w", path, err)
	}
	fmt.Fprintf(out, "== training set: %d windows of %s, %d congested, written to %s\n", n, trainingView, positives, path)
	return nil
}

// runWindows lists the full windows of trainingView since simStart, from
// the hot tier and history alike.
func runWindows(ctx context.Context, client *query.Client, simStart time.Time) ([]windowKey, error) {
	first := simStart.Add(trainingWindow)
	req := query.Request{
		SQL: fmt.Sprintf(`SELECT device, component, epoch_ns(window_end) FROM %s
			WHERE window_end >= make_timestamp(%d) ORDER BY window_end, device, component`,
			trainingView, first.UnixMicro()),
		Format: query.FormatCSV,
		From:   simStart,
		To:     time.Now().Add(time.Minute),
	}
	resp, err := client.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read the windows: %w", err)
	}
	if err := query.TrailerError(resp); err != nil {
		return nil, err
	}
	if resp.Trailer.Get(query.HeaderTruncated) == "true" {
		return nil, fmt.Errorf("the service's row limit cut the %d windows off: raise query.max_rows", len(rows)-1)
	}
	if len(rows) < 2 {
		return nil, errors.New("the run produced no full window: run it longer than a minute")
	}
	out := make([]windowKey, 0, len(rows)-1)
	for _, r := range rows[1:] {
		ns, err := strconv.ParseInt(r[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("window end %q: %w", r[2], err)
		}
		out = append(out, windowKey{device: r[0], component: r[1], end: time.Unix(0, ns)})
	}
	return out, nil
}

// congestionLabels writes the labels CSV for windows (ts, device,
// component, congested, incident) from the ground truth of each device's
// scenario at the window's end, and counts the congested windows.
// incident names the events in force, for reading the set; "hot" is a
// congestion episode without drops.
//
// A window whose interface was congested earlier in the window but no
// longer is at its end is ambiguous: its features still show the episode
// (a 1-minute mean lags by up to a minute), the truth says it is over.
// Such windows get an empty label and the incident "congestion-ended";
// the training script leaves them out.
func congestionLabels(windows []windowKey, scenarios map[string]*scenario.Scenario, simStart time.Time) ([]byte, int) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"ts", "device", "component", "congested", "incident"})
	positives := 0
	for _, k := range windows {
		label, incident := "0", ""
		if sc := scenarios[k.device]; sc != nil {
			at := k.end.Sub(simStart)
			var kinds []string
			for _, a := range sc.At(k.component, at) {
				kind := string(a.Kind)
				if a.Kind == scenario.Congestion && a.DiscardsPerSecond <= 0 {
					kind = "hot"
				}
				kinds = append(kinds, kind)
			}
			incident = strings.Join(kinds, "+")
			switch {
			case congestedAt(sc, k.component, at):
				label = "1"
				positives++
			case congestedWithin(sc, k.component, at-trainingWindow, at):
				label, incident = "", "congestion-ended"
			}
		}
		_ = w.Write([]string{strconv.FormatInt(k.end.UnixNano(), 10), k.device, k.component, label, incident})
	}
	w.Flush()
	return b.Bytes(), positives
}

// congestedAt reports whether iface is congested t after the start.
func congestedAt(sc *scenario.Scenario, iface string, t time.Duration) bool {
	for _, a := range sc.At(iface, t) {
		if a.Kind == scenario.Congestion && a.DiscardsPerSecond > 0 &&
			a.Utilization >= congestedUtilization && a.Strength >= congestedStrength {
			return true
		}
	}
	return false
}

// congestedWithin reports whether iface was congested at some second in
// [from, to).
func congestedWithin(sc *scenario.Scenario, iface string, from, to time.Duration) bool {
	for t := from; t < to; t += time.Second {
		if congestedAt(sc, iface, t) {
			return true
		}
	}
	return false
}

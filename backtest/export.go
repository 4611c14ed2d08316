package backtest

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// Export is a `netfeat export` CSV read back for a replay: the feature
// rows it holds (one per view and distinct window), and the episodes its
// label columns describe.
type Export struct {
	// Rows are the views' windows, by window end, then entity.
	Rows []*schema.FeatureRow
	// Episodes are runs of consecutive positive labels per entity and
	// label column (the column's name is the kind): from the first
	// positive row's ts to the last one's. None: the export has no labels.
	Episodes []Episode
	// From and To are the first and last label times.
	From, To time.Time
	// Labels names the numeric label columns found.
	Labels []string
}

// ReadExport reads a `netfeat export` CSV: ts, device, optionally
// component, label columns, then <view>__window_end and
// <view>__<feature> for each view. A numeric label column is a ground
// truth whose value above 0 marks its row's entity as in an incident; a
// string column (such as the demo's "incident") is left alone.
func ReadExport(r io.Reader) (*Export, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("export: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	tsCol, ok := col["ts"]
	devCol, ok2 := col["device"]
	if !ok || !ok2 {
		return nil, errors.New("export: want the columns ts and device (a netfeat export file)")
	}
	compCol, hasComp := col["component"]
	type viewCols struct {
		name     string
		end      int
		features []int
		names    []string
	}
	views := map[string]*viewCols{}
	var labelCols []int
	for i, h := range header {
		h = strings.TrimSpace(h)
		v, f, isView := strings.Cut(h, "__")
		switch {
		case isView:
			vc := views[v]
			if vc == nil {
				vc = &viewCols{name: v, end: -1}
				views[v] = vc
			}
			if f == "window_end" {
				vc.end = i
			} else {
				vc.features = append(vc.features, i)
				vc.names = append(vc.names, f)
			}
		case h != "ts" && h != "device" && h != "component":
			labelCols = append(labelCols, i)
		}
	}
	if len(views) == 0 {
		return nil, errors.New("export: no <view>__<feature> column: export the views the models score (netfeat export --view V)")
	}
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	// A label column is numeric when every non-empty value parses.
	numeric := map[int]bool{}
	for _, c := range labelCols {
		numeric[c] = true
		for _, rec := range recs {
			if s := strings.TrimSpace(rec[c]); s != "" {
				if _, err := strconv.ParseFloat(s, 64); err != nil {
					numeric[c] = false
					break
				}
			}
		}
	}
	out := &Export{}
	for _, c := range labelCols {
		if numeric[c] {
			out.Labels = append(out.Labels, strings.TrimSpace(header[c]))
		}
	}
	type labelRow struct {
		ts     time.Time
		entity schema.Entity
		vals   []float64 // per numeric label column, NaN when empty
	}
	var rows []labelRow
	seen := map[string]bool{}
	for n, rec := range recs {
		ts, err := parseTime(rec[tsCol])
		if err != nil {
			return nil, fmt.Errorf("export: row %d: ts: %w", n+2, err)
		}
		e := schema.Entity{Device: rec[devCol]}
		if hasComp {
			e.Component = rec[compCol]
		}
		lr := labelRow{ts: ts, entity: e}
		for _, c := range labelCols {
			if !numeric[c] {
				continue
			}
			v := math.NaN()
			if s := strings.TrimSpace(rec[c]); s != "" {
				v, _ = strconv.ParseFloat(s, 64)
			}
			lr.vals = append(lr.vals, v)
		}
		rows = append(rows, lr)
		if out.From.IsZero() || ts.Before(out.From) {
			out.From = ts
		}
		if ts.After(out.To) {
			out.To = ts
		}
		for _, vc := range views {
			if vc.end < 0 || strings.TrimSpace(rec[vc.end]) == "" {
				continue // no window of the view before the label
			}
			end, err := parseTime(rec[vc.end])
			if err != nil {
				return nil, fmt.Errorf("export: row %d: %s__window_end: %w", n+2, vc.name, err)
			}
			key := vc.name + "\x00" + e.Device + "\x00" + e.Component + "\x00" + strconv.FormatInt(end.UnixNano(), 10)
			if seen[key] {
				continue
			}
			seen[key] = true
			fr := &schema.FeatureRow{View: vc.name, Entity: e, WindowStart: end.UnixNano(), WindowEnd: end.UnixNano(),
				Names: vc.names, Values: make([]float64, len(vc.features)), CloseReason: schema.CloseComplete}
			for i, c := range vc.features {
				fr.Values[i] = math.NaN()
				if s := strings.TrimSpace(rec[c]); s != "" {
					if fr.Values[i], err = strconv.ParseFloat(s, 64); err != nil {
						return nil, fmt.Errorf("export: row %d: %s: %w", n+2, header[c], err)
					}
				}
			}
			out.Rows = append(out.Rows, fr)
		}
	}
	slices.SortStableFunc(out.Rows, func(a, b *schema.FeatureRow) int {
		return cmp.Or(cmp.Compare(a.WindowEnd, b.WindowEnd), cmp.Compare(a.Device, b.Device), cmp.Compare(a.Component, b.Component))
	})
	// Episodes: per label column and entity, runs of positive rows.
	slices.SortStableFunc(rows, func(a, b labelRow) int {
		return cmp.Or(cmp.Compare(a.entity.Device, b.entity.Device), cmp.Compare(a.entity.Component, b.entity.Component), a.ts.Compare(b.ts))
	})
	for li, kind := range out.Labels {
		var cur *Episode
		for i, lr := range rows {
			if i > 0 && rows[i-1].entity != lr.entity {
				cur = nil
			}
			if v := lr.vals[li]; v > 0 {
				if cur == nil {
					out.Episodes = append(out.Episodes, Episode{Kind: kind, Device: lr.entity.Device, Component: lr.entity.Component, Start: lr.ts, End: lr.ts})
					cur = &out.Episodes[len(out.Episodes)-1]
				}
				cur.End = lr.ts
				continue
			}
			cur = nil
		}
	}
	SortEpisodes(out.Episodes)
	return out, nil
}

// parseTime reads an export's time: Unix nanoseconds, RFC 3339, or DuckDB's
// "2006-01-02 15:04:05.999999" (UTC unless it has an offset).
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(0, ns).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want Unix ns, RFC 3339 or 2006-01-02 15:04:05", s)
}

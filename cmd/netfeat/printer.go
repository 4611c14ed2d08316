package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/schema"
)

// Output formats of the commands that print observations or samples.
const (
	formatTable = "table" // aligned columns with a header line
	formatJSONL = "jsonl" // one JSON object per line
)

// checkFormat validates a --format flag.
func checkFormat(format string) error {
	if format != formatTable && format != formatJSONL {
		return fmt.Errorf("--format must be table or jsonl, got %q", format)
	}
	return nil
}

// column is one column of a table: its header and how a row fills it.
type column[T any] struct {
	head string
	cell func(*T) string
}

// writeTable writes rows as tab-aligned columns under a header line. With
// no rows it writes nothing unless header is set.
func writeTable[T any](w io.Writer, cols []column[T], rows []T, header bool) error {
	if len(rows) == 0 && !header {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	writeRows(tw, cols, rows)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// writeRows writes a header line and rows to tw without flushing it, so
// that several tables can share one alignment.
func writeRows[T any](tw *tabwriter.Writer, cols []column[T], rows []T) {
	line := make([]byte, 0, 128)
	for i, c := range cols {
		if i > 0 {
			line = append(line, '\t')
		}
		line = append(line, c.head...)
	}
	tw.Write(append(line, '\n')) // errors surface at Flush
	for r := range rows {
		line = line[:0]
		for i, c := range cols {
			if i > 0 {
				line = append(line, '\t')
			}
			line = append(line, c.cell(&rows[r])...)
		}
		tw.Write(append(line, '\n'))
	}
}

// printLayout is what one command prints.
type printLayout struct {
	// obs are the columns of raw observations (--raw).
	obs []column[schema.Observation]
	// samples are the columns of canonical samples.
	samples []column[schema.Sample]
	// sampleJSON is the JSON line of a sample; nil prints the Sample itself.
	// Table cells print values with units; JSON keeps the raw value.
	sampleJSON func(*schema.Sample) any
	// less orders the samples of one flush (a stable sort).
	less func(a, b *schema.Sample) bool
	// header prints the sample header even when there are no samples.
	header bool
}

// printer is the one output of netfeat probe snmp, probe gnmi and
// normalize. It collects raw observations (observations is a
// schema.ObservationSinkFunc) and canonical samples (samples is a
// schema.SampleAppenderFunc) from any goroutine and writes what it holds,
// as a table or JSON lines, when flush is called.
type printer struct {
	w      io.Writer
	jsonl  bool
	layout printLayout

	mu  sync.Mutex
	obs []schema.Observation
	smp []schema.Sample
}

// newPrinter returns a printer writing format (formatTable or formatJSONL)
// to w.
func newPrinter(w io.Writer, format string, layout printLayout) *printer {
	return &printer{w: w, jsonl: format == formatJSONL, layout: layout}
}

// observations keeps a batch of raw observations for the next flush.
func (p *printer) observations(_ context.Context, b []schema.Observation) error {
	p.mu.Lock()
	p.obs = append(p.obs, b...)
	p.mu.Unlock()
	return nil
}

// samples keeps a batch of samples for the next flush.
func (p *printer) samples(_ context.Context, b []schema.Sample) error {
	p.mu.Lock()
	p.smp = append(p.smp, b...)
	p.mu.Unlock()
	return nil
}

// flush writes the observations, then the samples in layout order, and
// forgets them. It returns how many samples it wrote.
func (p *printer) flush() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.layout.less != nil {
		sort.SliceStable(p.smp, func(i, j int) bool { return p.layout.less(&p.smp[i], &p.smp[j]) })
	}
	n := len(p.smp)
	err := p.write()
	clear(p.obs) // drop string references held by the reused buffers
	clear(p.smp)
	p.obs, p.smp = p.obs[:0], p.smp[:0]
	return n, err
}

func (p *printer) write() error {
	if p.jsonl {
		enc := json.NewEncoder(p.w)
		for _, o := range p.obs {
			if err := enc.Encode(o); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		for i, s := range p.smp {
			var v any = s
			if p.layout.sampleJSON != nil {
				v = p.layout.sampleJSON(&p.smp[i])
			}
			if err := enc.Encode(v); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		return nil
	}
	if len(p.obs) == 0 && len(p.smp) == 0 && !p.layout.header {
		return nil
	}
	// One tabwriter: observations and samples of one flush share columns.
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	if len(p.obs) > 0 {
		writeRows(tw, p.layout.obs, p.obs)
	}
	if len(p.smp) > 0 || p.layout.header {
		writeRows(tw, p.layout.samples, p.smp)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// Layouts of the commands.
var (
	// probeSNMPLayout: netfeat probe snmp.
	probeSNMPLayout = printLayout{
		obs:        []column[schema.Observation]{colObsDevice, {"OID", obsPath}, colObsKind, colObsValue},
		samples:    probeSampleColumns,
		sampleJSON: recordingLine,
		less:       byComponentMetric,
	}
	// probeGNMILayout: netfeat probe gnmi.
	probeGNMILayout = printLayout{
		obs:        []column[schema.Observation]{colObsDevice, {"ORIGIN", func(o *schema.Observation) string { return o.Origin }}, {"PATH", obsPath}, colObsKind, colObsValue},
		samples:    probeSampleColumns,
		sampleJSON: recordingLine,
		less:       byComponentMetric,
	}
	// recordingLayout: netfeat normalize, with event time.
	recordingLayout = printLayout{
		samples: []column[schema.Sample]{
			{"TS", func(s *schema.Sample) string { return time.Unix(0, s.TS).UTC().Format(time.RFC3339) }},
			colSampleDevice, colSampleComponent, colSampleMetric, colSampleValue, colSampleSource,
		},
		sampleJSON: recordingLine,
		less: func(a, b *schema.Sample) bool {
			if a.Device != b.Device {
				return a.Device < b.Device
			}
			if a.Component != b.Component {
				return a.Component < b.Component
			}
			if a.Metric != b.Metric {
				return a.Metric < b.Metric
			}
			return a.TS < b.TS
		},
		header: true,
	}
	// unmappedColumns: netfeat normalize --unmapped.
	unmappedColumns = []column[normalize.UnmappedStat]{
		{"DEVICE", func(u *normalize.UnmappedStat) string { return u.Device }},
		{"PATH", func(u *normalize.UnmappedStat) string { return u.Path }},
		{"REASON", func(u *normalize.UnmappedStat) string { return u.Reason }},
		{"COUNT", func(u *normalize.UnmappedStat) string { return strconv.FormatUint(u.Count, 10) }},
	}
)

var (
	colObsDevice = column[schema.Observation]{"DEVICE", func(o *schema.Observation) string { return o.Device }}
	colObsKind   = column[schema.Observation]{"KIND", func(o *schema.Observation) string { return o.Kind.String() }}
	colObsValue  = column[schema.Observation]{"VALUE", obsValue}

	colSampleDevice    = column[schema.Sample]{"DEVICE", func(s *schema.Sample) string { return s.Device }}
	colSampleComponent = column[schema.Sample]{"COMPONENT", func(s *schema.Sample) string { return s.Component }}
	colSampleMetric    = column[schema.Sample]{"METRIC", func(s *schema.Sample) string { return s.Metric }}
	colSampleValue     = column[schema.Sample]{"VALUE", func(s *schema.Sample) string { return formatMetricValue(s.Value, s.Metric) }}
	colSampleSource    = column[schema.Sample]{"SOURCE", func(s *schema.Sample) string { return s.Source }}

	probeSampleColumns = []column[schema.Sample]{colSampleDevice, colSampleComponent, colSampleMetric, colSampleValue, colSampleSource}
)

func obsPath(o *schema.Observation) string { return o.Path }

// byComponentMetric orders one device's samples (a probe prints one device).
func byComponentMetric(a, b *schema.Sample) bool {
	if a.Component != b.Component {
		return a.Component < b.Component
	}
	return a.Metric < b.Metric
}

// obsValue renders a raw observation's value: numbers as numbers, an
// enumeration by its name when it has one, strings quoted, bytes in hex,
// and the kind's name for values without one (noSuchObject, null).
func obsValue(o *schema.Observation) string {
	switch o.Kind {
	case schema.KindCounter32, schema.KindCounter64, schema.KindGauge, schema.KindTimeTicks:
		return strconv.FormatUint(o.Uint, 10)
	case schema.KindInteger, schema.KindBool:
		return strconv.FormatInt(o.Int, 10)
	case schema.KindEnum:
		if o.Str != "" {
			return o.Str
		}
		return strconv.FormatInt(o.Int, 10)
	case schema.KindFloat:
		return strconv.FormatFloat(o.Float, 'g', -1, 64)
	case schema.KindString, schema.KindOID, schema.KindJSON:
		return strconv.Quote(o.Str)
	case schema.KindBytes:
		return fmt.Sprintf("%x", o.Str)
	}
	return o.Kind.String()
}

// metricUnit is the catalog unit of a metric ("" if unknown).
func metricUnit(metric string) string {
	md, _ := schema.LookupMetric(metric)
	return md.Unit
}

// recordingSample is a sample as netfeat normalize and probe print it with
// --format jsonl: RFC 3339 event time, the raw value and the catalog unit.
type recordingSample struct {
	TS        string  `json:"ts"`
	Device    string  `json:"device"`
	Component string  `json:"component"`
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Unit      string  `json:"unit"`
	Source    string  `json:"source"`
}

func recordingLine(s *schema.Sample) any {
	return recordingSample{time.Unix(0, s.TS).UTC().Format(time.RFC3339Nano), s.Device, s.Component, s.Metric, s.Value, metricUnit(s.Metric), s.Source}
}

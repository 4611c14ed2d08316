// Package watch subscribes to netfeat decisions on NATS and prints them as
// aligned, readable lines; it is what `netfeat watch` runs.
package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/netfeat/netfeat/schema"
)

// Options select and format the decisions to show.
type Options struct {
	// Model and Device narrow the subscription; empty means all.
	Model, Device string
	// ActionsOnly hides decisions whose action is "none".
	ActionsOnly bool
	// Transitions shows only decisions that move an action's lifecycle
	// (pending, firing, resolved, inactive), hiding repeats and, under
	// publish: all, the decisions between transitions.
	Transitions bool
	// JSON prints each decision document as received, one per line.
	JSON bool
	// Count stops after that many decisions are shown; 0 means no limit.
	Count int
	// UTC prints times in UTC instead of local time.
	UTC bool
}

// Subject returns the NATS subject matching the options' model and device.
func (o Options) Subject() string {
	model, device := "*", "*"
	if o.Model != "" {
		model = schema.SubjectToken(o.Model)
	}
	if o.Device != "" {
		device = schema.SubjectToken(o.Device)
	}
	return "netfeat.decisions." + model + "." + device
}

// Run subscribes on nc and prints decisions to out until ctx is done or
// Count decisions were shown. Malformed messages are reported on out and
// skipped.
func Run(ctx context.Context, nc *nats.Conn, o Options, out io.Writer) error {
	msgs := make(chan *nats.Msg, 4096)
	sub, err := nc.ChanSubscribe(o.Subject(), msgs)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", o.Subject(), err)
	}
	defer sub.Unsubscribe()
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("subscribe %s: %w", o.Subject(), err)
	}
	p := NewPrinter(out, o)
	shown := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			ok, err := p.Print(m.Data)
			if err != nil {
				return err
			}
			if ok {
				shown++
			}
			if o.Count > 0 && shown >= o.Count {
				return nil
			}
		}
	}
}

// Printer formats decision documents as aligned lines, with a header
// before the first.
type Printer struct {
	mu     sync.Mutex
	w      io.Writer
	o      Options
	header bool
}

// NewPrinter returns a printer writing to w.
func NewPrinter(w io.Writer, o Options) *Printer { return &Printer{w: w, o: o} }

// Column widths of the table; longer values are cut with "…".
const (
	wTime    = 12
	wModel   = 30
	wEntity  = 34
	wScore   = 8
	wAction  = 9
	wState   = 10
	wLatency = 9
)

// Print shows one decision document and reports whether it was shown
// (ActionsOnly hides some). A document that does not decode is shown as a
// warning line. The error is the writer's.
func (p *Printer) Print(doc []byte) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d schema.Decision
	if err := json.Unmarshal(doc, &d); err != nil {
		_, werr := fmt.Fprintf(p.w, "! undecodable decision (%v): %.120s\n", err, doc)
		return false, werr
	}
	if p.o.ActionsOnly && d.Action == "none" || p.o.Transitions && !d.Transition {
		return false, nil
	}
	if p.o.JSON {
		_, err := fmt.Fprintf(p.w, "%s\n", doc)
		return true, err
	}
	var b strings.Builder
	if !p.header {
		p.header = true
		row(&b, "TIME", "MODEL@VERSION", "ENTITY", "SCORE", "ACTION", "STATE", "LATENCY", "REASON")
	}
	t := d.Time
	if !p.o.UTC {
		t = t.Local()
	}
	reason := d.Reason
	if d.Fallback != "" {
		reason += " [fallback: " + d.Fallback + "]"
	}
	if len(d.MissingFeatures) > 0 {
		reason += " [missing: " + strings.Join(d.MissingFeatures, ", ") + "]"
	}
	lat := d.TriggerToDecisionUS
	if lat <= 0 {
		lat = d.IngestToDecisionUS
	}
	row(&b, t.Format("15:04:05.000"), d.Model+"@"+d.ModelVersion, d.Entity.String(), score(d.Score),
		d.Action, state(&d), latency(lat), reason)
	_, err := io.WriteString(p.w, b.String())
	return true, err
}

// state renders the lifecycle state: "→firing" on a transition, "firing"
// on a repeat, "~firing" while flapping; "-" for documents without one.
func state(d *schema.Decision) string {
	s := d.State
	switch {
	case s == "":
		return "-"
	case d.Flapping:
		s = "~" + s
	case d.Transition:
		s = "→" + s
	}
	return s
}

func row(b *strings.Builder, tm, model, entity, score, action, state, lat, reason string) {
	b.WriteString(cell(tm, wTime))
	b.WriteString("  ")
	b.WriteString(cell(model, wModel))
	b.WriteString("  ")
	b.WriteString(cell(entity, wEntity))
	b.WriteString("  ")
	b.WriteString(pad(score, wScore, true))
	b.WriteString("  ")
	b.WriteString(cell(action, wAction))
	b.WriteString("  ")
	b.WriteString(cell(state, wState))
	b.WriteString("  ")
	b.WriteString(pad(lat, wLatency, true))
	b.WriteString("  ")
	b.WriteString(reason)
	b.WriteByte('\n')
}

func score(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v != 0 && (math.Abs(v) >= 1e4 || math.Abs(v) < 1e-3):
		return fmt.Sprintf("%.2e", v)
	}
	return fmt.Sprintf("%.4f", v)
}

func latency(us int64) string {
	if us <= 0 {
		return "-"
	}
	return time.Duration(us * 1e3).String()
}

// cell cuts s to width runes (with "…") and pads it on the right.
func cell(s string, width int) string {
	if utf8.RuneCountInString(s) > width {
		r := []rune(s)
		s = string(r[:width-1]) + "…"
	}
	return pad(s, width, false)
}

func pad(s string, width int, right bool) string {
	n := width - utf8.RuneCountInString(s)
	if n <= 0 {
		return s
	}
	if right {
		return strings.Repeat(" ", n) + s
	}
	return s + strings.Repeat(" ", n)
}

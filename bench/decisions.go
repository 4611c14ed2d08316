package bench

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// decisionSubject is what the outside subscriber listens to.
const decisionSubject = "netfeat.decisions.>"

// decisionDoc is the part of a decision document (schema.Decision) the
// bench reads.
type decisionDoc struct {
	Time   time.Time `json:"time"`
	Window struct {
		End time.Time `json:"end"`
	} `json:"window"`
	IngestToDecisionUS int64 `json:"ingest_to_decision_us"`
}

// triggerSource tells when the batch that closed the window ending at end
// (Unix ns) was handed to the service: the first batch with an event time
// at or past the window end (plus the allowed lateness) moves the
// watermark over it. ok is false when the bench does not know (collector
// workloads; windows closed by the idle timeout).
type triggerSource func(end int64) (sent time.Time, ok bool)

// received is one decision as the outside subscriber saw it.
type received struct {
	at        time.Time // when the subscriber got it
	trigger   time.Time // zero when unknown
	windowEnd int64
	decided   time.Time     // the decision's own time
	ingestTo  time.Duration // ingest_to_decision_us as the service stamped it
}

// decisionSubscriber is an outside NATS client (its own connection) on
// netfeat.decisions.>.
type decisionSubscriber struct {
	nc      *nats.Conn
	sub     *nats.Subscription
	trigger triggerSource

	mu        sync.Mutex
	raw       []rawDecision
	n         int
	got       []received
	malformed int
}

// rawDecision is a message as it arrived, decoded later.
type rawDecision struct {
	at   time.Time
	data []byte
}

func subscribeDecisions(url string, trigger triggerSource) (*decisionSubscriber, error) {
	nc, err := nats.Connect(url, nats.Name("netfeat-bench-decisions"), nats.NoReconnect())
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	d := &decisionSubscriber{nc: nc, trigger: trigger}
	d.sub, err = nc.Subscribe(decisionSubject, d.handle)
	if err == nil {
		// The subscriber must not be what drops decisions.
		err = d.sub.SetPendingLimits(-1, -1)
	}
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("subscribe %s: %w", decisionSubject, err)
	}
	return d, nil
}

func (d *decisionSubscriber) handle(m *nats.Msg) {
	// Only the arrival time and the bytes are taken here; decoding waits
	// for summarize, so that a burst of decisions (one hop closes every
	// entity's window at once) is not delayed by the subscriber's own work.
	at := time.Now()
	d.mu.Lock()
	d.raw = append(d.raw, rawDecision{at: at, data: m.Data})
	d.n++
	d.mu.Unlock()
}

// decode turns the raw messages received so far into decisions.
func (d *decisionSubscriber) decode() {
	d.mu.Lock()
	raw := d.raw
	d.raw = nil
	d.mu.Unlock()
	got := make([]received, 0, len(raw))
	malformed := 0
	for _, m := range raw {
		var doc decisionDoc
		if err := json.Unmarshal(m.data, &doc); err != nil || doc.Time.IsZero() {
			malformed++
			continue
		}
		r := received{at: m.at, windowEnd: doc.Window.End.UnixNano(), decided: doc.Time,
			ingestTo: time.Duration(doc.IngestToDecisionUS) * time.Microsecond}
		if d.trigger != nil {
			if t, ok := d.trigger(r.windowEnd); ok {
				r.trigger = t
			}
		}
		got = append(got, r)
	}
	d.mu.Lock()
	d.got = append(d.got, got...)
	d.malformed += malformed
	d.mu.Unlock()
}

// count returns the messages received so far.
func (d *decisionSubscriber) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// summarize measures the decisions of one interval: those whose closing
// batch was sent in [from, to), or, when the trigger is unknown, those
// received in [from, to).
func (d *decisionSubscriber) summarize(from, to time.Time) DecisionStats {
	d.decode()
	var closeTo, ingest, publish Recorder
	perWindow := map[int64]int{}
	d.mu.Lock()
	for _, r := range d.got {
		in := r.at
		if !r.trigger.IsZero() {
			in = r.trigger
		}
		if in.Before(from) || !in.Before(to) {
			continue
		}
		if !r.trigger.IsZero() {
			closeTo.Record(r.at.Sub(r.trigger))
			perWindow[r.windowEnd]++
		}
		ingest.Record(r.ingestTo)
		publish.Record(r.at.Sub(r.decided))
	}
	d.mu.Unlock()
	st := DecisionStats{Received: ingest.Count(), ServiceIngestToDecision: ingest.Summary(), PublishToSubscriber: publish.Summary(), perWindow: perWindow}
	if closeTo.Count() > 0 {
		s := closeTo.Summary()
		st.WindowCloseToSubscriber = &s
	}
	return st
}

// malformedCount returns the messages that were not decision documents.
func (d *decisionSubscriber) malformedCount() int {
	d.decode()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.malformed
}

// dropped returns the messages the NATS client dropped for a slow
// subscriber (none with unlimited pending limits, but it is reported).
func (d *decisionSubscriber) dropped() int {
	n, _ := d.sub.Dropped()
	return n
}

func (d *decisionSubscriber) close() {
	_ = d.sub.Unsubscribe()
	d.nc.Close()
}

// DecisionStats is what the outside subscriber measured in one interval.
type DecisionStats struct {
	// Received decisions (malformed ones are listed with the drops).
	Received int `json:"received"`
	// Expected is the number of decisions the closed windows should have
	// produced (one per entity with data per window), when known (inject).
	Expected *int `json:"expected,omitempty"`
	// Missing is Expected minus the decisions received for those windows.
	Missing *int `json:"missing,omitempty"`
	// WindowCloseToSubscriber is from the moment the bench handed over the
	// batch that closed the window to the decision's arrival at the
	// subscriber (inject only: the bench knows that moment).
	WindowCloseToSubscriber *LatencySummary `json:"window_close_to_subscriber,omitempty"`
	// ServiceIngestToDecision is the decision's ingest_to_decision_us: from
	// the ingest of the window's last sample to the decision, as stamped by
	// the service (it includes waiting for the sample that closes the
	// window).
	ServiceIngestToDecision LatencySummary `json:"service_ingest_to_decision"`
	// PublishToSubscriber is from the decision's time to its arrival.
	PublishToSubscriber LatencySummary `json:"publish_to_subscriber"`

	perWindow map[int64]int
}

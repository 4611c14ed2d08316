package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// decisionSubject is what the outside subscriber listens to.
const decisionSubject = "netfeat.decisions.>"

// decisionDoc is the part of a decision document (schema.Decision) the
// bench reads.
type decisionDoc struct {
	Time   time.Time     `json:"time"`
	Entity schema.Entity `json:"entity"`
	Window struct {
		End time.Time `json:"end"`
	} `json:"window"`
	Trigger string `json:"trigger"`
	Event   *struct {
		Metric string    `json:"metric"`
		State  string    `json:"state"`
		Time   time.Time `json:"time"`
	} `json:"event"`
	IngestToDecisionUS  int64 `json:"ingest_to_decision_us"`
	TriggerToDecisionUS int64 `json:"trigger_to_decision_us"`
}

// triggerSource tells when the batch that closed the window ending at end
// (Unix ns) was handed to the service: the first batch with an event time
// at or past the window end (plus the allowed lateness) moves the
// watermark over it. ok is false when the bench does not know (collector
// workloads; windows closed by the idle timeout).
type triggerSource func(end int64) (sent time.Time, ok bool)

// completeSource tells when the batch that completed device's windows
// ending at end (Unix ns) was handed to the service: its first batch with
// an event time at or past end. ok is false when unknown.
type completeSource func(device string, end int64) (sent time.Time, ok bool)

// received is one decision as the outside subscriber saw it.
type received struct {
	at        time.Time // when the subscriber got it
	trigger   time.Time // zero when unknown
	complete  time.Time // the completing batch's handover; zero when unknown
	entity    schema.Entity
	windowEnd int64
	decided   time.Time     // the decision's own time
	ingestTo  time.Duration // ingest_to_decision_us as the service stamped it
	triggerTo time.Duration // trigger_to_decision_us as the service stamped it
	// kind is the decision's trigger: window, event or timer.
	kind string
	// eventState and eventTime are the state event's, for kind event.
	eventState string
	eventTime  time.Time
}

// decisionSubscriber is an outside NATS client (its own connection) on
// netfeat.decisions.>, in another process when the options name a command
// for it, or else in this one. It also receives the floor probes.
type decisionSubscriber struct {
	in       *receivers      // in this process; nil with a process
	proc     *outsideProcess // in another process; nil in this one
	trigger  triggerSource
	complete completeSource

	mu        sync.Mutex
	raw       []rawDecision
	n         int
	got       []received
	malformed int
	natsFloor []probe
	udpFloor  []probe
	// relayFloor: UDP to a relay in the bench process, then NATS.
	relayFloor []probe
}

// rawDecision is a message as it arrived, decoded later.
type rawDecision struct {
	at   time.Time
	data []byte
}

// probe is a floor probe: sent and received.
type probe struct{ sent, at time.Time }

func subscribeDecisions(ctx context.Context, url string, outside []string, trigger triggerSource, complete completeSource) (*decisionSubscriber, error) {
	d := &decisionSubscriber{trigger: trigger, complete: complete}
	var err error
	if len(outside) > 0 {
		d.proc, err = startOutside(ctx, outside, url, d.handle)
	} else {
		d.in, err = listenReceivers(url, d.handle)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// where says where the subscriber runs, for the report's notes.
func (d *decisionSubscriber) where() string {
	if d.proc != nil {
		return fmt.Sprintf("in its own process (pid %d)", d.proc.pid)
	}
	return "in the bench process, on its own NATS connection"
}

// udpAddr is where UDP floor probes go.
func (d *decisionSubscriber) udpAddr() string {
	if d.proc != nil {
		return d.proc.udpAddr
	}
	return d.in.udp.LocalAddr().String()
}

func (d *decisionSubscriber) handle(kind byte, at time.Time, data []byte) {
	switch kind {
	case recDecision:
		d.mu.Lock()
		d.raw = append(d.raw, rawDecision{at: at, data: data})
		d.n++
		d.mu.Unlock()
	case recNATSFloor, recUDPFloor:
		relayed := len(data) > 0 && data[0] == 'r'
		if relayed {
			data = data[1:]
		}
		ns, err := strconv.ParseInt(string(data), 10, 64)
		if err != nil {
			return
		}
		p := probe{time.Unix(0, ns), at}
		d.mu.Lock()
		switch {
		case relayed:
			d.relayFloor = append(d.relayFloor, p)
		case kind == recNATSFloor:
			d.natsFloor = append(d.natsFloor, p)
		default:
			d.udpFloor = append(d.udpFloor, p)
		}
		d.mu.Unlock()
	}
}

// decode turns the raw messages received so far into decisions.
func (d *decisionSubscriber) decode() {
	if d.proc != nil {
		d.proc.flush()
	}
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
		r := received{at: m.at, entity: doc.Entity, windowEnd: doc.Window.End.UnixNano(), decided: doc.Time,
			ingestTo:  time.Duration(doc.IngestToDecisionUS) * time.Microsecond,
			triggerTo: time.Duration(doc.TriggerToDecisionUS) * time.Microsecond, kind: doc.Trigger}
		if r.kind == "" {
			r.kind = triggerWindow
		}
		if doc.Event != nil {
			r.eventState, r.eventTime = doc.Event.State, doc.Event.Time
		}
		if r.kind == triggerWindow {
			if d.trigger != nil {
				if t, ok := d.trigger(r.windowEnd); ok {
					r.trigger = t
				}
			}
			if d.complete != nil {
				if t, ok := d.complete(r.entity.Device, r.windowEnd); ok {
					r.complete = t
				}
			}
		}
		got = append(got, r)
	}
	d.mu.Lock()
	d.got = append(d.got, got...)
	d.malformed += malformed
	d.mu.Unlock()
}

// Decision triggers (schema.Decision.Trigger).
const (
	triggerWindow = "window"
	triggerEvent  = "event"
)

// count returns the messages received so far.
func (d *decisionSubscriber) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// decisions returns the decoded decisions received so far.
func (d *decisionSubscriber) decisions() []received {
	d.decode()
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.got)
}

// summarize measures the window decisions of one interval: those whose
// closing batch was sent in [from, to), or, when the trigger is unknown,
// those received in [from, to).
func (d *decisionSubscriber) summarize(from, to time.Time) DecisionStats {
	d.decode()
	var closeTo, completeTo, ingest, triggerTo, publish Recorder
	perWindow := map[int64]int{}
	d.mu.Lock()
	for _, r := range d.got {
		if r.kind != triggerWindow {
			continue
		}
		in := r.at
		if !r.trigger.IsZero() {
			in = r.trigger
		}
		if in.Before(from) || !in.Before(to) {
			continue
		}
		if !r.trigger.IsZero() {
			// The batch that closed the window: the entity's completing
			// one, or the one that moved the watermark past it, whichever
			// came first.
			closed := r.trigger
			if !r.complete.IsZero() && r.complete.Before(closed) {
				closed = r.complete
			}
			closeTo.Record(r.at.Sub(closed))
			perWindow[r.windowEnd]++
		}
		if !r.complete.IsZero() && (r.trigger.IsZero() || !r.complete.After(r.trigger)) {
			// Only windows the entity's own batch closed (completion came
			// before the view's watermark passed the end plus lateness).
			completeTo.Record(r.at.Sub(r.complete))
		}
		ingest.Record(r.ingestTo)
		triggerTo.Record(r.triggerTo)
		publish.Record(r.at.Sub(r.decided))
	}
	d.mu.Unlock()
	st := DecisionStats{Received: ingest.Count(), ServiceIngestToDecision: ingest.Summary(), PublishToSubscriber: publish.Summary(), perWindow: perWindow}
	if closeTo.Count() > 0 {
		s := closeTo.Summary()
		st.WindowCloseToSubscriber = &s
	}
	if completeTo.Count() > 0 {
		s, t := completeTo.Summary(), triggerTo.Summary()
		st.CompletingSampleToSubscriber, st.ServiceTriggerToDecision = &s, &t
	}
	return st
}

// floor summarizes the floor probes received for probes sent in [from, to).
func (d *decisionSubscriber) floor(from, to time.Time) *Floor {
	if d.proc != nil {
		d.proc.flush()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	sum := func(ps []probe) LatencySummary {
		var r Recorder
		for _, p := range ps {
			if !p.sent.Before(from) && p.sent.Before(to) {
				r.Record(p.at.Sub(p.sent))
			}
		}
		return r.Summary()
	}
	return &Floor{NATS: sum(d.natsFloor), UDPRelayNATS: sum(d.relayFloor), UDP: sum(d.udpFloor)}
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
	if d.in != nil {
		return d.in.dropped()
	}
	return 0 // the outside process's client has unlimited pending limits too
}

func (d *decisionSubscriber) close() error {
	if d.proc != nil {
		return d.proc.stop()
	}
	d.in.close()
	return nil
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
	// CompletingSampleToSubscriber is from the moment the bench handed
	// over the entity's batch that completed the window (the device's
	// first batch with an event time at or past the window's end: the
	// store closes an entity's window when its series complete it) to the
	// decision's arrival at the subscriber (inject only).
	CompletingSampleToSubscriber *LatencySummary `json:"completing_sample_to_subscriber,omitempty"`
	// ServiceTriggerToDecision is the same decisions' trigger_to_decision_us:
	// the service's own share, from the ingest of the completing sample to
	// the decision.
	ServiceTriggerToDecision *LatencySummary `json:"service_trigger_to_decision,omitempty"`
	// EventToSubscriber is from a link state change (a trap's send time, a
	// gNMI notification's timestamp) to the event decision's arrival at
	// the subscriber (--events only).
	EventToSubscriber *EventStats `json:"event_to_subscriber,omitempty"`
	// Floor is the same hop with nothing of netfeat's pipeline in it,
	// measured during the step (--events only).
	Floor *Floor `json:"floor,omitempty"`

	perWindow map[int64]int
}

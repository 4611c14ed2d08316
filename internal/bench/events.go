package bench

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/recording"
)

// The event sources of --events: one simulated SNMP router that sends
// linkDown/linkUp traps, one simulated IOS-XR target streaming
// oper-status ON_CHANGE. Their names are the decision entities' devices.
const (
	trapDeviceName = "trap-router"
	gnmiDeviceName = "xr-events"
	// trapInterfaces is the simulated router's interface count; events
	// rotate over them.
	trapInterfaces = 64
	// eventRule is the bench's event rule (inference.event_rules).
	eventRule = "bench_link_down"
	// operStatusPath is what the service's gNMI collector subscribes to,
	// ON_CHANGE, on the event target.
	operStatusPath = "openconfig-interfaces:interfaces/interface/state/oper-status"
)

// eventPollInterval is how often the service polls the trap router; the
// poll names its interfaces (ifName), which a trap's ifIndex maps to.
const eventPollInterval = 2 * time.Second

// freeUDPPort returns a loopback UDP address that was free a moment ago.
func freeUDPPort() (string, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free UDP port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// Event paths.
const (
	pathTrap = "trap"
	pathGNMI = "gnmi"
)

// sentEvent is one link state change the bench caused.
type sentEvent struct {
	path      string // pathTrap or pathGNMI
	device    string
	component string
	state     string    // "down" or "up", as the decision's event names it
	at        time.Time // trap send time or notification timestamp
	matched   bool
}

// eventSources are the simulated devices whose links the bench flaps.
type eventSources struct {
	trapDev  *snmpagent.Device
	trapConn net.PacketConn
	trapAddr string // where the service polls the router (names its interfaces)
	gnmi     *gnmitarget.Server

	// links are the interfaces to flap per path (traps, gNMI); paths
	// alternate, each rotating over its own interfaces.
	links [2][]*link
	next  [2]int
	turn  int

	mu   sync.Mutex
	sent []sentEvent
	errs int
	last error
}

// link is one interface the bench takes down and up again.
type link struct {
	path      string
	ifIndex   int    // trap
	component string // as the decision's entity names it
	down      bool
}

// startEventSources starts the trap router (traps to trapsTo) and the gNMI
// target. The service must be configured with their addresses (see
// serviceSetup.events) before it starts, so the trap listener's address
// is chosen by the caller.
func startEventSources(ctx context.Context, trapsTo string) (*eventSources, error) {
	recs, err := recording.ReadSNMPRec(strings.NewReader(snmpagent.SyntheticRouter(trapInterfaces)), "trap-router.snmprec")
	if err != nil {
		return nil, fmt.Errorf("trap router recording: %w", err)
	}
	mib, err := snmpagent.NewMIB(recs)
	if err != nil {
		return nil, fmt.Errorf("trap router: %w", err)
	}
	dev, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: trapDeviceName, Community: "public", TrapsTo: trapsTo})
	if err != nil {
		return nil, fmt.Errorf("trap router: %w", err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("trap router: %w", err)
	}
	es := &eventSources{trapDev: dev, trapConn: conn, trapAddr: conn.LocalAddr().String()}
	go snmpagent.Serve(dev, conn, nil)
	es.gnmi, err = gnmitarget.New(gnmitarget.Options{Listen: "127.0.0.1:0", Name: gnmiDeviceName, Platform: "iosxr"}, nil)
	if err == nil {
		err = es.gnmi.Start(ctx)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("gnmi event target: %w", err)
	}
	for i := range trapInterfaces {
		// The synthetic router's ifIndex i+1 has ifName 1/1/(i+1).
		es.links[0] = append(es.links[0], &link{path: pathTrap, ifIndex: i + 1, component: "1/1/" + strconv.Itoa(i+1)})
	}
	for _, name := range es.gnmi.Interfaces() {
		es.links[1] = append(es.links[1], &link{path: pathGNMI, component: name})
	}
	return es, nil
}

// flap changes the next link's state and records the change; links whose
// state does not change (recorded down, or not an interface the model
// can flap) are dropped from the rotation.
func (es *eventSources) flap() {
	p := es.turn % 2
	es.turn++
	if len(es.links[p]) == 0 {
		p = 1 - p
	}
	for len(es.links[p]) > 0 {
		i := es.next[p] % len(es.links[p])
		l := es.links[p][i]
		var at time.Time
		var err error
		dev := trapDeviceName
		if l.path == pathTrap {
			at, err = es.trapDev.SetOperStatus(l.ifIndex, l.down)
		} else {
			dev = gnmiDeviceName
			at, err = es.gnmi.SetOperStatus(l.component, l.down)
		}
		if err != nil || at.IsZero() {
			if err != nil {
				es.mu.Lock()
				es.errs++
				es.last = err
				es.mu.Unlock()
			}
			es.links[p] = slices.Delete(es.links[p], i, i+1)
			continue
		}
		es.next[p]++
		l.down = !l.down
		state := "up"
		if l.down {
			state = "down"
		}
		es.mu.Lock()
		es.sent = append(es.sent, sentEvent{path: l.path, device: dev, component: l.component, state: state, at: at})
		es.mu.Unlock()
		return
	}
}

// run flaps one link every 1/rate seconds until the deadline.
func (es *eventSources) run(ctx context.Context, rate float64, until time.Time) {
	gap := time.Duration(float64(time.Second) / rate)
	due := time.Now()
	for ctx.Err() == nil && time.Now().Before(until) {
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
			continue
		}
		es.flap()
		due = due.Add(gap)
	}
}

// match pairs the event decisions received with the events sent in
// [from, to): the same entity and new state, the earliest unmatched event
// sent before the decision arrived. It returns the summary of the step.
func (es *eventSources) match(got []received, from, to time.Time) *EventStats {
	es.mu.Lock()
	defer es.mu.Unlock()
	type key struct{ device, component, state string }
	pending := map[key][]int{}
	st := &EventStats{}
	for i, e := range es.sent {
		if e.at.Before(from) || !e.at.Before(to) {
			continue
		}
		st.Sent++
		k := key{e.device, e.component, e.state}
		pending[k] = append(pending[k], i)
	}
	slices.SortFunc(got, func(a, b received) int { return a.at.Compare(b.at) })
	var all, traps, gnmi, svc Recorder
	for _, r := range got {
		if r.kind != triggerEvent {
			continue
		}
		k := key{r.entity.Device, r.entity.Component, r.eventState}
		q := pending[k]
		if len(q) == 0 || es.sent[q[0]].at.After(r.at) {
			continue
		}
		e := &es.sent[q[0]]
		pending[k] = q[1:]
		e.matched = true
		d := r.at.Sub(e.at)
		all.Record(d)
		svc.Record(r.triggerTo)
		if e.path == pathTrap {
			traps.Record(d)
		} else {
			gnmi.Record(d)
		}
	}
	st.LatencySummary, st.Traps, st.GNMI, st.ServiceTriggerToDecision = all.Summary(), traps.Summary(), gnmi.Summary(), svc.Summary()
	st.Matched = st.Count
	st.Unmatched = st.Sent - st.Matched
	st.SendErrors = es.errs
	if es.last != nil {
		st.LastSendError = es.last.Error()
	}
	return st
}

func (es *eventSources) stop(ctx context.Context) error {
	es.trapConn.Close()
	return es.gnmi.Stop(ctx)
}

// EventStats is event → decision latency at the outside subscriber, for
// every matched event (the embedded summary) and per path.
type EventStats struct {
	LatencySummary
	// Sent is the link changes caused in the step; Matched those whose
	// decision arrived (by entity and new state); Unmatched the rest.
	Sent      int `json:"sent"`
	Matched   int `json:"matched"`
	Unmatched int `json:"unmatched"`
	// Traps: from the trap's send time (loopback UDP to the service's trap
	// listener). GNMI: from the ON_CHANGE notification's timestamp.
	Traps LatencySummary `json:"traps"`
	GNMI  LatencySummary `json:"gnmi"`
	// ServiceTriggerToDecision is the matched decisions'
	// trigger_to_decision_us: from the event sample's ingest to the
	// decision, as the service stamped it.
	ServiceTriggerToDecision LatencySummary `json:"service_trigger_to_decision"`
	SendErrors               int            `json:"send_errors,omitempty"`
	LastSendError            string         `json:"last_send_error,omitempty"`
}

// Floor is the latency of the same hops with nothing of netfeat's
// pipeline in them, measured while the step ran, to the same outside
// subscriber.
type Floor struct {
	// NATS: a message published by the bench on its own connection to the
	// service's NATS server → the subscriber.
	NATS LatencySummary `json:"nats"`
	// UDPRelayNATS: a UDP datagram to a relay in the bench process, which
	// publishes it on NATS → the subscriber: the trap path's hops with a
	// relay goroutine where netfeat's collector, normalizer, store and
	// inference are.
	UDPRelayNATS LatencySummary `json:"udp_relay_nats"`
	// UDP: a datagram from the bench straight to the subscriber's process.
	UDP LatencySummary `json:"udp"`
}

// floorProber sends floor probes at a steady rate.
type floorProber struct {
	nc      *nats.Conn
	udp     net.Conn // to the subscriber's UDP port
	relay   net.PacketConn
	toRelay net.Conn
	wg      sync.WaitGroup
}

func newFloorProber(natsURL, subscriberUDP string) (*floorProber, error) {
	nc, err := nats.Connect(natsURL, nats.Name("netfeat-bench-floor"), nats.NoReconnect())
	if err != nil {
		return nil, fmt.Errorf("floor probes: %w", err)
	}
	f := &floorProber{nc: nc}
	fail := func(err error) (*floorProber, error) {
		f.close()
		return nil, fmt.Errorf("floor probes: %w", err)
	}
	if f.udp, err = net.Dial("udp", subscriberUDP); err != nil {
		return fail(err)
	}
	if f.relay, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
		return fail(err)
	}
	if f.toRelay, err = net.Dial("udp", f.relay.LocalAddr().String()); err != nil {
		return fail(err)
	}
	f.wg.Go(func() {
		buf := make([]byte, 64)
		for {
			n, _, err := f.relay.ReadFrom(buf)
			if err != nil {
				return
			}
			_ = nc.Publish(floorSubject, append([]byte("r"), buf[:n]...))
		}
	})
	return f, nil
}

// run sends one probe of each kind every 1/rate seconds until the
// deadline, offset by half a period from the events.
func (f *floorProber) run(ctx context.Context, rate float64, until time.Time) {
	gap := time.Duration(float64(time.Second) / rate)
	due := time.Now().Add(gap / 2)
	for ctx.Err() == nil && time.Now().Before(until) {
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
			continue
		}
		ts := strconv.AppendInt(nil, time.Now().UnixNano(), 10)
		_ = f.nc.Publish(floorSubject, ts)
		ts = strconv.AppendInt(ts[:0], time.Now().UnixNano(), 10)
		_, _ = f.udp.Write(ts)
		ts = strconv.AppendInt(ts[:0], time.Now().UnixNano(), 10)
		_, _ = f.toRelay.Write(ts)
		due = due.Add(gap)
	}
}

func (f *floorProber) close() {
	if f.udp != nil {
		f.udp.Close()
	}
	if f.toRelay != nil {
		f.toRelay.Close()
	}
	if f.relay != nil {
		f.relay.Close()
	}
	f.nc.Close()
	f.wg.Wait()
}

package gnmitarget

import (
	"context"
	"errors"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/proto"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/internal/sim/scenario"
)

const (
	operPath = "openconfig-interfaces:interfaces/interface/state/oper-status"
	gi1      = "GigabitEthernet0/0/0/1"
)

func openList(t *testing.T, cli gpb.GNMIClient, list *gpb.SubscriptionList) gpb.GNMI_SubscribeClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := cli.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: list}}); err != nil {
		t.Fatal(err)
	}
	return st
}

// update is one received leaf.
type update struct {
	path string
	ts   int64
	val  *gpb.TypedValue
	at   time.Time // received
}

// recvUpdates receives leaves in the background until the stream ends.
func recvUpdates(st gpb.GNMI_SubscribeClient) <-chan update {
	ch := make(chan update, 1024)
	go func() {
		defer close(ch)
		for {
			r, err := st.Recv()
			if err != nil {
				return
			}
			n := r.GetUpdate()
			for _, u := range n.GetUpdate() {
				ch <- update{path: gnmipath.Format(&gpb.Path{Elem: u.GetPath().GetElem()}), ts: n.GetTimestamp(), val: u.GetVal(), at: time.Now()}
			}
		}
	}()
	return ch
}

// next returns the next update of path within d, failing otherwise.
func next(t *testing.T, ch <-chan update, path string, d time.Duration) update {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended waiting for %s", path)
			}
			if u.path == path {
				return u
			}
		case <-timeout:
			t.Fatalf("no update of %s within %v", path, d)
		}
	}
}

// quiet checks that no update of path arrives within d.
func quiet(t *testing.T, ch <-chan update, path string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case u := <-ch:
			if u.path == path {
				t.Fatalf("unexpected update of %s: %v", path, u.val)
			}
		case <-timeout:
			return
		}
	}
}

const gi1OperLeaf = "interfaces/interface[name=" + gi1 + "]/state/oper-status"

// TestOnChangeSetOperStatus flaps a link on demand: an ON_CHANGE
// subscriber gets the initial state once, nothing at the 50 ms ticks
// while nothing changes, and each change at once with the instant
// SetOperStatus returned as its timestamp; a SAMPLE subscriber gets the
// change only with its next tick.
func TestOnChangeSetOperStatus(t *testing.T) {
	s, cli := start(t, Options{Interval: 50 * time.Millisecond})
	onChange := recvUpdates(openList(t, cli, streamList(operPath, gpb.SubscriptionMode_ON_CHANGE)))
	sample := recvUpdates(openList(t, cli, streamList(operPath, gpb.SubscriptionMode_SAMPLE)))
	if u := next(t, onChange, gi1OperLeaf, 5*time.Second); u.val.GetStringVal() != "UP" {
		t.Fatalf("initial oper-status %v, want UP", u.val)
	}
	next(t, sample, gi1OperLeaf, 5*time.Second)
	quiet(t, onChange, gi1OperLeaf, 200*time.Millisecond) // four ticks, no change

	at, err := s.SetOperStatus(gi1, false)
	if err != nil || at.IsZero() {
		t.Fatalf("SetOperStatus = %v, %v", at, err)
	}
	u := next(t, onChange, gi1OperLeaf, 2*time.Second)
	if u.val.GetStringVal() != "DOWN" || u.ts != at.UnixNano() {
		t.Fatalf("ON_CHANGE got %v at %d, want DOWN at %d", u.val, u.ts, at.UnixNano())
	}
	if lag := u.at.Sub(at); lag > 40*time.Millisecond {
		t.Logf("change arrived %v after it was made (loaded machine?)", lag)
	}
	for {
		u := next(t, sample, gi1OperLeaf, 2*time.Second)
		if u.val.GetStringVal() == "DOWN" {
			if u.ts == at.UnixNano() {
				t.Fatal("SAMPLE subscriber got the change event, want it at its next tick")
			}
			break
		}
	}
	if again, err := s.SetOperStatus(gi1, false); err != nil || !again.IsZero() {
		t.Fatalf("second SetOperStatus down = %v, %v; want no change", again, err)
	}
	quiet(t, onChange, gi1OperLeaf, 150*time.Millisecond)
	at, _ = s.SetOperStatus(gi1, true)
	if u := next(t, onChange, gi1OperLeaf, 2*time.Second); u.val.GetStringVal() != "UP" || u.ts != at.UnixNano() {
		t.Fatalf("ON_CHANGE got %v at %d, want UP at %d", u.val, u.ts, at.UnixNano())
	}
	if _, err := s.SetOperStatus("HundredGigE0/9", false); !errors.Is(err, ErrUnknownInterface) {
		t.Fatalf("unknown interface: %v", err)
	}
}

func streamList(path string, mode gpb.SubscriptionMode) *gpb.SubscriptionList {
	p, _ := gnmipath.Parse(path)
	return &gpb.SubscriptionList{Mode: gpb.SubscriptionList_STREAM, Encoding: gpb.Encoding_PROTO,
		Subscription: []*gpb.Subscription{{Path: p, Mode: mode}}}
}

// TestOnChangeScenario: a scripted link-down reaches an ON_CHANGE
// subscriber when it happens (no tick for an hour), stamped with the
// scenario's instant, and so does its end.
func TestOnChangeScenario(t *testing.T) {
	s, cli := start(t, Options{Interval: time.Hour, Scenario: &scenario.Scenario{Events: []scenario.Event{
		{Kind: scenario.LinkDown, Interface: gi1, At: 300 * time.Millisecond, Until: 600 * time.Millisecond}}}})
	ch := recvUpdates(openList(t, cli, streamList(operPath, gpb.SubscriptionMode_ON_CHANGE)))
	next(t, ch, gi1OperLeaf, 5*time.Second)
	for _, want := range []struct {
		val string
		at  time.Duration
	}{{"DOWN", 300 * time.Millisecond}, {"UP", 600 * time.Millisecond}} {
		u := next(t, ch, gi1OperLeaf, 5*time.Second)
		if u.val.GetStringVal() != want.val || u.ts != s.start.Add(want.at).UnixNano() {
			t.Fatalf("got %v at %v, want %s at %v", u.val, time.Unix(0, u.ts).Sub(s.start), want.val, want.at)
		}
		if u.at.Before(s.start.Add(want.at)) {
			t.Fatalf("%s arrived before its time", want.val)
		}
	}
}

// TestCountersFollowTraffic reads the IOS-XR device after 100 simulated
// seconds: octets advanced by Rate × 100 on every Ethernet port, unicast
// packets by that ÷ 800, errors and drops and every counter of Null0 and
// the tunnels stayed, OpenConfig and native counters agree, CPU and
// temperature stayed; while a link is down on demand its counters stop.
func TestCountersFollowTraffic(t *testing.T) {
	s, cli := start(t, Options{Interval: time.Hour, Rate: 125_000})
	read := func() map[string]*gpb.TypedValue {
		return once(t, cli, "openconfig-interfaces:interfaces", "Cisco-IOS-XR-infra-statsd-oper:infra-statistics", "openconfig-platform:components")
	}
	before := read()
	s.publish(s.start.Add(100 * time.Second))
	after := read()
	delta := func(p string) int64 {
		a, ok := after[p]
		if !ok {
			t.Fatalf("%s not served", p)
		}
		return int64(a.GetUintVal() - before[p].GetUintVal())
	}
	oc := func(ifc, leaf string) string { return "interfaces/interface[name=" + ifc + "]/state/counters/" + leaf }
	xr := func(ifc, leaf string) string {
		return "infra-statistics/interfaces/interface[interface-name=" + ifc + "]/latest/generic-counters/" + leaf
	}
	for _, ifc := range []string{"GigabitEthernet0/0/0/0", "GigabitEthernet0/0/0/2", "MgmtEth0/RP0/CPU0/0"} {
		for p, want := range map[string]int64{
			oc(ifc, "in-octets"): 12_500_000, oc(ifc, "out-octets"): 12_500_000, xr(ifc, "bytes-received"): 12_500_000,
			oc(ifc, "in-unicast-pkts"): 15_625, oc(ifc, "in-multicast-pkts"): 156, oc(ifc, "in-broadcast-pkts"): 15,
			xr(ifc, "packets-received"): 15_796,
			oc(ifc, "in-errors"):        0, oc(ifc, "out-discards"): 0, xr(ifc, "input-errors"): 0, xr(ifc, "crc-errors"): 0, xr(ifc, "output-drops"): 0,
		} {
			if d := delta(p); d < want-1 || d > want+1 {
				t.Errorf("%s advanced %d in 100 s, want %d", p, d, want)
			}
		}
	}
	for _, ifc := range []string{"Null0", "tunnel-te0"} {
		for _, p := range []string{oc(ifc, "in-octets"), oc(ifc, "in-unicast-pkts"), xr(ifc, "bytes-received")} {
			if d := delta(p); d != 0 {
				t.Errorf("%s advanced %d, want 0 (no traffic)", p, d)
			}
		}
	}
	for p, v := range before {
		if len(p) > 10 && p[:10] == "components" && !proto.Equal(v, after[p]) {
			t.Errorf("%s changed from %v to %v", p, v, after[p])
		}
	}
	// Down on demand: the counters stop.
	if _, err := s.SetOperStatus("GigabitEthernet0/0/0/0", false); err != nil {
		t.Fatal(err)
	}
	s.publish(s.start.Add(200 * time.Second))
	down := read()
	s.publish(s.start.Add(300 * time.Second))
	later := read()
	p := oc("GigabitEthernet0/0/0/0", "in-octets")
	if down[p].GetUintVal() != later[p].GetUintVal() {
		t.Fatalf("%s moved while the link was down: %d → %d", p, down[p].GetUintVal(), later[p].GetUintVal())
	}
	if g := later["interfaces/interface[name=GigabitEthernet0/0/0/0]/state/oper-status"].GetStringVal(); g != "DOWN" {
		t.Fatalf("oper-status %q while down", g)
	}
}

package gnmitarget

import (
	"context"
	"flag"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/internal/testkit"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gnmitarget-test-glog-")
	if err != nil {
		panic(err)
	}
	_ = flag.Set("log_dir", dir)
	_ = flag.Set("stderrthreshold", "FATAL")
	goleak.VerifyTestMain(m,
		goleak.Cleanup(func(code int) { os.RemoveAll(dir); os.Exit(code) }),
		goleak.IgnoreAnyFunction("github.com/golang/glog.(*fileSink).flushDaemon"))
}

func start(t *testing.T, o Options) (*Server, gpb.GNMIClient) {
	t.Helper()
	o.Listen = "127.0.0.1:0"
	s, err := New(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s, gpb.NewGNMIClient(conn)
}

func openSub(t *testing.T, cli gpb.GNMIClient, mode gpb.SubscriptionList_Mode, enc gpb.Encoding, paths ...string) gpb.GNMI_SubscribeClient {
	t.Helper()
	list := &gpb.SubscriptionList{Mode: mode, Encoding: enc}
	for _, p := range paths {
		pp, err := gnmipath.Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		list.Subscription = append(list.Subscription, &gpb.Subscription{Path: pp})
	}
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

// untilSync reads updates up to the sync_response and returns them.
func untilSync(t *testing.T, st gpb.GNMI_SubscribeClient) []*gpb.Notification {
	t.Helper()
	var ns []*gpb.Notification
	for {
		r, err := st.Recv()
		if err != nil {
			t.Fatalf("recv before sync: %v", err)
		}
		if r.GetSyncResponse() {
			return ns
		}
		ns = append(ns, r.GetUpdate())
	}
}

// portSpeedPath subscribes to every interface's openconfig-if-ethernet
// port-speed.
const portSpeedPath = "openconfig-interfaces:interfaces/interface/ethernet/state/port-speed"

func TestPlatformsOnce(t *testing.T) {
	tests := []struct {
		platform string
		path     string // a leaf every platform must serve
		origin   string
	}{
		{gnmi.PlatformIOSXR, "infra-statistics/interfaces/interface[interface-name=GigabitEthernet0/0/0/0]/latest/generic-counters/bytes-received", "Cisco-IOS-XR-infra-statsd-oper"},
		{gnmi.PlatformIOSXE, "interfaces/interface[name=GigabitEthernet0/0/0]/statistics/in-octets", "Cisco-IOS-XE-interfaces-oper"},
		{gnmi.PlatformNXOS, "sys/intf/phys-[id=eth1/11]/phys/operSt", "DME"},
	}
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			s, cli := start(t, Options{Platform: tt.platform, Interval: time.Hour})
			// The platform's subscriptions, which include port-speed.
			paths := gnmi.PlatformPaths(tt.platform)
			if !slices.Contains(paths, portSpeedPath) {
				t.Fatalf("the %s set lacks %s", tt.platform, portSpeedPath)
			}
			st := openSub(t, cli, gpb.SubscriptionList_ONCE, gpb.Encoding_PROTO, paths...)
			ns := untilSync(t, st)
			if _, err := st.Recv(); err != io.EOF {
				t.Fatalf("after ONCE sync: %v, want EOF", err)
			}
			if len(ns) != s.Leaves() {
				t.Fatalf("ONCE returned %d leaves, the device has %d: every leaf must be under the platform's subscriptions", len(ns), s.Leaves())
			}
			found := false
			for _, n := range ns {
				p := &gpb.Path{Origin: n.GetPrefix().GetOrigin(), Elem: n.GetUpdate()[0].GetPath().GetElem()}
				found = found || p.Origin == tt.origin && gnmipath.Format(&gpb.Path{Elem: p.Elem}) == tt.path
			}
			if !found {
				t.Fatalf("%s:%s not served", tt.origin, tt.path)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	_, cli := start(t, Options{Interval: time.Hour})
	resp, err := cli.Capabilities(context.Background(), &gpb.CapabilityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.SupportedEncodings) != 3 || resp.GNMIVersion == "" {
		t.Fatalf("capabilities = %v", resp)
	}
	models := map[string]bool{}
	for _, m := range resp.SupportedModels {
		models[m.Name] = true
	}
	for _, want := range []string{"openconfig-interfaces", "Cisco-IOS-XR-infra-statsd-oper", "Cisco-IOS-XR-wdsysmon-fd-oper"} {
		if !models[want] {
			t.Fatalf("models %v lack %s", models, want)
		}
	}
}

// TestPollAdvancesAndJSON polls twice, in JSON_IETF, without an origin in
// the request (resolved from the first element) and checks the counter
// advanced between polls. The first poll must come before the first tick
// to see the recorded value: with a 10 ms interval a loaded CI machine
// sometimes polled after it, and with 250 ms so did -race -count=20 on a
// busy one, so the interval is 1 s. The second poll waits for the tick,
// not for the interval, so the test takes no longer than the first tick.
func TestPollAdvancesAndJSON(t *testing.T) {
	_, cli := start(t, Options{Interval: time.Second})
	const p = "interfaces/interface[name=GigabitEthernet0/0/0/0]/state/counters/in-octets"
	st := openSub(t, cli, gpb.SubscriptionList_POLL, gpb.Encoding_JSON_IETF, p)
	first := untilSync(t, st)
	// Poll again until the answer changes (the next tick), rather than
	// sleeping past the tick: the target serves real gRPC over TCP.
	var second []*gpb.Notification
	testkit.Eventually(t, "a poll answered after the next tick", func() bool {
		if err := st.Send(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Poll{Poll: &gpb.Poll{}}}); err != nil {
			t.Fatal(err)
		}
		second = untilSync(t, st)
		return len(first) != 1 || len(second) != 1 || !proto.Equal(first[0].Update[0].Val, second[0].Update[0].Val)
	})
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("polls returned %d and %d notifications, want 1 each", len(first), len(second))
	}
	a, b := string(first[0].Update[0].Val.GetJsonIetfVal()), string(second[0].Update[0].Val.GetJsonIetfVal())
	if a == "" || a[0] != '"' || a >= b && len(a) == len(b) {
		t.Fatalf("in-octets %s then %s: want quoted JSON_IETF uint64 that advances", a, b)
	}
	if a != `"480002151"` {
		t.Fatalf("first in-octets = %s, want the recorded \"480002151\"", a)
	}
}

func TestDropAfter(t *testing.T) {
	s, cli := start(t, Options{Interval: 10 * time.Millisecond, Faults: Faults{DropAfter: 5}})
	st := openSub(t, cli, gpb.SubscriptionList_STREAM, gpb.Encoding_PROTO, "openconfig-interfaces:interfaces")
	n := 0
	for {
		_, err := st.Recv()
		if err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("stream ended with %v, want Unavailable", err)
			}
			break
		}
		n++
	}
	if n != 5 || s.Stats().Dropped != 1 {
		t.Fatalf("got %d responses, %d drops; want 5 and 1", n, s.Stats().Dropped)
	}
}

func TestRecordingResponses(t *testing.T) {
	s, cli := start(t, Options{Interval: time.Hour, Recording: "../../../testdata/gnmi/telegraf-testcases/gnmi_issue_14833_responses.json"})
	st := openSub(t, cli, gpb.SubscriptionList_ONCE, gpb.Encoding_JSON_IETF, "Cisco-IOS-XE-interfaces-oper:interfaces/interface/statistics")
	ns := untilSync(t, st)
	if len(ns) != 2 || s.Leaves() != 2 {
		t.Fatalf("replayed %d notifications of %d leaves, want 2", len(ns), s.Leaves())
	}
	if got := string(ns[0].Update[0].Val.GetJsonIetfVal()); got == "" {
		t.Fatalf("replayed value lost: %v", ns[0])
	}
}

func TestValidate(t *testing.T) {
	for _, o := range []Options{
		{},
		{Listen: "x:1", Platform: "junos"},
		{Listen: "x:1", CertFile: "a"},
		{Listen: "x:1", ClientCAFile: "a"},
		{Listen: "x:1", Faults: Faults{DropAfter: -1}},
	} {
		if err := o.Validate(); err == nil {
			t.Fatalf("Validate(%+v) = nil, want an error", o)
		}
	}
	if _, err := New(Options{Listen: "x:1", Recording: "/nonexistent"}, nil); err == nil {
		t.Fatal("New with a missing recording succeeded")
	}
}

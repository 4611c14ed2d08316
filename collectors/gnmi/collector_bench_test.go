package gnmi_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/collectors/sim/gnmitarget"
	"github.com/netfeat/netfeat/schema"
)

// blaster is a local gNMI target that streams one prepared notification as
// fast as the client takes it.
type blaster struct {
	gpb.UnimplementedGNMIServer
	resp *gpb.SubscribeResponse
}

func (bl *blaster) Subscribe(stream gpb.GNMI_SubscribeServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	sync := &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_SyncResponse{SyncResponse: true}}
	if err := stream.Send(bl.resp); err != nil {
		return err
	}
	if err := stream.Send(sync); err != nil {
		return err
	}
	for stream.Context().Err() == nil {
		if err := stream.Send(bl.resp); err != nil {
			return err
		}
	}
	return nil
}

func startBlaster(b *testing.B, updates int) string {
	b.Helper()
	n := &gpb.Notification{Prefix: &gpb.Path{Origin: "openconfig-interfaces", Elem: []*gpb.PathElem{
		{Name: "interfaces"}, {Name: "interface", Key: map[string]string{"name": "HundredGigE0/0/0/1"}}, {Name: "state"}, {Name: "counters"}}}}
	n.Timestamp = time.Now().UnixNano()
	for i := range updates {
		n.Update = append(n.Update, &gpb.Update{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: fmt.Sprintf("leaf-%d", i)}}},
			Val: &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: uint64(1e12 + i)}}})
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	gpb.RegisterGNMIServer(srv, &blaster{resp: &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}}})
	go srv.Serve(lis)
	b.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func cpuNow(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCollectorLoopback measures updates decoded and handed to the
// sink through the whole collector (gRPC receive, decode, batching) from a
// local target on loopback. With -cpu 1 the target's marshalling and
// sending share the one core, so the figure is a lower bound for the
// collector alone. One op is one notification of 36 updates.
//
//	go test -run '^$' -bench BenchmarkCollectorLoopback -cpu 1 ./collectors/gnmi/
func BenchmarkCollectorLoopback(b *testing.B) {
	const updates = 36
	addr := startBlaster(b, updates)
	var got atomic.Int64
	sink := schema.ObservationSinkFunc(func(_ context.Context, batch []schema.Observation) error {
		got.Add(int64(len(batch)))
		return nil
	})
	c, _ := startCollector(b, gnmi.Config{Targets: []gnmi.Target{{Name: "blast", Address: addr, Insecure: true,
		Subscriptions: []gnmi.Subscription{{Path: "openconfig-interfaces:interfaces/interface/state/counters"}}, Encoding: gnmi.EncodingProto}}}, sink)
	waitSynced(b, c)
	b.ReportAllocs()
	start, cpu0, n0 := time.Now(), cpuNow(b), got.Load()
	want := n0
	for b.Loop() {
		want += updates
		for got.Load() < want {
			runtime.Gosched()
		}
	}
	n := float64(got.Load() - n0)
	b.ReportMetric(n/time.Since(start).Seconds(), "updates/s")
	b.ReportMetric(n/(cpuNow(b)-cpu0).Seconds(), "updates/cpu-s")
}

// BenchmarkTargetMemory reports the heap held per subscribed target once
// 50 targets have synced the simulated IOS-XR router's ~390 leaves. The
// simulator runs in the same process, so its per-stream state is included:
// the figure is an upper bound for the collector.
func BenchmarkTargetMemory(b *testing.B) {
	const targets = 50
	sim := startSim(b, gnmitarget.Options{Interval: time.Hour})
	for b.Loop() {
		var ts []gnmi.Target
		for i := range targets {
			ts = append(ts, gnmi.Target{Name: fmt.Sprintf("xr%d", i), Address: sim.Addr(), Platform: gnmi.PlatformIOSXR, Insecure: true, Encoding: gnmi.EncodingProto})
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		sink := schema.ObservationSinkFunc(func(context.Context, []schema.Observation) error { return nil })
		c, err := gnmi.New(gnmi.Config{Targets: ts}, sink, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		waitSynced(b, c)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/targets, "heap-bytes/target")
		b.ReportMetric(float64(sim.Leaves()), "leaves/target")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := c.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}

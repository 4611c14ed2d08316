package gnmi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/normalize"
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
	// Every notification moves time on by a second and every counter by
	// 1000, so a normalizer downstream computes a rate for each.
	n := bl.resp.GetUpdate()
	for stream.Context().Err() == nil {
		n.Timestamp += int64(time.Second)
		for _, u := range n.Update {
			u.Val.Value.(*gpb.TypedValue_UintVal).UintVal += 1000
		}
		if err := stream.Send(bl.resp); err != nil {
			return err
		}
	}
	return nil
}

var benchLeaves = []string{"in-octets", "out-octets", "in-unicast-pkts", "out-unicast-pkts", "in-multicast-pkts", "out-multicast-pkts",
	"in-broadcast-pkts", "out-broadcast-pkts", "in-errors", "out-errors", "in-discards", "out-discards"}

// newBlaster listens on loopback and serves the blaster.
func newBlaster() (*grpc.Server, net.Listener, error) {
	n := &gpb.Notification{Prefix: &gpb.Path{Origin: "openconfig-interfaces", Elem: []*gpb.PathElem{
		{Name: "interfaces"}, {Name: "interface", Key: map[string]string{"name": "HundredGigE0/0/0/1"}}, {Name: "state"}, {Name: "counters"}}}}
	n.Timestamp = time.Now().UnixNano()
	for i, l := range benchLeaves {
		n.Update = append(n.Update, &gpb.Update{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: l}}},
			Val: &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: uint64(1e12 + i)}}})
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := grpc.NewServer()
	gpb.RegisterGNMIServer(srv, &blaster{resp: &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}}})
	return srv, lis, nil
}

// blasterEnv makes the test binary run as a blaster target process (see
// TestMain), so that the benchmark's CPU time is the collector's alone.
const blasterEnv = "NETFEAT_GNMI_BLASTER"

// runBlasterProcess serves until stdin closes, after printing its address.
func runBlasterProcess() {
	srv, lis, err := newBlaster()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go srv.Serve(lis)
	fmt.Println(lis.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	srv.Stop()
	os.Exit(0)
}

// startBlaster runs the blaster in this process or in a child process.
func startBlaster(b *testing.B, process bool) string {
	b.Helper()
	if !process {
		srv, lis, err := newBlaster()
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve(lis)
		b.Cleanup(srv.Stop)
		return lis.Addr().String()
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), blasterEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("blaster process: %v", err)
	}
	return strings.TrimSpace(addr)
}

// BenchmarkCollectorLoopback measures updates received, decoded and handed
// to the sink through the whole collector (gRPC receive, decode, batching)
// from a local target on loopback; with sink=normalize the sink is the
// normalizer (profile cisco-iosxr, samples discarded). With target=inproc
// and -cpu 1 the target's marshalling and sending share the one core, a
// lower bound for the collector; with target=process the target is a child
// process and updates/cpu-s counts the collector's CPU only. One op is one
// notification of 12 OpenConfig interface counters.
//
//	go test -run '^$' -bench BenchmarkCollectorLoopback -cpu 1 ./collectors/gnmi/
func BenchmarkCollectorLoopback(b *testing.B) {
	for _, bc := range []struct {
		target, sink string
	}{{"inproc", "count"}, {"inproc", "normalize"}, {"process", "count"}, {"process", "normalize"}} {
		sinkName := bc.sink
		b.Run("target="+bc.target+"/sink="+bc.sink, func(b *testing.B) {
			leaves := benchLeaves
			addr := startBlaster(b, bc.target == "process")
			var got atomic.Int64
			var sink schema.ObservationSink = schema.ObservationSinkFunc(func(_ context.Context, batch []schema.Observation) error {
				got.Add(int64(len(batch)))
				return nil
			})
			var samples atomic.Int64
			if sinkName == "normalize" {
				out := schema.SampleAppenderFunc(func(_ context.Context, s []schema.Sample) error { samples.Add(int64(len(s))); return nil })
				norm, err := normalize.New(normalize.Config{Inventory: map[string]normalize.DeviceInfo{"blast": {Profile: "cisco-iosxr"}}}, out, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				sink = schema.ObservationSinkFunc(func(ctx context.Context, batch []schema.Observation) error {
					if err := norm.Observe(ctx, batch); err != nil {
						return err
					}
					got.Add(int64(len(batch)))
					return nil
				})
			}
			c, _ := startCollector(b, gnmi.Config{Targets: []gnmi.Target{{Name: "blast", Address: addr, Insecure: true,
				Subscriptions: []gnmi.Subscription{{Path: "openconfig-interfaces:interfaces/interface/state/counters"}}, Encoding: gnmi.EncodingProto}}}, sink)
			waitSynced(b, c)
			b.ReportAllocs()
			start, cpu0, n0, s0 := time.Now(), testkit.ProcessCPU(), got.Load(), samples.Load()
			want := n0
			for b.Loop() {
				want += int64(len(leaves))
				for got.Load() < want {
					runtime.Gosched()
				}
			}
			n := float64(got.Load() - n0)
			b.ReportMetric(n/time.Since(start).Seconds(), "updates/s")
			b.ReportMetric(n/(testkit.ProcessCPU()-cpu0).Seconds(), "updates/cpu-s")
			if sinkName == "normalize" {
				b.ReportMetric(float64(samples.Load()-s0)/n, "samples/update")
			}
		})
	}
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

package gnmi

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/schema"
)

// benchResponse is an IOS-XR style notification: one interface's counters
// container with n leaves, as a target sends it, marshalled.
func benchResponse(b *testing.B, ifc int, n int, enc string) []byte {
	b.Helper()
	prefix := mustPath(b, fmt.Sprintf("interfaces/interface[name=HundredGigE0/0/0/%d]/state/counters", ifc))
	prefix.Origin = "openconfig-interfaces"
	notif := &gpb.Notification{Timestamp: time.Now().UnixNano(), Prefix: prefix}
	if enc == "json_ietf_container" {
		// The whole container as one JSON_IETF object, as IOS-XR sends it.
		var obj []byte
		for i := range n {
			obj = fmt.Appendf(obj, `,"leaf-%d":"%d"`, i, uint64(1e12)+uint64(i))
		}
		obj[0] = '{'
		obj = append(obj, '}')
		notif.Update = []*gpb.Update{{Path: &gpb.Path{}, Val: &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: obj}}}}
		n = 0
	}
	for i := range n {
		v := uintVal(uint64(1e12 + i))
		if enc == EncodingJSONIETF {
			v = &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: fmt.Appendf(nil, "%q", fmt.Sprint(1e12+i))}}
		}
		notif.Update = append(notif.Update, &gpb.Update{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: fmt.Sprintf("leaf-%d", i)}}}, Val: v})
	}
	raw, err := proto.Marshal(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: notif}})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkDecode measures the collector's per-update cost on one
// goroutine, from a SubscribeResponse frame as gRPC delivers it to
// observations ready for the sink: path building and interning, value
// decoding and the type check. decoder=wire is what the collector runs;
// decoder=generated is protobuf unmarshalling into the generated types
// followed by the reference decoder, for comparison. The sink is not
// included (see BenchmarkDecodeNormalize and BenchmarkCollectorLoopback).
// Run it with -cpu 1; updates/cpu-s is the rate per CPU-second the process
// used.
//
//	go test -run '^$' -bench BenchmarkDecode -cpu 1 ./collectors/gnmi/
func BenchmarkDecode(b *testing.B) {
	for _, dec := range []string{"wire", "generated"} {
		for _, enc := range []string{EncodingProto, EncodingJSONIETF, "json_ietf_container"} {
			for _, n := range []int{12, 36} {
				b.Run(fmt.Sprintf("decoder=%s/enc=%s/updates=%d", dec, enc, n), func(b *testing.B) {
					const ifaces = 64
					msgs := make([][]byte, ifaces)
					for i := range msgs {
						msgs[i] = benchResponse(b, i, n, enc)
					}
					subs := []*gpb.Path{mustPath(b, "openconfig-interfaces:interfaces/interface/state/counters")}
					d := newDecoder("r1", subs, func(string) { b.Fatal("rejected") })
					b.ReportAllocs()
					b.SetBytes(int64(len(msgs[0])))
					i := 0
					cpu0 := testkit.ProcessCPU()
					for b.Loop() {
						if dec == "wire" {
							d.response(msgs[i%ifaces], 1)
						} else {
							r := &gpb.SubscribeResponse{}
							if err := proto.Unmarshal(msgs[i%ifaces], r); err != nil {
								b.Fatal(err)
							}
							d.notification(r.GetUpdate(), 1)
						}
						d.out = d.out[:0]
						i++
					}
					b.ReportMetric(float64(n)*float64(i)/b.Elapsed().Seconds(), "updates/s")
					b.ReportMetric(float64(n)*float64(i)/(testkit.ProcessCPU()-cpu0).Seconds(), "updates/cpu-s")
				})
			}
		}
	}
}

// BenchmarkDecodeNormalize is BenchmarkDecode (wire decoder) followed by
// the normalizer (normalize.New with the cisco-iosxr profile, samples
// discarded): the figure the design targets (≥ 500,000 updates/s decoded
// and normalized on one core). Each notification carries one interface's
// twelve OpenConfig counters; timestamps advance so that every counter
// also yields its rate. One op is one notification.
//
//	go test -run '^$' -bench BenchmarkDecodeNormalize -cpu 1 ./collectors/gnmi/
func BenchmarkDecodeNormalize(b *testing.B) {
	leaves := []string{"in-octets", "out-octets", "in-unicast-pkts", "out-unicast-pkts", "in-multicast-pkts", "out-multicast-pkts",
		"in-broadcast-pkts", "out-broadcast-pkts", "in-errors", "out-errors", "in-discards", "out-discards"}
	const ifaces = 64
	ts := time.Now().UnixNano()
	msgs := make([][]byte, ifaces)
	tsAt := make([]int, ifaces) // where the timestamp varint is, to advance it in place
	for i := range ifaces {
		prefix := mustPath(b, fmt.Sprintf("interfaces/interface[name=HundredGigE0/0/0/%d]/state/counters", i))
		prefix.Origin = "openconfig-interfaces"
		n := &gpb.Notification{Prefix: prefix, Timestamp: ts}
		for j, l := range leaves {
			n.Update = append(n.Update, &gpb.Update{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: l}}}, Val: uintVal(uint64(1e9 + j))})
		}
		raw, err := proto.Marshal(&gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}})
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = raw
		tsAt[i] = bytes.Index(raw, protowire.AppendVarint(nil, uint64(ts)))
	}
	var samples int
	out := schema.SampleAppenderFunc(func(_ context.Context, s []schema.Sample) error { samples += len(s); return nil })
	norm, err := normalize.New(normalize.Config{Inventory: map[string]normalize.DeviceInfo{"r1": {Profile: "cisco-iosxr"}}}, out, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	subs := []*gpb.Path{mustPath(b, "openconfig-interfaces:interfaces/interface/state/counters")}
	d := newDecoder("r1", subs, func(string) { b.Fatal("rejected") })
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	cpu0 := testkit.ProcessCPU()
	for b.Loop() {
		// Time advances by a second per round of interfaces; the counters
		// stay, so each yields a (zero) rate.
		m := msgs[i%ifaces]
		t := ts + int64(i/ifaces)*int64(time.Second)
		protowire.AppendVarint(m[:tsAt[i%ifaces]], uint64(t))
		d.response(m, t)
		if err := norm.Observe(ctx, d.out); err != nil {
			b.Fatal(err)
		}
		d.out = d.out[:0]
		i++
	}
	updates := float64(len(leaves) * i)
	b.ReportMetric(updates/b.Elapsed().Seconds(), "updates/s")
	b.ReportMetric(updates/(testkit.ProcessCPU()-cpu0).Seconds(), "updates/cpu-s")
	b.ReportMetric(float64(samples)/updates, "samples/update")
}

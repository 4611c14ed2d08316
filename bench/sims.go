package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/netfeat/netfeat/collectors/sim/gnmitarget"
	"github.com/netfeat/netfeat/collectors/sim/snmpagent"
	"github.com/netfeat/netfeat/recording"
)

// simSysObjectID is the simulated devices' sysObjectID: an enterprise no
// vendor profile claims, so the generic IF-MIB profile applies.
const simSysObjectID = "1.3.6.1.4.1.99999.1"

// ifMIBRecording returns an snmprec recording of a router with the system
// group, ifaces IF-MIB interfaces (every ifTable and ifXTable column the
// generic profile polls, 32- and 64-bit counters), UCD-SNMP memory and CPU
// scalars and one HOST-RESOURCES processor: nothing the generic profile's
// plan asks for is missing, so no poll returns an exception.
func ifMIBRecording(ifaces int) string {
	var b strings.Builder
	b.WriteString("1.3.6.1.2.1.1.1.0|4|netfeat bench simulated router\n")
	b.WriteString("1.3.6.1.2.1.1.2.0|6|" + simSysObjectID + "\n")
	b.WriteString("1.3.6.1.2.1.1.3.0|67|123456\n")
	b.WriteString("1.3.6.1.2.1.1.5.0|4|sim\n")
	b.WriteString("1.3.6.1.2.1.25.3.3.1.2.1|2|12\n")
	b.WriteString("1.3.6.1.4.1.2021.4.5.0|2|16777216\n")
	b.WriteString("1.3.6.1.4.1.2021.4.6.0|2|8388608\n")
	b.WriteString("1.3.6.1.4.1.2021.11.11.0|2|85\n")
	cols := []struct {
		oid, tag string
		val      func(i int) string
	}{
		{"1.3.6.1.2.1.2.2.1.1", "2", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.2", "4", func(i int) string { return fmt.Sprintf("port 1/1/%d, 100-Gig Ethernet", i) }},
		{"1.3.6.1.2.1.2.2.1.3", "2", func(int) string { return "6" }},
		{"1.3.6.1.2.1.2.2.1.5", "66", func(int) string { return "4294967295" }},
		{"1.3.6.1.2.1.2.2.1.7", "2", func(int) string { return "1" }},
		{"1.3.6.1.2.1.2.2.1.8", "2", func(int) string { return "1" }},
		{"1.3.6.1.2.1.2.2.1.10", "65", func(i int) string { return strconv.Itoa(i * 1000003) }},
		{"1.3.6.1.2.1.2.2.1.13", "65", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.14", "65", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.11", "65", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.16", "65", func(i int) string { return strconv.Itoa(i * 999983) }},
		{"1.3.6.1.2.1.2.2.1.17", "65", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.19", "65", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.20", "65", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.1", "4", func(i int) string { return fmt.Sprintf("1/1/%d", i) }},
		{"1.3.6.1.2.1.31.1.1.1.2", "65", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.3", "65", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.4", "65", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.5", "65", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.6", "70", func(i int) string { return strconv.Itoa(i * 1_000_000_007) }},
		{"1.3.6.1.2.1.31.1.1.1.7", "70", func(i int) string { return strconv.Itoa(i * 1_000_003) }},
		{"1.3.6.1.2.1.31.1.1.1.8", "70", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.9", "70", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.10", "70", func(i int) string { return strconv.Itoa(i * 999_999_937) }},
		{"1.3.6.1.2.1.31.1.1.1.11", "70", func(i int) string { return strconv.Itoa(i * 999_983) }},
		{"1.3.6.1.2.1.31.1.1.1.12", "70", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.13", "70", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.15", "66", func(int) string { return "100000" }},
	}
	for _, c := range cols {
		for i := 1; i <= ifaces; i++ {
			fmt.Fprintf(&b, "%s.%d|%s|%s\n", c.oid, i, c.tag, c.val(i))
		}
	}
	return b.String()
}

// snmpSims are the simulated SNMP devices of a run.
type snmpSims struct {
	sim       *snmpagent.Simulator
	endpoints []endpoint
}

// startSNMPSims serves devices copies of an IF-MIB router with ifaces
// interfaces, each on its own loopback UDP port.
func startSNMPSims(ctx context.Context, devices, ifaces int) (*snmpSims, error) {
	recs, err := recording.ReadSNMPRec(strings.NewReader(ifMIBRecording(ifaces)), "bench.snmprec")
	if err != nil {
		return nil, fmt.Errorf("bench recording: %w", err)
	}
	mib, err := snmpagent.NewMIB(recs)
	if err != nil {
		return nil, fmt.Errorf("bench recording: %w", err)
	}
	s := &snmpSims{sim: snmpagent.NewSimulator(nil)}
	for i := range devices {
		d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: fmt.Sprintf("snmp-%04d", i+1), Community: "public", Rate: 125_000})
		if err != nil {
			return nil, fmt.Errorf("simulated device: %w", err)
		}
		if err := s.sim.Add(d, "127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	if err := s.sim.Start(ctx); err != nil {
		return nil, err
	}
	for _, ep := range s.sim.Endpoints() {
		s.endpoints = append(s.endpoints, endpoint{name: ep.Device.Name(), addr: ep.Addr})
	}
	return s, nil
}

// requests returns the SNMP requests the devices received.
func (s *snmpSims) requests() int64 {
	var n int64
	for _, ep := range s.sim.Endpoints() {
		n += int64(ep.Device.Stats().Requests)
	}
	return n
}

func (s *snmpSims) stop(ctx context.Context) error { return s.sim.Stop(ctx) }

// gnmiSims are the simulated gNMI targets of a run.
type gnmiSims struct {
	servers   []*gnmitarget.Server
	endpoints []endpoint
}

// startGNMISims starts n simulated IOS-XR targets publishing every leaf
// every interval.
func startGNMISims(ctx context.Context, n int, interval time.Duration) (*gnmiSims, error) {
	g := &gnmiSims{}
	for i := range n {
		name := fmt.Sprintf("xr-%04d", i+1)
		s, err := gnmitarget.New(gnmitarget.Options{Listen: "127.0.0.1:0", Name: name, Platform: "iosxr", Interval: interval}, nil)
		if err == nil {
			err = s.Start(ctx)
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("gnmi simulator %s: %w", name, err), g.stop(context.Background()))
		}
		g.servers = append(g.servers, s)
		g.endpoints = append(g.endpoints, endpoint{name: name, addr: s.Addr()})
	}
	return g, nil
}

// leaves is the number of leaves each target republishes every interval.
func (g *gnmiSims) leaves() int {
	if len(g.servers) == 0 {
		return 0
	}
	return g.servers[0].Leaves()
}

// responses returns the Subscribe responses the targets sent.
func (g *gnmiSims) responses() int64 {
	var n int64
	for _, s := range g.servers {
		n += s.Stats().Responses
	}
	return n
}

func (g *gnmiSims) stop(ctx context.Context) error {
	var errs []error
	for _, s := range g.servers {
		errs = append(errs, s.Stop(ctx))
	}
	return errors.Join(errs...)
}

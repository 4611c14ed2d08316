package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/recording"
)

func newSimSNMPCmd() *cobra.Command {
	var (
		recordings  []string
		listen      string
		copies      int
		community   string
		user        snmpagent.User
		rate        float64
		wrap32      bool
		rebootEvery time.Duration
		maxMsg      int
		scenarioArg string
		speed       float64
		trapsTo     string
		trapsV3     bool
		strict      bool
	)
	cmd := &cobra.Command{
		Use:   "snmp --recording FILE [--recording FILE ...] --listen ADDR",
		Short: "Serve snmprec recordings as SNMP agents (v2c and v3)",
		Long: `Serve snmprec recordings as simulated SNMP agents on UDP.

Every device gets its own port: the first device listens on --listen, the
next on the following port, and so on (with port 0 every device gets a
random port). --devices N serves N copies of each recording (named
RECORDING-0001 ...). One line per device, "NAME ADDRESS", is printed once
all are listening.

Each device's clock starts when it is created, just before the devices
listen: from then on the IF-MIB counters of every interface that carries
traffic (ifAdminStatus and ifOperStatus up, a speed in ifHighSpeed or
ifSpeed, not a softwareLoopback or "system" interface) advance from their
recorded values: octets by --rate per second in each direction, unicast
packets by --rate / 800, multicast and broadcast packets by 1% and 0.1% of
that. A read t seconds after the start returns the recording plus t times
those rates: counters count from the device's start, not from the first
read, so the first read equals the recording only with --rate 0 (and no
scenario, whose baseline replaces these rates). Error, discard and unknown-protocol counters, counters of
other interfaces and counters outside ifTable/ifXTable stay at their
recorded values unless a scenario raises them; gauges (CPU, temperature,
optical power) are served as recorded; sysUpTime follows the clock.
--wrap32 narrows Counter64 to 32 bits; --reboot-every D restarts sysUpTime
and every counter at each multiple of D.

--scenario FILE scripts incidents on named interfaces: congestion, error
bursts, link down (the YAML format is in docs/demo.md); --scenario-speed N
plays its timeline N times faster. Every device served gets the scenario,
so its interfaces must exist in every recording.

--traps-to HOST:PORT sends an IF-MIB linkDown or linkUp notification
(sysUpTime.0, snmpTrapOID.0, ifIndex, ifAdminStatus, ifOperStatus) from the
device's own port whenever the scenario takes an interface down or up: an
SNMPv2c trap with --community, or with --traps-v3 an SNMPv3 trap as
--v3-user.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(recordings) == 0 {
				return fmt.Errorf("at least one --recording is required")
			}
			if copies < 1 {
				return fmt.Errorf("--devices must be at least 1")
			}
			host, portText, err := net.SplitHostPort(listen)
			if err != nil {
				return fmt.Errorf("--listen %q: %w", listen, err)
			}
			port, err := strconv.Atoi(portText)
			if err != nil {
				return fmt.Errorf("--listen %q: bad port", listen)
			}
			sc, err := loadScenario(scenarioArg, speed)
			if err != nil {
				return err
			}
			var users []snmpagent.User
			if user.Name != "" {
				users = append(users, user)
			}
			trapUser := ""
			if trapsV3 {
				if user.Name == "" || trapsTo == "" {
					return fmt.Errorf("--traps-v3 needs --traps-to and --v3-user")
				}
				trapUser = user.Name
			}
			if rate < 0 {
				return fmt.Errorf("--rate must not be negative, got %v", rate)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			sim := snmpagent.NewSimulator(log)
			n := 0
			for _, path := range recordings {
				mib, err := loadMIB(path, strict, log)
				if err != nil {
					return err
				}
				base := strings.TrimSuffix(filepath.Base(path), ".snmprec")
				for i := range copies {
					name := base
					if copies > 1 {
						name = fmt.Sprintf("%s-%04d", base, i+1)
					}
					d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: name, Community: community,
						Users: users, Rate: rate, Wrap32: wrap32, RebootEvery: rebootEvery, MaxMessageSize: maxMsg, Scenario: sc,
						TrapsTo: trapsTo, TrapUser: trapUser})
					if err != nil {
						return err
					}
					p := port
					if port != 0 {
						p = port + n
					}
					if err := sim.Add(d, net.JoinHostPort(host, strconv.Itoa(p))); err != nil {
						return err
					}
					n++
				}
			}
			ctx := cmd.Context()
			if err := sim.Start(ctx); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, ep := range sim.Endpoints() {
				fmt.Fprintf(out, "%s %s\n", ep.Device.Name(), ep.Addr)
			}
			<-ctx.Done()
			return sim.Stop(context.WithoutCancel(ctx))
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&recordings, "recording", nil, "snmprec file to serve (repeatable)")
	f.StringVar(&listen, "listen", "127.0.0.1:1161", "UDP address of the first device; later devices use the following ports (port 0: random ports)")
	f.IntVar(&copies, "devices", 1, "copies of each recording to serve")
	f.StringVar(&community, "community", "public", "v2c community (empty disables v2c)")
	f.StringVar(&user.Name, "v3-user", "", "SNMPv3 user name (enables v3)")
	f.StringVar(&user.AuthProtocol, "v3-auth", "", "v3 authentication protocol: MD5, SHA, SHA224, SHA256, SHA384, SHA512")
	f.StringVar(&user.AuthKey, "v3-auth-key", "", "v3 authentication passphrase")
	f.StringVar(&user.PrivProtocol, "v3-priv", "", "v3 privacy protocol: DES, AES, AES192, AES256")
	f.StringVar(&user.PrivKey, "v3-priv-key", "", "v3 privacy passphrase")
	f.Float64Var(&rate, "rate", 125000, "octets per second in each direction of every interface that carries traffic (packets follow at 800 bytes each; errors and discards stay)")
	f.BoolVar(&wrap32, "wrap32", false, "wrap Counter64 counters at 2^32")
	f.DurationVar(&rebootEvery, "reboot-every", 0, "simulate a reboot at this period (0: never)")
	f.IntVar(&maxMsg, "max-message-size", 65000, "largest response in bytes")
	f.StringVar(&scenarioArg, "scenario", "", "scenario file: congestion, errors and link faults on named interfaces over time (docs/demo.md)")
	f.Float64Var(&speed, "scenario-speed", 1, "play the scenario's timeline this many times faster")
	f.StringVar(&trapsTo, "traps-to", "", "send linkDown/linkUp traps to this HOST:PORT when the scenario changes a link")
	f.BoolVar(&trapsV3, "traps-v3", false, "send the traps as SNMPv3 from --v3-user instead of v2c with --community")
	f.BoolVar(&strict, "strict", false, "refuse a recording at the first value that cannot be parsed, instead of serving the rest and logging what was skipped")
	return cmd
}

// loadScenario reads a scenario file and speeds it up; no file, no
// scenario.
func loadScenario(path string, speed float64) (*scenario.Scenario, error) {
	if speed <= 0 {
		return nil, fmt.Errorf("--scenario-speed must be positive, got %v", speed)
	}
	if path == "" {
		return nil, nil
	}
	sc, err := scenario.Load(path)
	if err != nil {
		return nil, err
	}
	return sc.Faster(speed), nil
}

// loadMIB reads a recording for the simulator. Unless strict, a value that
// cannot be parsed is left out of the device and logged once per kind, as
// a real agent's one bad object would not stop the rest of its MIB.
func loadMIB(path string, strict bool, log *slog.Logger) (*snmpagent.MIB, error) {
	recs, skipped, err := recording.ReadSNMPRecFileWith(path, recording.ReadOptions{Strict: strict})
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		log.Warn("recording: values skipped", "at", s.First, "kind", s.Kind, "count", s.Count, "first_err", s.Err)
	}
	mib, err := snmpagent.NewMIB(recs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return mib, nil
}

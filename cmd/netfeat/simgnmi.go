package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
)

func newSimGNMICmd() *cobra.Command {
	var (
		o           gnmitarget.Options
		tlsOn       bool
		certDir     string
		glogFile    bool
		scenarioArg string
		speed       float64
		caFile      string // the generated CA, with --cert-dir
	)
	cmd := &cobra.Command{
		Use:   "gnmi",
		Short: "Serve a simulated Cisco gNMI target (IOS-XR, NX-OS or IOS-XE) built from real captures",
		Long: `Serve gNMI Capabilities and Subscribe (STREAM, ONCE, POLL) as a Cisco router
would, built on openconfig/gnmi's subscribe and cache packages. The device state
comes from real captures (embedded, or --recording FILE: an IOS-XR MDT JSON dump
or a JSON array of gNMI SubscribeResponses) plus OpenConfig trees derived from
them. The device's clock starts when the command starts listening, and the
first values published then are the recorded ones. From then on the
counters of every interface that carries traffic (recorded up, not a
loopback, Null or tunnel, a speed its name gives or a physical NX-OS port)
advance: octets by --rate per second in each direction, unicast packets by
--rate / 800, multicast and broadcast by 1% and 0.1% of that. Errors,
discards and other counters, CPU, temperature and memory stay as recorded
unless a scenario moves them. Every --interval all leaves are published
(SAMPLE streams and POLL see that step); oper-status changes are published
the moment they happen, stamped with that instant: ON_CHANGE subscriptions
(and TARGET_DEFINED ones, for oper-status and admin-status) get the
current value once and then only changes.

Faults: --drop-after N ends every stream after N responses, --delay D delays every
response, --malformed-every N corrupts every Nth notification after the initial
state (empty path element, unknown origin, wrong value type, missing value).

--scenario FILE scripts incidents on named interfaces: congestion, error
bursts, link down (the YAML format is in docs/demo.md); --scenario-speed N
plays its timeline N times faster. Ethernet interfaces serve
openconfig-if-ethernet port-speed (from their names), which congestion needs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !glogFile {
				// openconfig's packages log through glog: to stderr, not to
				// files under $TMPDIR.
				_ = flag.Set("logtostderr", "true")
			}
			if tlsOn && o.CertFile == "" {
				if certDir == "" {
					return fmt.Errorf("--tls needs --cert-file/--key-file or --cert-dir")
				}
				if err := os.MkdirAll(certDir, 0o755); err != nil {
					return fmt.Errorf("--cert-dir: %w", err)
				}
				files, err := gnmitarget.WriteLabCerts(certDir)
				if err != nil {
					return err
				}
				o.CertFile, o.KeyFile = files.ServerCert, files.ServerKey
				caFile = files.CA
				fmt.Fprintf(cmd.ErrOrStderr(), "# TLS: CA %s, client certificate %s (key %s)\n",
					files.CA, files.ClientCert, files.ClientKey)
			}
			if o.Rate <= 0 {
				return fmt.Errorf("--rate must be positive, got %v (for values that stay as recorded, use a long --interval)", o.Rate)
			}
			sc, err := loadScenario(scenarioArg, speed)
			if err != nil {
				return err
			}
			o.Scenario = sc
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			s, err := gnmitarget.New(o, log)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := s.Start(ctx); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "gnmi simulator listening on %s (%s, %d leaves)\n", s.Addr(), o.Platform, s.Leaves())
			fmt.Fprintf(cmd.OutOrStdout(), "# %s\n", probeHint(s.Addr(), o, caFile))
			<-ctx.Done()
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st := s.Stats()
			fmt.Fprintf(cmd.ErrOrStderr(), "# streams %d, responses %d, dropped %d, malformed %d\n", st.Streams, st.Responses, st.Dropped, st.Malformed)
			return s.Stop(stopCtx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:57400", "address to serve on")
	f.StringVar(&o.Name, "target", "sim", "gNMI target name")
	f.StringVar(&o.Platform, "platform", "iosxr", "simulated platform: iosxr, nxos or iosxe")
	f.StringVar(&o.Recording, "recording", "", "replay this capture instead of the embedded ones")
	f.DurationVar(&o.Interval, "interval", time.Second, "how often every leaf is published (SAMPLE and POLL)")
	f.Float64Var(&o.Rate, "rate", gnmitarget.DefaultRate, "octets per second in each direction of every interface that carries traffic (packets follow at 800 bytes each; errors and discards stay)")
	f.BoolVar(&tlsOn, "tls", false, "serve TLS (with --cert-file/--key-file, or a CA and certificates generated into --cert-dir); the default is plaintext, which netfeat probe gnmi uses by default on loopback")
	f.StringVar(&certDir, "cert-dir", "", "with --tls: write a self-signed CA, server and client certificates here")
	f.StringVar(&o.CertFile, "cert-file", "", "server certificate (PEM); implies TLS")
	f.StringVar(&o.KeyFile, "key-file", "", "server private key (PEM)")
	f.StringVar(&o.ClientCAFile, "client-ca-file", "", "require client certificates signed by this CA (mTLS)")
	f.StringVar(&o.Username, "username", "", "require this username (gRPC metadata)")
	f.StringVar(&o.Password, "password", "", "require this password (gRPC metadata)")
	f.IntVar(&o.Faults.DropAfter, "drop-after", 0, "fault: end every stream with UNAVAILABLE after N responses")
	f.DurationVar(&o.Faults.Delay, "delay", 0, "fault: delay every response by this long")
	f.DurationVar(&o.Faults.ClockOffset, "clock-offset", 0, "fault: stamp notifications this far from the real clock (a device with a wrong clock; e.g. 1000000h)")
	f.IntVar(&o.Faults.MalformedEvery, "malformed-every", 0, "fault: corrupt every Nth notification after the initial state")
	f.BoolVar(&glogFile, "glog-files", false, "leave openconfig's glog logging to files under $TMPDIR")
	f.StringVar(&scenarioArg, "scenario", "", "scenario file: congestion, errors and link faults on named interfaces over time (docs/demo.md)")
	f.Float64Var(&speed, "scenario-speed", 1, "play the scenario's timeline this many times faster")
	return cmd
}

// probeHint says how netfeat probe gnmi reaches the simulator: plaintext
// by default (the probe's default too on loopback), or TLS trusting the
// CA that signed the server's certificate.
func probeHint(addr string, o gnmitarget.Options, caFile string) string {
	if o.CertFile == "" {
		return "plaintext gRPC; probe with: netfeat probe gnmi " + addr + " (add --insecure for a non-loopback address)"
	}
	trust := "--ca-file <the CA that signed " + o.CertFile + ">"
	if caFile != "" {
		trust = "--ca-file " + caFile
	}
	return "TLS; probe with: netfeat probe gnmi " + addr + " --tls " + trust
}

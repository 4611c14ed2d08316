package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/schema"
)

// probeGNMIPasswordEnv carries a password given with --password to the
// collector configuration, which reads secrets from files or the
// environment only.
const probeGNMIPasswordEnv = "NETFEAT_PROBE_GNMI_PASSWORD"

func newProbeGNMICmd() *cobra.Command {
	var (
		t                 gnmi.Target
		paths             []string
		password, format  string
		profilesDir       string
		raw               bool
		timeout, duration time.Duration
		useTLS            bool
	)
	cmd := &cobra.Command{
		Use:   "gnmi ADDR",
		Short: "Subscribe to a Cisco gNMI target with its platform's paths and print the normalized samples",
		Long: `Connect to a gNMI target, check its Capabilities,
subscribe with the platform's shipped subscription set (or --path ...) and print
the samples the normalizer makes of the updates: a table by default, JSON lines
with --format jsonl, or the raw observations with --raw.

TLS is used unless --insecure, except to a loopback address (127.0.0.1, ::1,
localhost) without --tls or a TLS flag, which gets plaintext as netfeat sim
gnmi serves it by default. A TLS/plaintext mismatch fails at once with which
one to use.

--mode once prints the initial state and exits; --mode stream prints every
--sample-interval until interrupted or --duration has passed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := checkFormat(format); err != nil {
				return err
			}
			if t.Mode != gnmi.ModeOnce && t.Mode != gnmi.ModeStream {
				return fmt.Errorf("--mode must be once or stream, got %q", t.Mode)
			}
			if useTLS && t.Insecure {
				return errors.New("--tls and --insecure exclude each other")
			}
			t.Address = args[0]
			if !useTLS && !t.Insecure && t.TLS == (gnmi.TLSConfig{}) && isLoopback(t.Address) {
				// netfeat sim gnmi serves plaintext on loopback by default:
				// so does the probe connect, unless TLS is asked for.
				t.Insecure = true
			}
			if t.Name == "" {
				t.Name = args[0]
			}
			if password != "" {
				os.Setenv(probeGNMIPasswordEnv, password)
				t.PasswordEnv = probeGNMIPasswordEnv
			}
			for _, p := range paths {
				t.Subscriptions = append(t.Subscriptions, gnmi.Subscription{Path: p})
			}
			if t.Mode == gnmi.ModeOnce {
				t.PollInterval = time.Hour // one round; the probe stops after it
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			pr := newPrinter(cmd.OutOrStdout(), format, probeGNMILayout)
			var sink schema.ObservationSink = schema.ObservationSinkFunc(pr.observations)
			if !raw {
				ncfg := normalize.Config{ProfilesDir: profilesDir}
				if t.Platform != "" {
					ncfg.Inventory = map[string]normalize.DeviceInfo{t.Name: {Profile: "cisco-" + t.Platform}}
				}
				n, err := normalize.New(ncfg, schema.SampleAppenderFunc(pr.samples), nil, log)
				if err != nil {
					return fmt.Errorf("normalizer: %w", err)
				}
				sink = n
			}
			c, err := gnmi.New(gnmi.Config{Targets: []gnmi.Target{t}, Timeout: timeout,
				RedialMin: 500 * time.Millisecond, RedialMax: 2 * time.Second}, sink, nil, log)
			if err != nil {
				return err
			}
			if err := c.Start(ctx); err != nil {
				return err
			}
			stop := func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = c.Stop(sctx)
			}
			if err := waitSynced(ctx, c, timeout); err != nil {
				stop()
				return &exitError{code: 1, err: err}
			}
			if t.Mode == gnmi.ModeOnce {
				stop()
				_, err := pr.flush()
				printState(cmd, c)
				return err
			}
			var end <-chan time.Time
			if duration > 0 {
				end = time.After(duration)
			}
			tick := time.NewTicker(t.SampleInterval)
			defer tick.Stop()
			for {
				if _, err := pr.flush(); err != nil {
					stop()
					return err
				}
				select {
				case <-ctx.Done():
				case <-end:
				case <-tick.C:
					continue
				}
				stop()
				_, err := pr.flush()
				printState(cmd, c)
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&t.Name, "name", "", "device name to report (default: ADDR)")
	f.StringVar(&t.Platform, "platform", gnmi.PlatformIOSXR, "iosxr, nxos or iosxe: chooses the subscription set and profile")
	f.StringArrayVar(&paths, "path", nil, "subscribe to this path instead of the platform set (repeatable), e.g. openconfig-interfaces:interfaces")
	f.StringVar(&t.Mode, "mode", gnmi.ModeOnce, "once or stream")
	f.StringVar(&t.Encoding, "encoding", gnmi.EncodingJSONIETF, "json_ietf, json or proto")
	f.DurationVar(&t.SampleInterval, "sample-interval", 10*time.Second, "stream: sample interval asked of the target, and how often output is printed")
	f.DurationVar(&duration, "duration", 0, "stream: stop after this long (0: until interrupted)")
	f.DurationVar(&timeout, "timeout", 15*time.Second, "time allowed to connect and receive the initial state")
	f.BoolVar(&useTLS, "tls", false, "use TLS (the default, except to a loopback address without TLS flags)")
	f.BoolVar(&t.Insecure, "insecure", false, "connect without TLS")
	f.StringVar(&t.TLS.CAFile, "ca-file", "", "CA certificate that signed the target's certificate")
	f.StringVar(&t.TLS.CertFile, "cert-file", "", "client certificate for mTLS")
	f.StringVar(&t.TLS.KeyFile, "key-file", "", "client key for mTLS")
	f.StringVar(&t.TLS.ServerName, "server-name", "", "name to verify in the target's certificate")
	f.BoolVar(&t.TLS.SkipVerify, "skip-verify", false, "do not verify the target's certificate (lab only)")
	f.StringVar(&t.Username, "username", "", "username (gRPC metadata)")
	f.StringVar(&password, "password", "", "password (prefer --password-file or --password-env)")
	f.StringVar(&t.PasswordFile, "password-file", "", "file holding the password")
	f.StringVar(&t.PasswordEnv, "password-env", "", "environment variable holding the password")
	f.StringVar(&t.GNMITarget, "gnmi-target", "", "target name to put in the request prefix")
	f.StringVar(&format, "format", "table", "output: table or jsonl")
	f.BoolVar(&raw, "raw", false, "print raw observations instead of normalized samples")
	f.StringVar(&profilesDir, "profiles-dir", "", "directory of extra vendor profiles")
	return cmd
}

func printState(cmd *cobra.Command, c *gnmi.Collector) {
	st := c.DeviceStates()[0]
	fmt.Fprintf(cmd.ErrOrStderr(), "# %s: state %s, profile %q, %d observations, %d errors, initial sync %.1f ms\n",
		st.Device, st.State, st.Profile, st.Observations, st.Errors, st.LastDurationMS)
}

// waitSynced waits until the target has sent its initial state, for at
// most timeout. A TLS/plaintext mismatch or a refused connection ends the
// wait at once: retrying would not help a probe, and the error says what
// to check.
func waitSynced(ctx context.Context, c *gnmi.Collector, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.WaitSynced(ctx) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err == nil {
				return nil
			}
			st := c.DeviceStates()[0]
			return fmt.Errorf("%s did not complete its initial state: state %s, last error: %s", st.Device, st.State, st.LastError)
		case <-tick.C:
			st := c.DeviceStates()[0]
			if gnmi.IsTLSMismatch(st.LastError) {
				cancel()
				<-done
				return fmt.Errorf("%s: %s", st.Device, st.LastError)
			}
			if strings.Contains(st.LastError, "connection refused") {
				cancel()
				<-done
				return fmt.Errorf("%s: nothing listens at %s (connection refused): check the address and port, and that gNMI is enabled on the device: %s",
					st.Device, st.Address, st.LastError)
			}
		}
	}
}

// isLoopback reports whether a host:port address names the local host.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

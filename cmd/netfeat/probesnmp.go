package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/schema"
)

// Environment variables through which the probe hands passphrases given
// on its command line to the SNMP configuration (which reads secrets from
// files or the environment only).
const (
	probeAuthEnv = "NETFEAT_PROBE_SNMP_AUTH_KEY"
	probePrivEnv = "NETFEAT_PROBE_SNMP_PRIV_KEY"
)

func newProbeSNMPCmd() *cobra.Command {
	var (
		name, community, version, format, profilesDir string
		v3                                            snmp.V3
		authKey, privKey                              string
		interval, timeout                             time.Duration
		retries, maxRep                               int
		raw                                           bool
	)
	cmd := &cobra.Command{
		Use:   "snmp ADDR",
		Short: "Identify an SNMP device, poll it and print the normalized samples",
		Long: `Identify an SNMP device (sysObjectID, sysDescr), choose its profile, poll
exactly what the profile needs and print the normalized samples: a table by
default, JSON lines with --format jsonl, or the raw observations with --raw.
Polls once, or every --interval until interrupted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := checkFormat(format); err != nil {
				return err
			}
			cfg := snmp.DefaultConfig()
			t := snmp.Target{Name: name, Address: args[0]}
			if t.Name == "" {
				t.Name = args[0]
			}
			t.Community, t.Timeout, t.Retries, t.MaxRepetitions = community, timeout, &retries, maxRep
			if v3.User != "" && version == "" {
				version = "3"
			}
			t.Version = version
			if version == "3" {
				if authKey != "" {
					os.Setenv(probeAuthEnv, authKey)
					v3.AuthPasswordEnv = probeAuthEnv
				}
				if privKey != "" {
					os.Setenv(probePrivEnv, privKey)
					v3.PrivPasswordEnv = probePrivEnv
				}
				t.V3, t.Community = &v3, ""
			}
			if interval > 0 {
				t.Interval = interval
			}
			cfg.Targets = []snmp.Target{t}
			out := cmd.OutOrStdout()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))

			pr := newPrinter(out, format, probeSNMPLayout)
			var (
				sink    schema.ObservationSink
				planner snmp.Planner
			)
			if raw {
				sink = schema.ObservationSinkFunc(pr.observations)
				planner = snmp.IFMIBPlan
			} else {
				n, err := normalize.New(normalize.Config{ProfilesDir: profilesDir}, schema.SampleAppenderFunc(pr.samples), nil, log)
				if err != nil {
					return fmt.Errorf("normalizer: %w", err)
				}
				sink, planner = n, n
			}
			// The probe reports a failed poll itself, once: the
			// collector's own warning would repeat it.
			p, err := snmp.New(cfg, planner, sink, nil, slog.New(dropMessages(log.Handler(), "snmp poll failed")))
			if err != nil {
				return err
			}
			for {
				err := p.PollOnce(ctx)
				if _, werr := pr.flush(); werr != nil {
					return werr
				}
				st := p.DeviceStates()[0]
				fmt.Fprintf(cmd.ErrOrStderr(), "# %s: state %s, profile %q, %d observations, %.1f ms\n",
					st.Device, st.State, st.Profile, st.Observations, st.LastDurationMS)
				if err != nil && interval == 0 {
					return &exitError{code: 1, err: err}
				}
				if interval == 0 {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "device name to report (default: ADDR)")
	f.StringVar(&version, "version", "", "SNMP version: 2c or 3 (default 2c, or 3 with --v3-user)")
	f.StringVar(&community, "community", "public", "v2c community")
	f.StringVar(&v3.User, "v3-user", "", "SNMPv3 user")
	f.StringVar(&v3.AuthProtocol, "v3-auth", "", "v3 authentication protocol: MD5, SHA, SHA224, SHA256, SHA384, SHA512")
	f.StringVar(&authKey, "v3-auth-key", "", "v3 authentication passphrase (or --v3-auth-key-file / --v3-auth-key-env)")
	f.StringVar(&v3.AuthPasswordFile, "v3-auth-key-file", "", "file holding the v3 authentication passphrase")
	f.StringVar(&v3.AuthPasswordEnv, "v3-auth-key-env", "", "environment variable holding the v3 authentication passphrase")
	f.StringVar(&v3.PrivProtocol, "v3-priv", "", "v3 privacy protocol: DES, AES, AES192, AES256")
	f.StringVar(&privKey, "v3-priv-key", "", "v3 privacy passphrase (or --v3-priv-key-file / --v3-priv-key-env)")
	f.StringVar(&v3.PrivPasswordFile, "v3-priv-key-file", "", "file holding the v3 privacy passphrase")
	f.StringVar(&v3.PrivPasswordEnv, "v3-priv-key-env", "", "environment variable holding the v3 privacy passphrase")
	f.StringVar(&v3.ContextName, "v3-context", "", "v3 context name")
	f.DurationVar(&interval, "interval", 0, "poll every interval until interrupted (0: once)")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "timeout of one request")
	f.IntVar(&retries, "retries", 1, "retries of one request")
	f.IntVar(&maxRep, "max-repetitions", 25, "GETBULK max-repetitions")
	f.StringVar(&format, "format", "table", "output: table or jsonl")
	f.BoolVar(&raw, "raw", false, "print raw observations (IF-MIB plan, no normalizer)")
	f.StringVar(&profilesDir, "profiles-dir", "", "directory of extra vendor profiles")
	return cmd
}

// dropMessages returns a handler that passes every record to h except those
// whose message is one of msgs.
func dropMessages(h slog.Handler, msgs ...string) slog.Handler {
	return &dropHandler{Handler: h, drop: msgs}
}

type dropHandler struct {
	slog.Handler
	drop []string
}

func (d *dropHandler) Handle(ctx context.Context, r slog.Record) error {
	if slices.Contains(d.drop, r.Message) {
		return nil
	}
	return d.Handler.Handle(ctx, r)
}

func (d *dropHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &dropHandler{Handler: d.Handler.WithAttrs(attrs), drop: d.drop}
}

func (d *dropHandler) WithGroup(name string) slog.Handler {
	return &dropHandler{Handler: d.Handler.WithGroup(name), drop: d.drop}
}

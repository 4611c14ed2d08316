package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/inference/watch"
)

func newWatchCmd() *cobra.Command {
	var (
		url   string
		creds string
		o     watch.Options
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Show decisions live as they are published on NATS",
		Long: `Subscribe to netfeat.decisions.<model>.<device> and print each decision as an
aligned line: time, model@version, entity, score, action, lifecycle state
("→firing" on a transition), trigger-to-decision latency and the reason (with
the fallback, when one decided, and the missing inputs, when there were).
When the NATS server goes away, or is not up yet when watch starts, watch
says so on stderr, tries again every second and says when it watches.
Stops on Ctrl-C.`,
		Example: `  netfeat watch
  netfeat watch --model congestion --device pe1.lab --actions-only
  netfeat watch --transitions
  netfeat watch --nats nats://10.0.0.5:4222 --json | jq .score`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			// say writes a connection notice, until the command ends: the
			// client calls its handlers on its own goroutine, and also
			// when it is closed at the end.
			var (
				sayMu sync.Mutex
				ended bool
			)
			say := func(format string, args ...any) {
				sayMu.Lock()
				defer sayMu.Unlock()
				if !ended {
					fmt.Fprintf(stderr, format, args...)
				}
			}
			opts := []nats.Option{nats.Name("netfeat watch"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
				// Called once, at the first connection (at once, or
				// after waiting for a server below).
				nats.ConnectHandler(func(nc *nats.Conn) {
					say("connected to NATS at %s; watching %s\n", nc.ConnectedUrlRedacted(), o.Subject())
				}),
				// Say when the server goes away and comes back, on
				// stderr (stdout may be --json for a pipe): the
				// subscription resumes by itself, but silence would
				// look like no decisions.
				nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
					why := ""
					if err != nil {
						why = ": " + err.Error()
					}
					say("lost the connection to NATS at %s%s; reconnecting every %v\n", url, why, time.Second)
				}),
				nats.ReconnectHandler(func(nc *nats.Conn) {
					say("reconnected to NATS at %s; watching again\n", nc.ConnectedUrlRedacted())
				}),
			}
			if creds != "" {
				opts = append(opts, nats.UserCredentials(creds))
			}
			nc, err := nats.Connect(url, opts...)
			if errors.Is(err, nats.ErrNoServers) {
				// No server up yet (watch started first, or the service
				// restarting): wait for one. Any other failure (refused
				// credentials, a TLS error) is the user's to fix.
				say("no NATS server answers at %s yet; trying every %v (Ctrl-C to stop)\n", url, time.Second)
				nc, err = nats.Connect(url, append(opts, nats.RetryOnFailedConnect(true))...)
			}
			if err != nil {
				return fmt.Errorf("connect to NATS at %s: %w", url, err)
			}
			defer nc.Close()
			defer func() { // before Close: its disconnect is not news
				sayMu.Lock()
				ended = true
				sayMu.Unlock()
			}()
			return watch.Run(cmd.Context(), nc, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "nats", nats.DefaultURL, "NATS server URL")
	f.StringVar(&creds, "creds", "", "NATS credentials file")
	f.StringVar(&o.Model, "model", "", "only this model")
	f.StringVar(&o.Device, "device", "", "only this device")
	f.BoolVar(&o.ActionsOnly, "actions-only", false, `hide decisions whose action is "none"`)
	f.BoolVar(&o.Transitions, "transitions", false, "show only decisions that move an action's lifecycle (pending, firing, resolved, inactive)")
	f.BoolVar(&o.JSON, "json", false, "print the decision documents as received, one per line")
	f.IntVar(&o.Count, "count", 0, "exit after this many decisions (0: run until interrupted)")
	f.BoolVar(&o.UTC, "utc", false, "print times in UTC")
	return cmd
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/netfeat/netfeat/internal/apiclient"
	"github.com/netfeat/netfeat/service"
)

func newTargetsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "targets",
		Short: "List, add and remove the SNMP and gNMI targets of a running server",
		Long: `List, add, change and remove the targets (devices) of a running netfeat
without restarting it (GET, POST /v1/targets, DELETE /v1/targets/NAME).

Added targets are written to the server's targets_file, so that a restart
keeps them; a server without targets_file keeps them in memory only, and says
so. Targets of the configuration file itself are listed with origin "config"
and change only there, with a restart.`,
	}
	cmd.AddCommand(newTargetsListCmd(), newTargetsAddCmd(), newTargetsRemoveCmd())
	return cmd
}

func newTargetsListCmd() *cobra.Command {
	var cf queryClientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the server's targets with their origin and state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := cf.client().Client
			req, err := c.NewRequest(cmd.Context(), http.MethodGet, "/v1/targets", nil)
			if err != nil {
				return err
			}
			var list service.TargetsList
			if err := doJSON(&c, req, &list); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPROTOCOL\tADDRESS\tORIGIN\tSTATE")
			for _, t := range list.Targets {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Protocol, t.Address, t.Origin, t.State)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(list.Targets) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no targets: add one with `netfeat targets add NAME ADDRESS`")
			}
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

// targetAddFlags are the settings `targets add` takes without -f.
type targetAddFlags struct {
	gnmi      bool
	file      string
	version   string
	community string
	interval  time.Duration
	platform  string
	profile   string
	insecure  bool
	username  string
}

func newTargetsAddCmd() *cobra.Command {
	var (
		cf queryClientFlags
		f  targetAddFlags
	)
	cmd := &cobra.Command{
		Use:   "add NAME ADDRESS | add -f FILE",
		Short: "Add a target to the server, or change the one of that name",
		Long: `Add an SNMP target (the default) or, with --gnmi, a gNMI target to the running
server; a target of the same name added before is replaced. -f reads the
target from a YAML (or JSON) file instead, under the key of its protocol,
with every key a target has in the configuration:

  snmp:
    name: r1
    address: 192.0.2.1:161
    community_file: /etc/netfeat/community

A refused target is reported as config check reports a configuration, with
the line of the file (or the flag's key) and the reason.`,
		Example: `  netfeat targets add r1 192.0.2.1 --community-file /etc/netfeat/community
  netfeat targets add xr1 192.0.2.10:57400 --gnmi --platform iosxr
  netfeat targets add r2 192.0.2.2 --profile nokia-sros
  netfeat targets add -f r1.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			body, name, err := f.body(args)
			if err != nil {
				return err
			}
			c := cf.client().Client
			req, err := c.NewRequest(cmd.Context(), http.MethodPost, "/v1/targets", bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/yaml")
			var ch service.TargetChange
			if err := doJSON(&c, req, &ch); err != nil {
				if pe, ok := err.(*problemsError); ok {
					for _, p := range pe.problems {
						fmt.Fprintln(cmd.OutOrStdout(), problem(p).render(name))
					}
					return &exitError{code: 1, err: fmt.Errorf("target refused: %d problem(s)", len(pe.problems))}
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s %s target (%s)\n", ch.Name, opWord(ch.Op), ch.Protocol, ch.Note)
			return nil
		},
	}
	cf.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "read the target from this YAML or JSON file")
	fl.BoolVar(&f.gnmi, "gnmi", false, "a gNMI target (default SNMP)")
	fl.StringVar(&f.version, "version", "", "SNMP version, 2c or 3 (default from the server's snmp.defaults)")
	fl.StringVar(&f.community, "community-file", "", "SNMP: file holding the v2c community, on the server")
	fl.DurationVar(&f.interval, "interval", 0, "SNMP: poll interval (default from the server's snmp.defaults)")
	fl.StringVar(&f.platform, "platform", "", "gNMI: iosxr, nxos or iosxe")
	fl.StringVar(&f.profile, "profile", "", "force this normalizer profile for the device (default: matched from what it sends)")
	fl.BoolVar(&f.insecure, "insecure", false, "gNMI: connect without TLS")
	fl.StringVar(&f.username, "username", "", "gNMI: user name")
	return cmd
}

// body returns the POST body and the name problems are reported under.
func (f *targetAddFlags) body(args []string) ([]byte, string, error) {
	if f.file != "" {
		if len(args) > 0 {
			return nil, "", fmt.Errorf("give -f FILE or NAME ADDRESS, not both")
		}
		b, err := os.ReadFile(f.file)
		if err != nil {
			return nil, "", fmt.Errorf("read target: %w", err)
		}
		return b, f.file, nil
	}
	if len(args) != 2 {
		return nil, "", fmt.Errorf("want NAME ADDRESS (or -f FILE)")
	}
	t := map[string]any{"name": args[0], "address": args[1]}
	set(t, "profile", f.profile)
	proto := "snmp"
	if f.gnmi {
		proto = "gnmi"
		set(t, "platform", f.platform)
		set(t, "username", f.username)
		if f.insecure {
			t["insecure"] = true
		}
	} else {
		set(t, "version", f.version)
		set(t, "community_file", f.community)
		if f.interval > 0 {
			t["interval"] = f.interval.String()
		}
	}
	b, err := yaml.Marshal(map[string]any{proto: t})
	return b, "", err
}

func set(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func opWord(op string) string {
	switch op {
	case "add":
		return "added"
	case "change":
		return "changed"
	case "remove":
		return "removed"
	}
	return op
}

func newTargetsRemoveCmd() *cobra.Command {
	var cf queryClientFlags
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a target added at run time (targets file or API)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cf.client().Client
			req, err := c.NewRequest(cmd.Context(), http.MethodDelete, "/v1/targets/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			var ch service.TargetChange
			if err := doJSON(&c, req, &ch); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: removed %s target (%s)\n", ch.Name, ch.Protocol, ch.Note)
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

// problemsError is a target the server refused, with its problems.
type problemsError struct{ problems []service.TargetProblem }

func (e *problemsError) Error() string { return fmt.Sprintf("%d problem(s)", len(e.problems)) }

// problem renders a problem as config check does: "file:line: key: msg",
// without the file and line for a target given by flags.
type problem service.TargetProblem

func (p problem) render(file string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// doJSON sends req and decodes the JSON answer into v. A 400 with the
// target's problems is a *problemsError; another failure apiclient's.
func doJSON(c *apiclient.Client, req *http.Request, v any) error {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(req.Context(), time.Minute)
	defer cancel()
	resp, err := hc.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		return nil
	}
	var e struct {
		Error    string                  `json:"error"`
		Problems []service.TargetProblem `json:"problems"`
	}
	if json.Unmarshal(b, &e) == nil && len(e.Problems) > 0 {
		return &problemsError{problems: e.Problems}
	}
	msg := strings.TrimSpace(string(b))
	if e.Error != "" {
		msg = e.Error
	}
	return &apiclient.Error{Status: resp.StatusCode, StatusText: resp.Status, Message: msg}
}

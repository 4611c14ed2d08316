package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/cluster"
)

// clusterFlags are the connection flags of the cluster commands.
type clusterFlags struct {
	url     string
	creds   string
	bucket  string
	timeout time.Duration
}

func (f *clusterFlags) add(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.url, "nats", nats.DefaultURL, "NATS server URL of the site (comma-separated for a cluster)")
	fl.StringVar(&f.creds, "creds", "", "NATS credentials file")
	fl.StringVar(&f.bucket, "bucket", cluster.DefaultBucket, "the site's cluster KV bucket (cluster.bucket)")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on connecting and reading the bucket")
}

// open connects to NATS and opens the existing bucket; close ends the
// connection. It never creates the bucket: the nodes do, with their
// replica count.
func (f *clusterFlags) open(ctx context.Context, name string) (kv jetstream.KeyValue, closeFn func(), err error) {
	opts := []nats.Option{nats.Name(name), nats.Timeout(f.timeout)}
	if f.creds != "" {
		opts = append(opts, nats.UserCredentials(f.creds))
	}
	nc, err := nats.Connect(f.url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", f.url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("JetStream: %w", err)
	}
	kv, err = js.KeyValue(ctx, f.bucket)
	if err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, nil, fmt.Errorf("no cluster bucket %q on %s: no node with cluster.enabled has started there", f.bucket, nc.ConnectedUrlRedacted())
		}
		return nil, nil, fmt.Errorf("open bucket %s: %w", f.bucket, err)
	}
	return kv, nc.Close, nil
}

func newClusterCmd() *cobra.Command {
	var f clusterFlags
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show and steer the nodes of a site that share its targets",
		Long: `The nodes of a site with cluster.enabled share the site's targets through a
JetStream KV bucket (docs/cluster.md). These commands read and change that
bucket directly; they need no running node.`,
		Args: cobra.NoArgs,
	}
	f.add(cmd)
	cmd.AddCommand(newClusterStatusCmd(&f), newClusterDrainCmd(&f, true), newClusterDrainCmd(&f, false))
	return cmd
}

func newClusterStatusCmd(f *clusterFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the site's nodes, their leases and each target's owner",
		Long: `Print the nodes holding a lease (or drained), when each lease expires unless
renewed, how many targets each was given and owns, and every target's owner.
A target whose owner's lease is gone shows "(none)": it is unowned until a
live node takes it, within cluster.lease_ttl of the owner's death.`,
		Example: `  netfeat cluster status --nats nats://10.0.0.5:4222
  netfeat cluster status --json | jq '.targets[] | select(.valid | not)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			kv, closeFn, err := f.open(ctx, "netfeat cluster status")
			if err != nil {
				return err
			}
			defer closeFn()
			st, err := cluster.ReadStatus(ctx, kv)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return writeClusterStatus(cmd.OutOrStdout(), st, time.Now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as one JSON document")
	return cmd
}

func newClusterDrainCmd(f *clusterFlags, drain bool) *cobra.Command {
	use, short, long := "drain NODE", "Move every target off a node (before maintenance)",
		`Mark NODE as draining: it keeps its lease but is given no targets, so the
other nodes take its targets over, each polled at once by its new owner. It
stays drained, across restarts, until "netfeat cluster undrain NODE".`
	if !drain {
		use, short, long = "undrain NODE", "Let a drained node take targets again",
			`Clear NODE's drain mark: the assignment gives it its share of the targets again.`
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			kv, closeFn, err := f.open(ctx, "netfeat cluster "+cmd.Name())
			if err != nil {
				return err
			}
			defer closeFn()
			if err := cluster.Drain(ctx, kv, args[0], drain); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", args[0], map[bool]string{true: "draining", false: "undrained"}[drain])
			return nil
		},
	}
}

// writeClusterStatus prints the nodes and the targets as two tables.
func writeClusterStatus(w io.Writer, st cluster.Status, now time.Time) error {
	nodeCols := []column[cluster.NodeStatus]{
		{"NODE", func(n *cluster.NodeStatus) string { return n.Node }},
		{"STATE", func(n *cluster.NodeStatus) string {
			switch {
			case n.Alive && n.Draining:
				return "draining"
			case n.Alive:
				return "live"
			case n.Draining:
				return "drained, no lease"
			}
			return "no lease"
		}},
		{"LEASE EXPIRES", func(n *cluster.NodeStatus) string {
			if n.LeaseExpires.IsZero() {
				return "-"
			}
			return fmt.Sprintf("%s (in %s)", n.LeaseExpires.Local().Format(time.TimeOnly), n.LeaseExpires.Sub(now).Round(100*time.Millisecond))
		}},
		{"TARGETS", func(n *cluster.NodeStatus) string { return strconv.Itoa(n.Targets) }},
		{"OWNED", func(n *cluster.NodeStatus) string { return strconv.Itoa(n.Owned) }},
		{"LIST HASH", func(n *cluster.NodeStatus) string { return n.TargetsHash }},
		{"INCARNATION", func(n *cluster.NodeStatus) string { return n.Incarnation }},
	}
	targetCols := []column[cluster.TargetStatus]{
		{"TARGET", func(t *cluster.TargetStatus) string { return t.Target }},
		{"OWNER", func(t *cluster.TargetStatus) string {
			switch {
			case t.Valid:
				return t.Owner
			case t.Owner == "":
				return "(none: released)"
			}
			return "(none: " + t.Owner + "'s lease is gone)"
		}},
		{"SINCE", func(t *cluster.TargetStatus) string { return t.Since.Local().Format(time.DateTime) }},
		{"EPOCH", func(t *cluster.TargetStatus) string { return strconv.FormatUint(t.Epoch, 10) }},
	}
	if err := writeTable(w, nodeCols, st.Nodes, true); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return writeTable(w, targetCols, st.Targets, true)
}

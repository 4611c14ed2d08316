package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/recording"
	"github.com/netfeat/netfeat/schema"
)

func newNormalizeCmd() *cobra.Command {
	var (
		rec, device, format, profiles string
		unmapped                      bool
	)
	cmd := &cobra.Command{
		Use:   "normalize --recording FILE",
		Short: "Print the canonical samples netfeat makes of a recorded SNMP walk or gNMI/MDT capture",
		Long: `normalize reads a recorded SNMP walk (snmpsim .snmprec) or a recorded gNMI or Cisco MDT
capture (pipeline JSON, GPB key-value JSON, gNMI SubscribeResponse JSON, gnmic JSON) and prints
the canonical samples the normalizer yields, so you can check what netfeat makes of your device
and of your own profiles (--profiles DIR).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rec == "" {
				return fmt.Errorf("--recording is required")
			}
			if format != "table" && format != "jsonl" {
				return fmt.Errorf("--format must be table or jsonl, got %q", format)
			}
			return runNormalize(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), rec, device, format, profiles, unmapped)
		},
	}
	cmd.Flags().StringVar(&rec, "recording", "", "recorded walk (.snmprec) or gNMI/MDT capture (.json, .jsonl, .jsonkv)")
	cmd.Flags().StringVar(&device, "device", "", "device name to use (default: the file name for walks, the recorded node for captures)")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or jsonl")
	cmd.Flags().StringVar(&profiles, "profiles", "", "directory of profiles overriding or extending the embedded ones")
	cmd.Flags().BoolVar(&unmapped, "unmapped", false, "also print what produced no sample (to stderr), by path and reason")
	return cmd
}

type sampleSink struct{ samples []schema.Sample }

func (s *sampleSink) Append(_ context.Context, b []schema.Sample) error {
	s.samples = append(s.samples, b...)
	return nil
}

func runNormalize(ctx context.Context, stdout, stderr io.Writer, rec, device, format, profiles string, showUnmapped bool) error {
	var obs []schema.Observation
	if strings.HasSuffix(rec, ".snmprec") {
		recs, err := recording.ReadSNMPRecFile(rec)
		if err != nil {
			return err
		}
		if device == "" {
			device = strings.TrimSuffix(filepath.Base(rec), ".snmprec")
		}
		obs = recording.SNMPObservations(recs, device, time.Now().UnixNano())
	} else {
		var err error
		obs, err = recording.ReadGNMICaptureFile(rec, device)
		if err != nil {
			return err
		}
	}
	sink := &sampleSink{}
	n, err := normalize.New(normalize.Config{ProfilesDir: profiles}, sink, nil, nil)
	if err != nil {
		return err
	}
	if err := n.Observe(ctx, obs); err != nil {
		return err
	}
	samples := sink.samples
	sort.SliceStable(samples, func(i, j int) bool {
		a, b := samples[i], samples[j]
		if a.Device != b.Device {
			return a.Device < b.Device
		}
		if a.Component != b.Component {
			return a.Component < b.Component
		}
		if a.Metric != b.Metric {
			return a.Metric < b.Metric
		}
		return a.TS < b.TS
	})
	unit := func(m string) string {
		md, _ := schema.LookupMetric(m)
		return md.Unit
	}
	switch format {
	case "jsonl":
		enc := json.NewEncoder(stdout)
		for _, s := range samples {
			line := struct {
				TS        string  `json:"ts"`
				Device    string  `json:"device"`
				Component string  `json:"component"`
				Metric    string  `json:"metric"`
				Value     float64 `json:"value"`
				Unit      string  `json:"unit"`
				Source    string  `json:"source"`
			}{time.Unix(0, s.TS).UTC().Format(time.RFC3339Nano), s.Device, s.Component, s.Metric, s.Value, unit(s.Metric), s.Source}
			if err := enc.Encode(line); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
	default:
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TS\tDEVICE\tCOMPONENT\tMETRIC\tVALUE\tUNIT\tSOURCE")
		for _, s := range samples {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", time.Unix(0, s.TS).UTC().Format(time.RFC3339), s.Device, s.Component,
				s.Metric, strconv.FormatFloat(s.Value, 'g', -1, 64), unit(s.Metric), s.Source)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	un := n.Unmapped()
	total := uint64(0)
	for _, u := range un {
		total += u.Count
	}
	fmt.Fprintf(stderr, "%d observations, %d samples, %d observations unmapped (%d paths)\n", len(obs), len(samples), total, len(un))
	if showUnmapped {
		tw := tabwriter.NewWriter(stderr, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DEVICE\tPATH\tREASON\tCOUNT")
		for _, u := range un {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", u.Device, u.Path, u.Reason, u.Count)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}

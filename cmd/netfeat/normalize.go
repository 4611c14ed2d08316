package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/recording"
	"github.com/netfeat/netfeat/schema"
)

func newNormalizeCmd() *cobra.Command {
	var (
		rec, device, format, profiles string
		unmapped, strict              bool
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
			if err := checkFormat(format); err != nil {
				return err
			}
			return runNormalize(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), rec, device, format, profiles, unmapped, strict)
		},
	}
	cmd.Flags().StringVar(&rec, "recording", "", "recorded walk (.snmprec) or gNMI/MDT capture (.json, .jsonl, .jsonkv)")
	cmd.Flags().StringVar(&device, "device", "", "device name to use (default: the file name for walks, the recorded node for captures)")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or jsonl")
	cmd.Flags().StringVar(&profiles, "profiles", "", "directory of profiles overriding or extending the embedded ones")
	cmd.Flags().BoolVar(&unmapped, "unmapped", false, "also print what produced no sample (to stderr), by path and reason")
	cmd.Flags().BoolVar(&strict, "strict", false, "refuse the recording at the first value that cannot be parsed, instead of skipping it and reporting it on stderr")
	return cmd
}

func runNormalize(ctx context.Context, stdout, stderr io.Writer, rec, device, format, profiles string, showUnmapped, strict bool) error {
	var (
		obs     []schema.Observation
		skipped []recording.Skipped
		opts    = recording.ReadOptions{Strict: strict}
	)
	if strings.HasSuffix(rec, ".snmprec") {
		recs, sk, err := recording.ReadSNMPRecFileWith(rec, opts)
		if err != nil {
			return err
		}
		skipped = sk
		if device == "" {
			device = strings.TrimSuffix(filepath.Base(rec), ".snmprec")
		}
		obs = recording.SNMPObservations(recs, device, time.Now().UnixNano())
	} else {
		var err error
		obs, skipped, err = recording.ReadGNMICaptureFileWith(rec, device, opts)
		if err != nil {
			return err
		}
	}
	for _, s := range skipped {
		fmt.Fprintln(stderr, s)
	}
	pr := newPrinter(stdout, format, recordingLayout)
	n, err := normalize.New(normalize.Config{ProfilesDir: profiles}, schema.SampleAppenderFunc(pr.samples), nil, nil)
	if err != nil {
		return err
	}
	if err := n.Observe(ctx, obs); err != nil {
		return err
	}
	samples, err := pr.flush()
	if err != nil {
		return err
	}
	un := n.Unmapped()
	total := uint64(0)
	for _, u := range un {
		total += u.Count
	}
	fmt.Fprintf(stderr, "%d observations, %d samples, %d observations unmapped (%d paths)\n", len(obs), samples, total, len(un))
	if showUnmapped {
		return writeTable(stderr, unmappedColumns, un, true)
	}
	return nil
}

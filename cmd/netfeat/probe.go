package main

import "github.com/spf13/cobra"

// newProbeCmd groups the one-shot device probes.
func newProbeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Identify a device, poll it and print what netfeat makes of it",
	}
	cmd.AddCommand(newProbeSNMPCmd())
	cmd.AddCommand(newProbeGNMICmd())
	// probe subcommands: add above this line
	return cmd
}

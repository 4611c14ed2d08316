package main

import "github.com/spf13/cobra"

// newSimCmd groups the device simulators.
func newSimCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run simulated devices that replay real recordings",
	}
	cmd.AddCommand(newSimSNMPCmd())
	cmd.AddCommand(newSimGNMICmd())
	// sim subcommands: add above this line
	return cmd
}

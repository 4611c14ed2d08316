package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/service"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with configuration files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Check a configuration file as serve does (keys, model files, certificates, credential files, addresses) and print every problem with its line",
		Long: `Check a configuration file as serve does before it starts: every key, and the
files it names, loaded as serve loads them (model files, certificate and key
pairs, CA and credential files). Relative paths are from the file's directory.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := service.LoadConfig(args[0])
			if err == nil && cfg.Learning.Gate.Twin != nil {
				// The twin gate's scenarios, parsed as serve parses them.
				if _, err := newTwinGate(cfg, nil, nil); err != nil {
					return &exitError{code: 1, err: fmt.Errorf("%s: %w", args[0], err)}
				}
			}
			if err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: OK\n", args[0])
				return nil
			}
			var ce service.ConfigErrors
			if errors.As(err, &ce) {
				for _, e := range ce {
					fmt.Fprintln(cmd.OutOrStdout(), e.Error())
				}
				return &exitError{code: 1, err: fmt.Errorf("%s: %d problem(s)", args[0], len(ce))}
			}
			return &exitError{code: 1, err: err}
		},
	})
	return cmd
}

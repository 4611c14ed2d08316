// Command netfeat turns vendor network telemetry into a real-time feature
// store and publishes decisions on NATS. See README.md and docs/.
//
// Flags live in this package only; every library takes an options struct.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		code := 1
		if errors.As(err, &ee) {
			code = ee.code
		}
		if err.Error() != "" {
			fmt.Fprintln(os.Stderr, "netfeat:", err)
		}
		os.Exit(code)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "netfeat",
		Short:         "Real-time network telemetry feature store with embedded inference",
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version prints what `netfeat version` prints.
		Version: versionLine(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().String("log-level", "", "log level: debug, info, warn, error (overrides the config file)")
	root.PersistentFlags().String("log-format", "", "log format: text or json (overrides the config file)")
	root.AddCommand(newServeCmd())
	root.AddCommand(newConfigCmd())
	root.AddCommand(newVersionCmd())
	root.AddCommand(newSimCmd())
	root.AddCommand(newProbeCmd())
	root.AddCommand(newNormalizeCmd())
	root.AddCommand(newWatchCmd())
	root.AddCommand(newClusterCmd())
	root.AddCommand(newTargetsCmd())
	root.AddCommand(newModelsCmd())
	root.AddCommand(newFLCmd())
	root.AddCommand(newQueryCmd(), newExportCmd())
	for _, newCmd := range extraCommands {
		root.AddCommand(newCmd())
	}
	// subcommands: add above this line
	return root
}

// extraCommands are subcommands that register themselves from their own
// file's init, so that adding one does not touch this file.
var extraCommands []func() *cobra.Command

package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/service"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the netfeat version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
		},
	}
}

// versionLine is what netfeat version and netfeat --version print.
func versionLine() string {
	return fmt.Sprintf("netfeat %s (%s, %s/%s)", service.BuildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newBenchCmd is a placeholder replaced by the load tool implementation.
func newBenchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bench",
		Short: "Load-test an MCP endpoint",
		RunE:  func(*cobra.Command, []string) error { return errors.New("not implemented") },
	}
}

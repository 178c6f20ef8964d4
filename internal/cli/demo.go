package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newDemoServerCmd is a placeholder replaced by the demo upstream implementation.
func newDemoServerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo-server crm|tickets|chat",
		Short: "Run a built-in demo MCP server over stdio",
		RunE:  func(*cobra.Command, []string) error { return errors.New("not implemented") },
	}
}

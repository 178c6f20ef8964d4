// Package cli implements the gatehouse command line. Each subcommand lives in
// its own file and is wired here, in one place.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra without printing twice.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs the command line with args and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Gatehouse: a gateway between AI agents and the tools they use",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newValidateCmd(),
		newDemoServerCmd(),
		newBenchCmd(),
		newAgentCmd(),
		newTeamCmd(),
		newUserCmd(),
		newVaultCmd(),
		newKeysCmd(),
		newGrantCmd(), newApprovalsCmd(), newExplainCmd(), newPolicyCmd(),
		newAuditCmd(), newInspectCmd(),
		newToolsCmd(),
	)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		return 1
	}
	return 0
}

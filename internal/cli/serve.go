package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		RunE:  func(*cobra.Command, []string) error { return errors.New("not implemented") },
	}
}

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check a configuration file",
		RunE:  func(*cobra.Command, []string) error { return errors.New("not implemented") },
	}
}

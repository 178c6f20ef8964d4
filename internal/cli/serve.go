package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"gatehouse/internal/app"
)

func newServeCmd() *cobra.Command {
	var opts app.Options
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Run the gateway: serve the virtual MCP servers of the configuration at
/mcp/{name}. The configuration is reloaded on SIGHUP and when the file
changes; an invalid new configuration is rejected and the running one stays.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return app.Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.ConfigPath, "config", "c", "gatehouse.yaml", "configuration file")
	cmd.Flags().StringVar(&opts.Listen, "listen", "", "listen address (overrides the configuration)")
	cmd.Flags().StringVar(&opts.DebugListen, "debug-listen", "", "serve pprof profiles on this address (e.g. 127.0.0.1:6060)")
	return cmd
}

func newValidateCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a configuration file and print every problem with its location",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := app.LoadConfig(path)
			if err != nil {
				return reportProblems(cmd, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d upstreams, %d virtual servers)\n", path, len(cfg.Upstreams), len(cfg.Servers))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "gatehouse.yaml", "configuration file")
	return cmd
}

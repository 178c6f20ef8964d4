package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"gatehouse/internal/demo"
)

// newDemoServerCmd runs one of the built-in demo upstreams over stdio, so the
// quickstart config can point at the gatehouse binary itself.
func newDemoServerCmd() *cobra.Command {
	names := demo.Names()
	return &cobra.Command{
		Use:   "demo-server " + strings.Join(names, "|"),
		Short: "Run a built-in demo MCP server over stdio",
		Long: "Run a built-in demo MCP server (" + strings.Join(names, ", ") + ") speaking MCP over stdin/stdout.\n" +
			"It serves until stdin closes or the process is interrupted. Logs go to stderr;\n" +
			"stdout carries only the protocol. All data is fictional and held in memory.",
		ValidArgs: names,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("demo-server needs exactly one server name (%s), got %d arguments", strings.Join(names, ", "), len(args))
			}
			if !slices.Contains(names, args[0]) {
				return fmt.Errorf("unknown demo server %q: want one of %s", args[0], strings.Join(names, ", "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			err := demo.Run(ctx, args[0], &mcp.StdioTransport{})
			// Being interrupted is how an operator stops the server, not a failure.
			if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil
			}
			return err
		},
	}
}

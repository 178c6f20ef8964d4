package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"gatehouse/internal/bench"
)

// newBenchCmd is `gatehouse bench`: a closed-loop load test of an MCP
// endpoint, with `bench echo-server` as the upstream to measure against.
func newBenchCmd() *cobra.Command {
	var (
		cfg     bench.Config
		args    string
		headers []string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test an MCP endpoint with concurrent sessions calling a tool",
		Long: `Load-test an MCP endpoint over Streamable HTTP.

Each session initializes, then calls the tool back to back. Calls in the
warmup period are not counted. With --pid, the CPU time that process used
during the measured window is reported, in total and per call.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := parseHeaders(headers)
			if err != nil {
				return err
			}
			cfg.Headers = h
			cfg.Args = json.RawMessage(args)
			cfg.Logger = stderrLogger(cmd)
			if cfg.Sessions < 1 {
				return errors.New("--sessions must be at least 1")
			}
			if cfg.Duration <= 0 {
				return errors.New("--duration must be positive")
			}

			res, err := bench.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(res)
			}
			res.WriteTable(out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.URL, "url", "", "MCP endpoint URL (required)")
	f.IntVarP(&cfg.Sessions, "sessions", "c", 1, "concurrent MCP sessions")
	f.DurationVarP(&cfg.Duration, "duration", "d", 10*time.Second, "measured duration")
	f.DurationVar(&cfg.Warmup, "warmup", time.Second, "uncounted warmup before measuring")
	f.StringVar(&cfg.Tool, "tool", bench.DefaultTool, "tool to call")
	f.StringVar(&args, "args", bench.DefaultArgs, "tool arguments, a JSON object")
	f.StringArrayVar(&headers, "header", nil, `extra request header "Key: Value" (repeatable)`)
	f.IntVar(&cfg.PID, "pid", 0, "process whose CPU time to measure, e.g. the server under test")
	f.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	f.StringVar(&cfg.ProtocolVersion, "protocol-version", bench.DefaultProtocolVersion, "MCP protocol version to request")
	_ = cmd.MarkFlagRequired("url") // cannot fail: the flag exists

	cmd.AddCommand(newEchoServerCmd(), newReverseProxyCmd())
	return cmd
}

// newReverseProxyCmd is `gatehouse bench reverse-proxy`: a plain Go
// reverse proxy with no MCP logic, to calibrate benchmarks.
func newReverseProxyCmd() *cobra.Command {
	var addr, target string
	cmd := &cobra.Command{
		Use:   "reverse-proxy --to URL",
		Short: "Serve a plain net/http reverse proxy (benchmark calibration)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := stderrLogger(cmd)
			return bench.ServeReverseProxy(cmd.Context(), addr, target, func(a net.Addr) {
				log.Info("reverse proxy listening", "url", "http://"+a.String()+"/", "to", target)
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9201", "listen address")
	cmd.Flags().StringVar(&target, "to", "http://"+bench.DefaultEchoAddr+"/", "upstream URL")
	return cmd
}

// newEchoServerCmd is `gatehouse bench echo-server`: a minimal Go MCP
// upstream, the baseline a gateway's overhead is measured against.
func newEchoServerCmd() *cobra.Command {
	var (
		addr string
		opts bench.EchoOptions
	)
	cmd := &cobra.Command{
		Use:   "echo-server",
		Short: "Serve an MCP echo tool over Streamable HTTP (benchmark upstream)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := stderrLogger(cmd)
			ready := func(a net.Addr) {
				log.Info("echo server listening", "url", "http://"+a.String()+"/", "stateless", opts.Stateless)
			}
			return bench.ServeEcho(cmd.Context(), addr, opts, ready)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", bench.DefaultEchoAddr, "listen address")
	cmd.Flags().BoolVar(&opts.Stateless, "stateless", false, "serve without sessions (go-sdk stateless mode)")
	return cmd
}

// parseHeaders turns repeated "Key: Value" flags into a header set.
func parseHeaders(raw []string) (http.Header, error) {
	h := make(http.Header, len(raw))
	for _, kv := range raw {
		k, v, ok := strings.Cut(kv, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--header %q: want \"Key: Value\"", kv)
		}
		h.Add(k, strings.TrimSpace(v))
	}
	return h, nil
}

// stderrLogger logs progress to the command's stderr so that stdout holds
// only the result (which matters with --json).
func stderrLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
}

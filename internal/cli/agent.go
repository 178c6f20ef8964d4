package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gatehouse/internal/admin"
)

const shownOnce = "This secret is shown once: store it now (e.g. in the agent's secret manager). It cannot be read again; rotate to get a new one."

func agentPath(name, action string) string {
	p := "/admin/v1/agents/" + escape(name)
	if action != "" {
		p += "/" + action
	}
	return p
}

func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Register agents and manage their credentials (through the admin API)",
		Long: `Register agents and manage their credentials on a running gateway, through
its admin API (--admin-url, --admin-token or $GATEHOUSE_ADMIN_URL,
$GATEHOUSE_ADMIN_TOKEN).`,
	}
	f := addAdminFlags(cmd)
	cmd.AddCommand(
		newAgentCreateCmd(f),
		newAgentListCmd(f),
		newAgentShowCmd(f),
		newAgentRotateCmd(f),
		newAgentRevokeCmd(f),
		newAgentStatusCmd(f, "disable", "Disable an agent: its credentials and tokens stop working until it is enabled"),
		newAgentStatusCmd(f, "enable", "Enable a disabled agent"),
		newAgentAPIKeyCmd(f),
		newAgentAddKeyCmd(f),
	)
	return cmd
}

func newAgentCreateCmd(f *adminFlags) *cobra.Command {
	var req admin.CreateAgentRequest
	var attrs string
	cmd := &cobra.Command{
		Use:   "create NAME --team TEAM --owner EMAIL [--attributes JSON]",
		Short: "Register an agent and print its client id and secret (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			if attrs != "" {
				if !json.Valid([]byte(attrs)) || !strings.HasPrefix(strings.TrimSpace(attrs), "{") {
					return fmt.Errorf("--attributes must be a JSON object, e.g. '{\"queue\":\"billing\"}'")
				}
				req.Attributes = json.RawMessage(attrs)
			}
			var res admin.CreateAgentResponse
			if done, err := f.do(cmd, http.MethodPost, "/admin/v1/agents", nil, req, &res); err != nil || done {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Created agent %s (team %s, owner %s).\n\n", res.Agent.Name, res.Agent.Team, res.Agent.Owner)
			fmt.Fprintf(w, "  client_id:     %s\n  client_secret: %s\n\n%s\n", res.ClientID, res.ClientSecret, shownOnce)
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Team, "team", "", "the team the agent belongs to (required)")
	cmd.Flags().StringVar(&req.Owner, "owner", "", "the accountable person, e.g. alice@example.com (required)")
	cmd.Flags().StringVar(&attrs, "attributes", "", "a JSON object of attributes for policy")
	_ = cmd.MarkFlagRequired("team")
	_ = cmd.MarkFlagRequired("owner")
	return cmd
}

func newAgentListCmd(f *adminFlags) *cobra.Command {
	var team, status string
	cmd := &cobra.Command{
		Use:   "list [--team TEAM] [--status active|disabled|revoked]",
		Short: "List agents with their credentials' state and warnings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if team != "" {
				q.Set("team", team)
			}
			if status != "" {
				q.Set("status", status)
			}
			var agents []admin.Agent
			if done, err := f.do(cmd, http.MethodGet, "/admin/v1/agents", q, nil, &agents); err != nil || done {
				return err
			}
			if len(agents) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No agents.")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTEAM\tOWNER\tSTATUS\tACTIVE CREDENTIALS\tWARNINGS")
			for _, a := range agents {
				warn := "-"
				if len(a.Warnings) > 0 {
					warn = strings.Join(a.Warnings, "; ")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", a.Name, a.Team, a.Owner, a.Status, a.ActiveCredentials(), warn)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&team, "team", "", "only agents of this team")
	cmd.Flags().StringVar(&status, "status", "", "only agents with this status: active, disabled or revoked")
	return cmd
}

func newAgentShowCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show an agent, its credentials and warnings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var a admin.Agent
			if done, err := f.do(cmd, http.MethodGet, agentPath(args[0], ""), nil, nil, &a); err != nil || done {
				return err
			}
			return printAgent(cmd.OutOrStdout(), a)
		},
	}
}

// printAgent writes an agent as text.
func printAgent(w io.Writer, a admin.Agent) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\nID:\t%s\nClient ID:\t%s\nTeam:\t%s\nOwner:\t%s\nStatus:\t%s\nSource:\t%s\nCreated:\t%s\n",
		a.Name, a.ID, a.ClientID, a.Team, a.Owner, a.Status, a.Source, formatTime(a.CreatedAt))
	if a.RevokedAt != nil {
		fmt.Fprintf(tw, "Revoked:\t%s\n", formatTime(*a.RevokedAt))
	}
	if len(a.Attributes) > 0 {
		fmt.Fprintf(tw, "Attributes:\t%s\n", a.Attributes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nCredentials:")
	if len(a.Credentials) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  KIND\tPREFIX\tCREATED\tEXPIRES\tSTATE")
		for _, c := range a.Credentials {
			expires, state := "-", "active"
			if c.ExpiresAt != nil {
				expires = formatTime(*c.ExpiresAt)
			}
			switch {
			case c.RevokedAt != nil:
				state = "revoked"
			case !c.Active:
				state = "expired"
			}
			fmt.Fprintf(tw, "  %s\t%s…\t%s\t%s\t%s\n", c.Kind, c.Prefix, formatTime(c.CreatedAt), expires, state)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(a.Warnings) > 0 {
		fmt.Fprintln(w, "\nWarnings:")
		for _, warn := range a.Warnings {
			fmt.Fprintf(w, "  - %s\n", warn)
		}
	}
	return nil
}

func newAgentRotateCmd(f *adminFlags) *cobra.Command {
	var overlap time.Duration
	cmd := &cobra.Command{
		Use:   "rotate NAME [--overlap 24h]",
		Short: "Give an agent a new client secret; the current ones keep working for the overlap",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if overlap < 0 {
				return errors.New("--overlap must not be negative")
			}
			o := overlap.String()
			var res admin.RotateResponse
			if done, err := f.do(cmd, http.MethodPost, agentPath(args[0], "rotate"), nil, admin.RotateRequest{Overlap: &o}, &res); err != nil || done {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "New client secret for %s:\n\n  client_secret: %s\n\n%s\n", args[0], res.ClientSecret, shownOnce)
			if overlap > 0 {
				fmt.Fprintf(w, "The previous secrets keep working for %s.\n", formatDuration(overlap))
			} else {
				fmt.Fprintln(w, "The previous secrets stopped working now.")
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&overlap, "overlap", 24*time.Hour, "how long the current secrets keep working (0s: stop now)")
	return cmd
}

func newAgentRevokeCmd(f *adminFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "revoke NAME [--yes]",
		Short: "Revoke an agent and all its credentials, at once and for good",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				ok, err := confirm(cmd, fmt.Sprintf("Revoke agent %s and every credential it has? Its tokens stop working now; this cannot be undone.", args[0]))
				if err != nil {
					return err
				}
				if !ok {
					return errors.New("not revoked (confirm, or pass --yes)")
				}
			}
			var a admin.Agent
			if done, err := f.do(cmd, http.MethodPost, agentPath(args[0], "revoke"), nil, nil, &a); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked agent %s and its %d credentials.\n", a.Name, len(a.Credentials))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// newAgentStatusCmd returns the disable or enable command.
func newAgentStatusCmd(f *adminFlags, action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var a admin.Agent
			if done, err := f.do(cmd, http.MethodPost, agentPath(args[0], action), nil, nil, &a); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Agent %s is %s.\n", a.Name, a.Status)
			return nil
		},
	}
}

func newAgentAPIKeyCmd(f *adminFlags) *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "api-key NAME [--ttl 720h]",
		Short: "Create a static API key for a client that cannot do OAuth (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req admin.APIKeyRequest
			switch {
			case ttl < 0:
				return errors.New("--ttl must not be negative")
			case ttl > 0:
				s := ttl.String()
				req.TTL = &s
			}
			var res admin.APIKeyResponse
			if done, err := f.do(cmd, http.MethodPost, agentPath(args[0], "api-keys"), nil, req, &res); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "New API key for %s:\n\n  api_key: %s\n\n%s\n", args[0], res.APIKey,
				strings.Replace(shownOnce, "This secret", "This key", 1))
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "the key's lifetime (default: the team's maximum secret age)")
	return cmd
}

func newAgentAddKeyCmd(f *adminFlags) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "add-key NAME --jwk FILE",
		Short: "Register a public JWK for private_key_jwt client authentication",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("reading the key: %w", err)
			}
			if !json.Valid(raw) {
				return fmt.Errorf("%s is not JSON: want a public JWK", file)
			}
			var res admin.AddKeyResponse
			if done, err := f.do(cmd, http.MethodPost, agentPath(args[0], "keys"), nil, json.RawMessage(raw), &res); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Registered public key %s for %s.\n", res.Prefix, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "jwk", "", "a file holding the public JWK (required)")
	_ = cmd.MarkFlagRequired("jwk")
	return cmd
}

func newTeamCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "team",
		Short: "Act on every agent of a team (through the admin API)",
	}
	f := addAdminFlags(cmd)
	cmd.AddCommand(newTeamRotateCmd(f))
	return cmd
}

func newTeamRotateCmd(f *adminFlags) *cobra.Command {
	var overlap time.Duration
	cmd := &cobra.Command{
		Use:   "rotate TEAM [--overlap 0s]",
		Short: "Emergency: give every active agent of a team a new secret and end the old secrets and API keys",
		Long: `Give every active agent of the team a new client secret, printed once, and
end their old secrets and API keys after the overlap — by default at once:
this is the command for a leaked credential. Agents keep running only once
they are given their new secret.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if overlap < 0 {
				return errors.New("--overlap must not be negative")
			}
			o := overlap.String()
			var res admin.TeamRotateResponse
			done, err := f.do(cmd, http.MethodPost, "/admin/v1/teams/"+escape(args[0])+"/rotate", nil, admin.TeamRotateRequest{Overlap: &o}, &res)
			var ae *apiError
			if err != nil && !f.json && errors.As(err, &ae) {
				// A rotation that failed part way made secrets that exist
				// only in this response: print them before the error.
				var partial admin.TeamRotateResponse
				if json.Unmarshal(ae.body, &partial) == nil && len(partial.Secrets) > 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "The rotation failed part way; these agents already have new secrets:")
					printSecrets(cmd.OutOrStdout(), partial.Secrets)
				}
			}
			if err != nil || done {
				return err
			}
			w := cmd.OutOrStdout()
			if len(res.Secrets) == 0 {
				fmt.Fprintf(w, "Team %s has no active agents: nothing rotated.\n", args[0])
				return nil
			}
			fmt.Fprintf(w, "Rotated %d agents of team %s:\n\n", len(res.Secrets), args[0])
			printSecrets(w, res.Secrets)
			fmt.Fprintf(w, "\nThese secrets are shown once: hand each to its agent now.\n")
			if overlap > 0 {
				fmt.Fprintf(w, "The old secrets and API keys keep working for %s.\n", formatDuration(overlap))
			} else {
				fmt.Fprintln(w, "The old secrets and API keys stopped working now.")
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&overlap, "overlap", 0, "how long the old secrets and API keys keep working")
	return cmd
}

func printSecrets(w io.Writer, secrets map[string]string) {
	names := make([]string, 0, len(secrets))
	for n := range secrets {
		names = append(names, n)
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  AGENT\tCLIENT SECRET")
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", n, secrets[n])
	}
	_ = tw.Flush()
}

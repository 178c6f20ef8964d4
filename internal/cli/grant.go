package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"gatehouse/internal/admin"
)

func newGrantCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grant",
		Short: "Grant policy bundles to agents for a bounded time (through the admin API)",
		Long: `Make an agent a member of a policy bundle for a bounded time: the grant
expires by itself (from 1m to 90 days), and its creation, revocation and
expiry are audited. Standing access belongs in the configuration
(policy.bundles.NAME.members); grants are for temporary needs.

Works on a running gateway through its admin API (--admin-url,
--admin-token or $GATEHOUSE_ADMIN_URL, $GATEHOUSE_ADMIN_TOKEN).`,
	}
	f := addAdminFlags(cmd)
	cmd.AddCommand(newGrantAddCmd(f), newGrantListCmd(f), newGrantRevokeCmd(f))
	return cmd
}

// defaultActor names the person running the command, for the audit log.
func defaultActor() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "admin"
}

func newGrantAddCmd(f *adminFlags) *cobra.Command {
	var req admin.CreateGrantRequest
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "add --agent NAME --bundle BUNDLE --for 2h --reason TEXT [--by NAME]",
		Short: "Grant a bundle to an agent until the duration has passed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl <= 0 {
				return fmt.Errorf("--for must be positive (from 1m to 90 days, e.g. 2h)")
			}
			req.For = ttl.String()
			if req.By == "" {
				req.By = defaultActor()
			}
			var g admin.Grant
			if done, err := f.do(cmd, http.MethodPost, "/admin/v1/grants", nil, req, &g); err != nil || done {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Granted bundle %s to agent %s for %s, until %s (grant %s).\n",
				g.Bundle, g.Agent, formatDuration(ttl), formatTime(g.ExpiresAt), g.ID)
			fmt.Fprintf(w, "It expires by itself; to end it earlier: gatehouse grant revoke %s\n", g.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Agent, "agent", "", "the agent's name (required)")
	fl.StringVar(&req.Bundle, "bundle", "", "a bundle of the running policy (required)")
	fl.DurationVar(&ttl, "for", 0, "how long the grant lasts, from 1m to 90 days (2160h), e.g. 2h (required)")
	fl.StringVar(&req.Reason, "reason", "", "why, for the audit log, e.g. a ticket number (required)")
	fl.StringVar(&req.By, "by", "", "who grants it, for the audit log (default $USER, else admin)")
	for _, name := range []string{"agent", "bundle", "for", "reason"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func newGrantListCmd(f *adminFlags) *cobra.Command {
	var agent, bundle string
	var active bool
	cmd := &cobra.Command{
		Use:   "list [--agent NAME] [--bundle BUNDLE] [--active]",
		Short: "List grants with their status (active, revoked or expired)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if agent != "" {
				q.Set("agent", agent)
			}
			if bundle != "" {
				q.Set("bundle", bundle)
			}
			if active {
				q.Set("active", "true")
			}
			var grants []admin.Grant
			if done, err := f.do(cmd, http.MethodGet, "/admin/v1/grants", q, nil, &grants); err != nil || done {
				return err
			}
			if len(grants) == 0 {
				if active {
					fmt.Fprintln(cmd.OutOrStdout(), "No active grants.")
				} else {
					fmt.Fprintln(cmd.OutOrStdout(), "No grants.")
				}
				return nil
			}
			now := time.Now()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAGENT\tBUNDLE\tSTATUS\tEXPIRES\tBY\tREASON")
			for _, g := range grants {
				name := g.Agent
				if name == "" {
					name = g.AgentID + " (deleted)"
				}
				expires := formatTime(g.ExpiresAt)
				switch g.Status {
				case "active":
					expires += " (in " + humanDuration(g.ExpiresAt.Sub(now)) + ")"
				case "revoked":
					if g.RevokedAt != nil {
						expires = "revoked " + formatTime(*g.RevokedAt) + " by " + clean(g.RevokedBy, 40)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, name, g.Bundle, g.Status, expires, clean(g.CreatedBy, 40), clean(g.Reason, 60))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "only grants of this agent")
	cmd.Flags().StringVar(&bundle, "bundle", "", "only grants of this bundle")
	cmd.Flags().BoolVar(&active, "active", false, "only grants in force now")
	return cmd
}

func newGrantRevokeCmd(f *adminFlags) *cobra.Command {
	var by string
	cmd := &cobra.Command{
		Use:   "revoke ID [--by NAME]",
		Short: "End a grant before its expiry; the agent loses the bundle at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if by == "" {
				by = defaultActor()
			}
			var g admin.Grant
			if done, err := f.do(cmd, http.MethodDelete, "/admin/v1/grants/"+escape(args[0]), nil, admin.RevokeGrantRequest{By: by}, &g); err != nil || done {
				return err
			}
			if g.Agent != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "Revoked grant %s: agent %s no longer has bundle %s.\n", g.ID, g.Agent, g.Bundle)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Revoked grant %s.\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who revokes it, for the audit log (default $USER, else admin)")
	return cmd
}

// humanDuration prints a duration coarsely, for tables: "<1m", "59m",
// "1h5m", "3d4h".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Minute)
	switch {
	case d < time.Minute:
		return "<1m"
	case d >= 48*time.Hour:
		days := d / (24 * time.Hour)
		hours := (d % (24 * time.Hour)) / time.Hour
		if hours == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, hours)
	}
	return formatDuration(d)
}

// clean makes text that others wrote (agents, upstreams, other admins)
// safe to print on a terminal: control characters become '?', and it is
// cut to max runes.
func clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			r = '?' // terminal escapes, bidirectional overrides
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

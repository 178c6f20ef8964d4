package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gatehouse/internal/policy"
)

// Exit codes of the policy commands, besides 0 and 1 (an error).
const (
	// exitNotAllowed: gatehouse explain found the call denied or held for
	// approval.
	exitNotAllowed = 3
	// exitChanged: gatehouse policy test found decisions that change.
	exitChanged = 4
)

func newExplainCmd() *cobra.Command {
	var q policy.ExplainQuery
	var args, at string
	var f *adminFlags // set below, once the command exists
	cmd := &cobra.Command{
		Use:   "explain --agent NAME [--user NAME] [--server NAME] --tool TOOL [--args JSON] [--session-labels a,b]",
		Short: "Explain how the running policy decides a call, rule by rule (through the admin API)",
		Long: `Ask a running gateway how its policy would decide a call, without making
it: the decision (allow, deny, approve: held for a person's approval, or
would_deny: monitor mode lets it through), the deciding rule and its
reason, whether the caller's tools/list shows the tool, the caller's
bundles, and every rule considered, in order.

--agent is the agent's name; --user alone is a person calling directly,
with --agent the person driving the agent. --server may be left out when
the caller can use one virtual server only. --tool is the name the client
sees. --session-labels are data labels the session is assumed to have
read already (for workflow rules).

Exit status: 0 when the call is allowed (monitor mode's would_deny
included), 3 when it is denied or held for approval, 1 on an error.

Works through the admin API (--admin-url, --admin-token or
$GATEHOUSE_ADMIN_URL, $GATEHOUSE_ADMIN_TOKEN).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if args != "" {
				trimmed := strings.TrimSpace(args)
				if !json.Valid([]byte(trimmed)) || !strings.HasPrefix(trimmed, "{") {
					return fmt.Errorf("--args must be a JSON object, e.g. '{\"queue\":\"billing\"}'")
				}
				q.Args = json.RawMessage(trimmed)
			}
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return fmt.Errorf("--time must be an RFC 3339 time, e.g. 2026-11-25T10:00:00+01:00")
				}
				q.Time = &t
			}
			if q.Source != "" && net.ParseIP(q.Source) == nil {
				return fmt.Errorf("--source must be an IP address, not %q", q.Source)
			}
			var ex policy.Explanation
			done, err := f.do(cmd, http.MethodPost, "/admin/v1/policy/explain", nil, q, &ex)
			if err != nil {
				return err
			}
			if !done {
				if err := printExplanation(cmd.OutOrStdout(), ex); err != nil {
					return err
				}
			}
			if ex.Decision == string(policy.Deny) || ex.Decision == string(policy.Approve) {
				return exitError{code: exitNotAllowed}
			}
			return nil
		},
	}
	f = addAdminFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&q.Agent, "agent", "", "the agent's name")
	fl.StringVar(&q.User, "user", "", "the person: calling directly, or driving the agent")
	fl.StringVar(&q.Server, "server", "", "the virtual server (default: the caller's only one)")
	fl.StringVar(&q.Tool, "tool", "", "the tool's name as the client sees it (required)")
	fl.StringVar(&args, "args", "", "the call's arguments, a JSON object")
	fl.StringSliceVar(&q.SessionLabels, "session-labels", nil, "data labels the session has read, comma-separated")
	fl.StringVar(&q.Source, "source", "", "the client's IP address (for conditions on request.source)")
	fl.StringVar(&at, "time", "", "decide at this RFC 3339 time (default: now)")
	_ = cmd.MarkFlagRequired("tool")
	cmd.MarkFlagsOneRequired("agent", "user")
	return cmd
}

// printExplanation writes an explanation as text.
func printExplanation(w io.Writer, ex policy.Explanation) error {
	decision := ex.Decision
	switch ex.Decision {
	case string(policy.Allow):
		decision += " (the call goes through)"
	case string(policy.Deny):
		decision += " (the call is refused)"
	case string(policy.Approve):
		decision += " (the call is held until a person approves it)"
	case "would_deny":
		decision += " (monitor mode: the call goes through, but an enforced policy would refuse or hold it)"
	}
	rule := "(none)"
	if ex.Rule != "" {
		rule = clean(ex.Rule, 200)
		if ex.Origin != "" {
			rule += " (" + clean(ex.Origin, 200) + ")"
		}
	}
	visible := "no: the caller's list does not show the tool"
	if ex.Visible {
		visible = "yes: the caller's list shows the tool"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Decision:\t%s\nRule:\t%s\nReason:\t%s\nVisible:\t%s\nBundles:\t%s\n",
		decision, rule, clean(ex.Reason, 1000), visible, listOrNone(ex.Bundles))
	if len(ex.Labels) > 0 {
		fmt.Fprintf(tw, "Labels:\t%s\n", listOrNone(ex.Labels))
	}
	t := ex.Target
	if t.Server != "" || t.Name != "" {
		name := t.Visible
		if name == "" {
			name = t.Name
		}
		fmt.Fprintf(tw, "Target:\t%s %s/%s (upstream %s, %s)\n", t.Kind, clean(t.Server, 100), clean(name, 200),
			clean(t.Upstream, 100), clean(t.Name, 200))
	}
	if ex.PolicyVersion != "" {
		fmt.Fprintf(tw, "Policy version:\t%s\n", ex.PolicyVersion)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nSteps (every rule considered, in order):")
	if len(ex.Steps) == 0 {
		fmt.Fprintln(w, "  none: no rule applies to this target")
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tORIGIN\tRULE\tKIND\tRESULT\tMODE\tDETAIL")
	for i, s := range ex.Steps {
		detail := s.Detail
		if detail == "" {
			detail = "-"
		}
		name := s.Rule
		if name == "" {
			name = "(unnamed)"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, clean(s.Origin, 100), clean(name, 100), s.Kind, s.Result, s.Mode, clean(detail, 300))
	}
	return tw.Flush()
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return clean(strings.Join(l, ", "), 1000)
}

package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gatehouse/internal/admin"
)

func newApprovalsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "approvals",
		Aliases: []string{"approval"},
		Short:   "Decide calls that workflow rules hold for approval (through the admin API)",
		Long: `List, show, approve and deny calls that a workflow rule holds for a
person's approval. An approval is bound to the exact call (caller, server,
tool, hash of the arguments, policy version), is used once, and expires.
If the held call's wait ended before the decision, the caller gets an
error naming the approval, and the same call succeeds when retried after
it is approved.

Works on a running gateway through its admin API (--admin-url,
--admin-token or $GATEHOUSE_ADMIN_URL, $GATEHOUSE_ADMIN_TOKEN).`,
	}
	f := addAdminFlags(cmd)
	cmd.AddCommand(
		newApprovalsListCmd(f),
		newApprovalsShowCmd(f),
		newApprovalsDecideCmd(f, true),
		newApprovalsDecideCmd(f, false),
	)
	return cmd
}

func approvalPath(id, action string) string {
	p := "/admin/v1/approvals/" + escape(id)
	if action != "" {
		p += "/" + action
	}
	return p
}

// approvalState describes an approval's status for people.
func approvalState(a admin.Approval) string {
	switch {
	case a.Expired && a.Status == "pending":
		return "expired"
	case a.Expired:
		return a.Status + ", expired"
	}
	return a.Status
}

func newApprovalsListCmd(f *adminFlags) *cobra.Command {
	var status string
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--status pending|approved|denied|used|all] [--limit N]",
		Short: "List approval requests, newest first (default: the pending ones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch status {
			case "pending", "approved", "denied", "used", "all":
			default:
				return fmt.Errorf("--status must be pending, approved, denied, used or all, not %q", status)
			}
			q := url.Values{"status": {status}}
			if limit != 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			var list []admin.Approval
			if done, err := f.do(cmd, http.MethodGet, "/admin/v1/approvals", q, nil, &list); err != nil || done {
				return err
			}
			w := cmd.OutOrStdout()
			if len(list) == 0 {
				if status == "all" {
					fmt.Fprintln(w, "No approval requests.")
				} else {
					fmt.Fprintf(w, "No %s approval requests.\n", status)
				}
				return nil
			}
			now := time.Now()
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tCALLER\tSERVER\tTOOL\tRULE\tAGE\tEXPIRES")
			decidable := false
			for _, a := range list {
				expires := "-"
				switch {
				case a.Status != "pending" && a.Status != "approved":
				case a.Expired:
					expires = humanDuration(now.Sub(a.ExpiresAt)) + " ago"
				default:
					expires = "in " + humanDuration(a.ExpiresAt.Sub(now))
					decidable = decidable || a.Status == "pending"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, approvalState(a), clean(a.CallerName, 40),
					clean(a.Server, 40), clean(a.Tool, 60), clean(a.Rule, 40), humanDuration(now.Sub(a.CreatedAt)), expires)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if decidable {
				fmt.Fprintln(w, "\nSee the arguments with `gatehouse approvals show ID`; decide with `gatehouse approvals approve ID` or `deny ID --note …`.")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&status, "status", "pending", "pending, approved, denied, used or all")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (1 to 1000; default 100)")
	return cmd
}

func newApprovalsShowCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show an approval request with the call's arguments",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var a admin.Approval
			if done, err := f.do(cmd, http.MethodGet, approvalPath(args[0], ""), nil, nil, &a); err != nil || done {
				return err
			}
			return printApproval(cmd.OutOrStdout(), a, time.Now())
		},
	}
}

// printApproval writes an approval as text.
func printApproval(w io.Writer, a admin.Approval, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	status := approvalState(a)
	switch {
	case a.Status == "pending" && !a.Expired:
		status += fmt.Sprintf(" (decide before %s, in %s)", formatTime(a.ExpiresAt), humanDuration(a.ExpiresAt.Sub(now)))
	case a.Status == "approved" && !a.Expired:
		status += fmt.Sprintf(" (usable once until %s)", formatTime(a.ExpiresAt))
	}
	fmt.Fprintf(tw, "ID:\t%s\nStatus:\t%s\nCaller:\t%s (%s)\nServer:\t%s\nTool:\t%s\nRule:\t%s\nReason:\t%s\nPolicy version:\t%s\nRequested:\t%s (%s ago)\n",
		a.ID, status, clean(a.CallerName, 100), clean(a.Caller, 100), clean(a.Server, 100), clean(a.Tool, 200),
		clean(a.Rule, 100), clean(a.Reason, 500), a.PolicyVersion, formatTime(a.CreatedAt), humanDuration(now.Sub(a.CreatedAt)))
	if a.DecidedAt != nil {
		decision := a.Status
		if decision == "used" {
			decision = "approved"
		}
		fmt.Fprintf(tw, "Decided:\t%s by %s at %s\n", decision, clean(a.DecidedBy, 100), formatTime(*a.DecidedAt))
	}
	if a.Note != "" {
		fmt.Fprintf(tw, "Note:\t%s\n", clean(a.Note, 1000))
	}
	if a.UsedAt != nil {
		fmt.Fprintf(tw, "Used:\t%s\n", formatTime(*a.UsedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nArguments:")
	var buf bytes.Buffer
	if err := json.Indent(&buf, a.Args, "", "  "); err != nil {
		fmt.Fprintf(w, "  %s\n", clean(string(a.Args), 8<<10))
		return nil
	}
	// JSON escapes C0 control characters, but its strings may hold C1
	// controls and bidirectional overrides as they are: clean each line.
	for line := range strings.Lines(buf.String()) {
		line = strings.TrimSuffix(line, "\n")
		fmt.Fprintf(w, "  %s\n", clean(line, len(line)))
	}
	return nil
}

func newApprovalsDecideCmd(f *adminFlags, approve bool) *cobra.Command {
	var req admin.DecideApprovalRequest
	action, short := "approve", "Approve a held call: it proceeds (or succeeds when retried), once"
	if !approve {
		action, short = "deny", "Deny a held call: it fails with your note"
	}
	cmd := &cobra.Command{
		Use:   action + " ID [--note TEXT] [--by NAME]",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.By == "" {
				req.By = defaultActor()
			}
			var a admin.Approval
			if done, err := f.do(cmd, http.MethodPost, approvalPath(args[0], action), nil, req, &a); err != nil || done {
				return err
			}
			w := cmd.OutOrStdout()
			call := fmt.Sprintf("%s → %s/%s", clean(a.CallerName, 100), clean(a.Server, 100), clean(a.Tool, 200))
			if approve {
				fmt.Fprintf(w, "Approved %s (%s).\n", a.ID, call)
				fmt.Fprintf(w, "The held call proceeds; if its wait already ended, the same call succeeds once when retried before %s.\n", formatTime(a.ExpiresAt))
			} else {
				fmt.Fprintf(w, "Denied %s (%s).\n", a.ID, call)
				if a.Note != "" {
					fmt.Fprintf(w, "The caller is told: %s\n", clean(a.Note, 1000))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Note, "note", "", "a note kept with the decision (shown to the caller on a denial)")
	cmd.Flags().StringVar(&req.By, "by", "", "who decides, for the audit log (default $USER, else admin)")
	return cmd
}

// oneLine compacts JSON (or collapses text) onto one line of at most max
// runes, safe to print.
func oneLine(raw []byte, max int) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return clean(buf.String(), max)
	}
	return clean(strings.Join(strings.Fields(string(raw)), " "), max)
}

package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gatehouse/internal/admin"
)

func newToolsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tools",
		Aliases: []string{"tool"},
		Short:   "Review changed tool definitions (rug pulls) and approve them (through the admin API)",
		Long: `Review the tool definitions the gateway pinned and the ones waiting for
approval. The gateway pins each upstream tool's definition when it is first
approved (on first sight with inspect.tools.pin: first_use); a definition
that differs from its pin is quarantined (hidden, or flagged with
inspect.tools.quarantine: flag) until an operator reads the difference and
approves it. With inspect.tools.pin: approval, new tools wait too.

  gatehouse tools list --status changed
  gatehouse tools diff files/read_file
  gatehouse tools approve files/read_file --hash 9b1c0d2e3f4a

Works on a running gateway through its admin API (--admin-url,
--admin-token or $GATEHOUSE_ADMIN_URL, $GATEHOUSE_ADMIN_TOKEN).`,
	}
	f := addAdminFlags(cmd)
	cmd.AddCommand(newToolsListCmd(f), newToolsDiffCmd(f), newToolsApproveCmd(f), newToolsForgetCmd(f))
	return cmd
}

// toolRef splits UPSTREAM/TOOL at the first '/' (upstream names are
// configuration keys; a tool's name may hold '/').
func toolRef(arg string) (upstream, tool string, err error) {
	upstream, tool, ok := strings.Cut(arg, "/")
	if !ok || upstream == "" || tool == "" {
		return "", "", fmt.Errorf("%q: want UPSTREAM/TOOL (the upstream's name in the configuration, then the tool's name), e.g. files/read_file", arg)
	}
	return upstream, tool, nil
}

func toolPath(upstream, tool, action string) string {
	p := "/admin/v1/tools/" + escape(upstream) + "/" + escape(tool)
	if action != "" {
		p += "/" + action
	}
	return p
}

// shortHash is the part of a hash shown and suggested for --hash.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var plainShellWord = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shellArg quotes s for a POSIX shell when it needs it, so that a printed
// command can be pasted as it is.
func shellArg(s string) string {
	if plainShellWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// toolName writes UPSTREAM/TOOL safely for a terminal.
func toolName(upstream, tool string) string { return clean(upstream+"/"+tool, 300) }

func newToolsListCmd(f *adminFlags) *cobra.Command {
	var upstream, status string
	cmd := &cobra.Command{
		Use:   "list [--upstream U] [--status pinned|changed|new]",
		Short: "List pinned tools and tool definitions waiting for approval",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch status {
			case "", "all", admin.ToolPinned, admin.ToolChanged, admin.ToolNew:
			default:
				return fmt.Errorf("--status must be pinned, changed, new or all, not %q", status)
			}
			q := url.Values{}
			if upstream != "" {
				q.Set("upstream", upstream)
			}
			if status != "" && status != "all" {
				q.Set("status", status)
			}
			var list []admin.Tool
			if done, err := f.do(cmd, http.MethodGet, "/admin/v1/tools", q, nil, &list); err != nil || done {
				return err
			}
			w := cmd.OutOrStdout()
			if len(list) == 0 {
				what := "pinned or pending tools"
				if status != "" && status != "all" {
					what = status + " tools"
				}
				if upstream != "" {
					what += " of upstream " + clean(upstream, 100)
				}
				fmt.Fprintf(w, "No %s.\n", what)
				return nil
			}
			now := time.Now()
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "UPSTREAM\tTOOL\tSTATUS\tCLASS\tPINNED\tAPPROVED BY\tPENDING\tLAST SEEN")
			review := false
			for _, t := range list {
				seen := "-"
				if t.LastSeen != nil {
					seen = humanDuration(now.Sub(*t.LastSeen)) + " ago"
				}
				review = review || t.Status != admin.ToolPinned
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(t.Upstream, 40), clean(t.Tool, 60), t.Status, orDash(t.Class),
					orDash(shortHash(t.PinnedHash)), orDash(clean(t.ApprovedBy, 40)), orDash(shortHash(t.PendingHash)), seen)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if review {
				fmt.Fprintln(w, "\nRead a pending definition with `gatehouse tools diff UPSTREAM/TOOL`; it prints the command that approves it.")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&upstream, "upstream", "", "only the tools of this upstream")
	cmd.Flags().StringVar(&status, "status", "", "only pinned, changed or new tools (default: all)")
	return cmd
}

func newToolsDiffCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "diff UPSTREAM/TOOL",
		Aliases: []string{"show"},
		Short:   "Show what changed in a tool's definition since it was pinned, and how to approve it",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			upstream, tool, err := toolRef(args[0])
			if err != nil {
				return err
			}
			var d admin.ToolDetail
			if done, err := f.do(cmd, http.MethodGet, toolPath(upstream, tool, ""), nil, nil, &d); err != nil || done {
				return err
			}
			printToolDetail(cmd.OutOrStdout(), d, time.Now())
			return nil
		},
	}
}

// printToolDetail writes a tool's state, the difference or the new
// definition, and the commands that act on it.
func printToolDetail(w io.Writer, d admin.ToolDetail, now time.Time) {
	name := toolName(d.Upstream, d.Tool)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	status := d.Status
	switch d.Status {
	case admin.ToolChanged:
		status = fmt.Sprintf("changed (%s change): its definition differs from the one approved; quarantined until approved", d.Class)
	case admin.ToolNew:
		status = "new: waiting for approval"
	case admin.ToolPinned:
		status = "pinned: nothing waits for approval"
	}
	fmt.Fprintf(tw, "Tool:\t%s\nStatus:\t%s\n", name, status)
	if d.PinnedHash != "" {
		approved := ""
		if d.ApprovedAt != nil {
			approved = " at " + formatTime(*d.ApprovedAt)
		}
		fmt.Fprintf(tw, "Pinned:\t%s (approved by %s%s)\n", shortHash(d.PinnedHash), clean(d.ApprovedBy, 100), approved)
	}
	if d.PendingHash != "" {
		seen := ""
		if d.FirstSeen != nil && d.LastSeen != nil {
			seen = fmt.Sprintf(" (first seen %s, last seen %s ago)", formatTime(*d.FirstSeen), humanDuration(now.Sub(*d.LastSeen)))
		}
		fmt.Fprintf(tw, "Pending:\t%s%s\n", shortHash(d.PendingHash), seen)
	}
	_ = tw.Flush()

	ref := shellArg(d.Upstream + "/" + d.Tool)
	switch d.Status {
	case admin.ToolChanged:
		fmt.Fprintln(w, "\nChanges (pinned -> pending):")
		for line := range strings.Lines(d.Diff) {
			line = strings.TrimSuffix(line, "\n")
			fmt.Fprintf(w, "  %s\n", clean(line, len(line)))
		}
	case admin.ToolNew:
		fmt.Fprintln(w, "\nDefinition:")
		printDefinition(w, d.PendingDefinition)
	case admin.ToolPinned:
		fmt.Fprintln(w, "\nDefinition:")
		printDefinition(w, d.PinnedDefinition)
		return
	}
	fmt.Fprintf(w, "\nTo approve this definition:\n  gatehouse tools approve %s --hash %s\n", clean(ref, 400), shortHash(d.PendingHash))
	if d.Status == admin.ToolChanged {
		fmt.Fprintln(w, "If the change is not expected, leave it quarantined and ask the upstream's owner.")
	}
}

// printDefinition writes a canonical definition indented, each line made
// safe for a terminal.
func printDefinition(w io.Writer, def json.RawMessage) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, def, "  ", "  "); err != nil {
		fmt.Fprintf(w, "  %s\n", clean(string(def), 16<<10))
		return
	}
	for line := range strings.Lines("  " + buf.String()) {
		line = strings.TrimSuffix(line, "\n")
		fmt.Fprintf(w, "%s\n", clean(line, len(line)))
	}
}

func newToolsApproveCmd(f *adminFlags) *cobra.Command {
	var req admin.ApproveToolRequest
	cmd := &cobra.Command{
		Use:   "approve UPSTREAM/TOOL [--hash H] [--by NAME]",
		Short: "Approve a tool's pending definition: it is pinned and served",
		Long: `Approve the definition of a tool waiting for approval: it becomes the
pinned definition, the quarantine ends, and gateways tell their clients the
tool list changed. Pass --hash with the hash 'gatehouse tools diff' printed
(at least 8 hex digits): if the definition changed again since you read it,
the approval is refused. Without --hash, whatever definition waits now is
approved.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			upstream, tool, err := toolRef(args[0])
			if err != nil {
				return err
			}
			if req.By == "" {
				req.By = defaultActor()
			}
			var p admin.ToolPin
			if done, err := f.do(cmd, http.MethodPost, toolPath(upstream, tool, "approve"), nil, req, &p); err != nil || done {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Approved %s: definition %s is pinned (approved by %s).\n",
				toolName(p.Upstream, p.Tool), shortHash(p.Hash), clean(p.ApprovedBy, 100))
			fmt.Fprintln(w, "Gateways serve it from now on and tell their clients the tool list changed.")
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Hash, "hash", "", "the pending definition's hash or a prefix of at least 8 hex digits, as `tools diff` prints it")
	cmd.Flags().StringVar(&req.By, "by", "", "who approves, for the pin and the audit log (default $USER, else admin)")
	return cmd
}

func newToolsForgetCmd(f *adminFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "forget UPSTREAM/TOOL [--yes]",
		Short: "Forget a tool's pin and pending definition (for tools removed or renamed upstream)",
		Long: `Forget the pinned and the pending definition of a tool. The next time the
upstream lists it, it is pinned again on first use (inspect.tools.pin:
first_use) or waits for approval (pin: approval). With first_use, forgetting
a changed tool pins whatever the upstream lists next, the changed definition
included: to accept a change, approve it instead. Forgetting a changed tool
asks for confirmation unless --yes is given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			upstream, tool, err := toolRef(args[0])
			if err != nil {
				return err
			}
			if !yes {
				c, err := f.client(cmd)
				if err != nil {
					return err
				}
				var d admin.ToolDetail
				if _, err := c.call(cmd.Context(), http.MethodGet, toolPath(upstream, tool, ""), nil, nil, &d); err != nil {
					return err
				}
				if d.Status == admin.ToolChanged {
					ok, err := confirm(cmd, fmt.Sprintf("%s has a changed definition waiting for approval (%s change). Forget its pin? "+
						"With pin: first_use the changed definition is pinned when next listed, without review.", toolName(upstream, tool), d.Class))
					if err != nil {
						return err
					}
					if !ok {
						return errors.New("not forgotten (confirm, or pass --yes; to accept the change, use gatehouse tools approve)")
					}
				}
			}
			if done, err := f.do(cmd, http.MethodDelete, toolPath(upstream, tool, ""), nil, nil, nil); err != nil || done {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Forgot %s: the next time the upstream lists it, it is pinned on first use or waits for approval.\n",
				toolName(upstream, tool))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

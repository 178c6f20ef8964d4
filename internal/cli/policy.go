package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"gatehouse/internal/config"
	"gatehouse/internal/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with least-privilege policy",
	}
	cmd.AddCommand(newPolicyTestCmd())
	return cmd
}

func newPolicyTestCmd() *cobra.Command {
	var configPath, callsPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "test --config NEW.yaml --calls RECORD.jsonl [--json]",
		Short: "Replay recorded decisions against a proposed configuration and print what would change",
		Long: `Decide every recorded call again under the policy of a proposed
configuration, offline (no gateway is needed), and print what would change:
calls newly denied (or held for approval), calls newly allowed, and other
changes (e.g. deny → approve, allow → would_deny).

The records are the JSON-lines file a gateway writes when policy.record is
set (one decision per line: caller, tool, arguments, outcome); --calls -
reads them from standard input. Each call is decided with the caller as
recorded (team, groups, grants at the time) and the session as recorded.

Exit status: 0 when no decision changes, 4 when some do, 1 on an error
(an invalid configuration: every problem is printed, as by validate).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadFile(configPath)
			if err != nil {
				return reportProblems(cmd, err)
			}
			if cfg.Policy == nil {
				return fmt.Errorf("%s has no policy section: nothing to test", configPath)
			}
			p, err := policy.Compile(cfg)
			if err != nil {
				return reportProblems(cmd, err)
			}
			var in io.Reader = cmd.InOrStdin()
			if callsPath != "-" {
				f, err := os.Open(callsPath)
				if err != nil {
					return fmt.Errorf("opening the recorded calls: %w", err)
				}
				defer f.Close()
				in = f
			}
			rep, err := policy.Replay(cmd.Context(), p, in)
			if err != nil {
				return fmt.Errorf("reading the recorded calls %s: %w", callsPath, err)
			}
			if rep.Records == 0 && rep.Malformed > 0 {
				return fmt.Errorf("%s holds no decision records (%d malformed lines; %s): want the file policy.record writes",
					callsPath, rep.Malformed, rep.FirstMalformed)
			}
			if rep.Malformed > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d malformed lines skipped (first: %s)\n", rep.Malformed, rep.FirstMalformed)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if err := printReplayJSON(w, configPath, p.Version, rep); err != nil {
					return err
				}
			} else if err := printReplay(w, configPath, p.Version, rep); err != nil {
				return err
			}
			if len(rep.NewlyDenied)+len(rep.NewlyAllowed)+len(rep.OtherChanges) > 0 {
				return exitError{code: exitChanged}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "the proposed configuration file (required)")
	cmd.Flags().StringVar(&callsPath, "calls", "", "the recorded decisions (policy.record's JSON-lines file; - for standard input) (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("calls")
	return cmd
}

// reportProblems prints configuration problems like validate does and
// exits 1; other errors are returned as they are.
func reportProblems(cmd *cobra.Command, err error) error {
	var ps config.Problems
	if !errors.As(err, &ps) {
		return err
	}
	for _, p := range ps {
		fmt.Fprintln(cmd.ErrOrStderr(), p.Error())
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%d problem(s) found\n", len(ps))
	return exitError{code: 1}
}

// maxArgsShown bounds the arguments printed with each change.
const maxArgsShown = 200

func printReplay(w io.Writer, configPath, version string, rep policy.ReplayReport) error {
	fmt.Fprintf(w, "Replayed %d recorded decisions against %s (policy version %s):\n", rep.Records, filepath.Base(configPath), version)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  unchanged\t%d\n  newly denied\t%d\n  newly allowed\t%d\n  other changes\t%d\n  malformed lines\t%d\n",
		rep.Unchanged, len(rep.NewlyDenied), len(rep.NewlyAllowed), len(rep.OtherChanges), rep.Malformed)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, sec := range []struct {
		title   string
		changes []policy.Change
	}{
		{"Newly denied (or held for approval)", rep.NewlyDenied},
		{"Newly allowed", rep.NewlyAllowed},
		{"Other changes", rep.OtherChanges},
	} {
		if len(sec.changes) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (%d):\n", sec.title, len(sec.changes))
		for _, ch := range sec.changes {
			printChange(w, ch)
		}
	}
	if len(rep.NewlyDenied)+len(rep.NewlyAllowed)+len(rep.OtherChanges) == 0 {
		fmt.Fprintln(w, "\nNo decision changes.")
	}
	return nil
}

func printChange(w io.Writer, ch policy.Change) {
	r := ch.Record
	fmt.Fprintf(w, "  line %d: %s → %s\n", ch.Line, describeCaller(r.Caller), describeTarget(r.Target))
	if len(r.Args) > 0 {
		fmt.Fprintf(w, "      args:   %s\n", oneLine(r.Args, maxArgsShown))
	}
	before, after := policy.Outcome(r.Effect, r.WouldDeny), policy.Outcome(ch.Now.Effect, ch.Now.WouldDeny)
	fmt.Fprintf(w, "      change: %s → %s\n", before, after)
	fmt.Fprintf(w, "      was:    %s\n", describeDecision(r.Rule, r.Origin, r.Reason))
	fmt.Fprintf(w, "      now:    %s\n", describeDecision(ch.Now.Rule, ch.Now.Origin, ch.Now.Reason))
}

func describeCaller(c policy.RecordedCaller) string {
	switch {
	case c.Kind == "agent" && c.User != "":
		return fmt.Sprintf("agent %s (user %s)", clean(c.AgentName, 100), clean(c.User, 100))
	case c.Kind == "agent":
		return "agent " + clean(c.AgentName, 100)
	case c.Kind == "user":
		return "user " + clean(c.User, 100)
	}
	return "anonymous caller"
}

func describeTarget(t policy.RecordedTarget) string {
	name := t.Visible
	if name == "" {
		name = t.Name
	}
	s := clean(t.Server, 100) + "/" + clean(name, 200)
	if t.Kind != policy.KindTool {
		s = t.Kind + " " + s
	}
	return s
}

func describeDecision(rule, origin, reason string) string {
	if rule == "" {
		if reason == "" {
			return "no rule"
		}
		return clean(reason, 500)
	}
	s := fmt.Sprintf("rule %q", clean(rule, 100))
	if origin != "" {
		s += " (" + clean(origin, 100) + ")"
	}
	if reason != "" {
		s += ": " + clean(reason, 500)
	}
	return s
}

// replayJSON is the report of policy test --json.
type replayJSON struct {
	Config         string       `json:"config"`
	PolicyVersion  string       `json:"policy_version"`
	Records        int          `json:"records"`
	Unchanged      int          `json:"unchanged"`
	NewlyDenied    []changeJSON `json:"newly_denied"`
	NewlyAllowed   []changeJSON `json:"newly_allowed"`
	OtherChanges   []changeJSON `json:"other_changes"`
	Malformed      int          `json:"malformed"`
	FirstMalformed string       `json:"first_malformed,omitempty"`
}

type changeJSON struct {
	Line   int                   `json:"line"`
	Caller policy.RecordedCaller `json:"caller"`
	Target policy.RecordedTarget `json:"target"`
	Args   json.RawMessage       `json:"args,omitempty"`
	Before decisionJSON          `json:"before"`
	After  decisionJSON          `json:"after"`
}

type decisionJSON struct {
	Outcome string `json:"outcome"`
	Rule    string `json:"rule,omitempty"`
	Origin  string `json:"origin,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

func printReplayJSON(w io.Writer, configPath, version string, rep policy.ReplayReport) error {
	conv := func(chs []policy.Change) []changeJSON {
		out := make([]changeJSON, 0, len(chs))
		for _, ch := range chs {
			r := ch.Record
			out = append(out, changeJSON{Line: ch.Line, Caller: r.Caller, Target: r.Target, Args: r.Args,
				Before: decisionJSON{Outcome: policy.Outcome(r.Effect, r.WouldDeny), Rule: r.Rule, Origin: r.Origin, Reason: r.Reason},
				After:  decisionJSON{Outcome: policy.Outcome(ch.Now.Effect, ch.Now.WouldDeny), Rule: ch.Now.Rule, Origin: ch.Now.Origin, Reason: ch.Now.Reason}})
		}
		return out
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(replayJSON{Config: configPath, PolicyVersion: version, Records: rep.Records, Unchanged: rep.Unchanged,
		NewlyDenied: conv(rep.NewlyDenied), NewlyAllowed: conv(rep.NewlyAllowed), OtherChanges: conv(rep.OtherChanges),
		Malformed: rep.Malformed, FirstMalformed: rep.FirstMalformed})
}

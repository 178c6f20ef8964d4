package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"gatehouse/internal/admin"
	"gatehouse/internal/audit"
)

// exitBroken: gatehouse audit verify found the chain broken (or, with
// --trust-key, not vouched for by a trusted checkpoint).
const exitBroken = 5

// tailInterval is how often audit tail -f asks for newer records.
var tailInterval = time.Second

// auditPageSize is the page size the audit commands ask for (a variable
// for tests).
var auditPageSize = admin.MaxAuditPage

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Search, follow, export and verify the audit trail (through the admin API)",
		Long: `Read the audit trail of a running gateway: one record per action (MCP
requests with their outcome, token and admin actions, grant and approval
lifecycle), hash-chained in sequence and vouched for by checkpoints the
gateway signs with its Ed25519 key.

  search   records matching filters, newest first, as a table or JSON lines
  tail     the latest records; with -f, new ones as they are committed
  export   records in sequence order as JSON lines, then the checkpoints
           covering them: the file verify reads offline
  verify   check the hash chain and the checkpoints of an export file, or
           of the whole trail through the API

Works on a running gateway through its admin API (--admin-url,
--admin-token or $GATEHOUSE_ADMIN_URL, $GATEHOUSE_ADMIN_TOKEN); verify
--file needs no gateway.`,
	}
	f := addAdminFlags(cmd)
	cmd.AddCommand(newAuditSearchCmd(f), newAuditTailCmd(f), newAuditExportCmd(f), newAuditVerifyCmd(f))
	return cmd
}

// auditFilters are the filter flags of search, tail and export.
type auditFilters struct {
	agent, team, user, server, tool, kind, action, decision string
	since, until                                            string
}

func (a *auditFilters) addFlags(fs *pflag.FlagSet, times bool) {
	fs.StringVar(&a.agent, "agent", "", "only records of this agent (by name)")
	fs.StringVar(&a.team, "team", "", "only records of this team")
	fs.StringVar(&a.user, "user", "", "only records of this user (calling directly, or driving the agent)")
	fs.StringVar(&a.server, "server", "", "only records about this virtual server")
	fs.StringVar(&a.tool, "tool", "", "only records about this tool (or prompt, or resource)")
	fs.StringVar(&a.kind, "kind", "", "only records of this kind: mcp.request, mcp.notification, mcp.server_request, auth, admin, policy")
	fs.StringVar(&a.action, "action", "", "only records of this action (tools/call, token.issued, agent.created, …)")
	fs.StringVar(&a.decision, "decision", "", "only records with this outcome: allowed, denied, error, would_deny, pending")
	if times {
		fs.StringVar(&a.since, "since", "", "only records at or after this time: RFC 3339, or a duration meaning that long ago (90m, 24h, 7d)")
		fs.StringVar(&a.until, "until", "", "only records before this time: RFC 3339, or a duration meaning that long ago")
	}
}

// decisionAliases are the spellings --decision accepts besides the
// outcomes themselves.
var decisionAliases = map[string]string{"allow": audit.OutcomeAllowed, "deny": audit.OutcomeDenied, "would-deny": audit.OutcomeWouldDeny}

// equality returns the query of the equality filters.
func (a *auditFilters) equality() (url.Values, error) {
	q := url.Values{}
	for _, p := range []struct{ name, v string }{
		{"agent", a.agent}, {"team", a.team}, {"user", a.user}, {"server", a.server},
		{"tool", a.tool}, {"kind", a.kind}, {"action", a.action},
	} {
		if p.v != "" {
			q.Set(p.name, p.v)
		}
	}
	if d := strings.ToLower(strings.TrimSpace(a.decision)); d != "" {
		if alias, ok := decisionAliases[d]; ok {
			d = alias
		}
		switch d {
		case audit.OutcomeAllowed, audit.OutcomeDenied, audit.OutcomeError, audit.OutcomeWouldDeny, audit.OutcomePending:
		default:
			return nil, fmt.Errorf("--decision must be allowed, denied, error, would_deny or pending, not %q", a.decision)
		}
		q.Set("outcome", d)
	}
	return q, nil
}

// query returns the query of every filter, times resolved against now.
func (a *auditFilters) query(now time.Time) (url.Values, error) {
	q, err := a.equality()
	if err != nil {
		return nil, err
	}
	since, until, err := a.times(now)
	if err != nil {
		return nil, err
	}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if !until.IsZero() {
		q.Set("until", until.UTC().Format(time.RFC3339Nano))
	}
	return q, nil
}

func (a *auditFilters) times(now time.Time) (since, until time.Time, err error) {
	if since, err = parseWhen("--since", a.since, now); err != nil {
		return
	}
	if until, err = parseWhen("--until", a.until, now); err != nil {
		return
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		err = fmt.Errorf("--since (%s) must be before --until (%s)", a.since, a.until)
	}
	return
}

var daysRE = regexp.MustCompile(`^(\d+)d(.*)$`)

// parseWhen reads an RFC 3339 time, or a duration meaning that long
// before now ("90m", "24h", "7d", "1d12h").
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	bad := fmt.Errorf("%s must be an RFC 3339 time (2026-11-25T10:00:00Z) or a duration meaning that long ago (90m, 24h, 7d), not %q", flag, s)
	var d time.Duration
	rest := s
	if m := daysRE.FindStringSubmatch(s); m != nil {
		days, err := strconv.Atoi(m[1])
		if err != nil || days > 100000 {
			return time.Time{}, bad
		}
		d, rest = time.Duration(days)*24*time.Hour, m[2]
	}
	if rest != "" {
		more, err := time.ParseDuration(rest)
		if err != nil {
			return time.Time{}, bad
		}
		d += more
	}
	if d < 0 {
		return time.Time{}, bad
	}
	return now.Add(-d), nil
}

// auditPage is a page of records as served: each record's bytes as
// stored.
type auditPage struct {
	Records []json.RawMessage `json:"records"`
	Next    *int64            `json:"next"`
}

func fetchRecords(ctx context.Context, c *adminClient, q url.Values) (auditPage, error) {
	var p auditPage
	_, err := c.call(ctx, http.MethodGet, "/admin/v1/audit/records", q, nil, &p)
	return p, err
}

func fetchHead(ctx context.Context, c *adminClient) (admin.AuditHead, error) {
	var h admin.AuditHead
	_, err := c.call(ctx, http.MethodGet, "/admin/v1/audit/head", nil, nil, &h)
	return h, err
}

// fetchCheckpoints returns the checkpoints with from <= seq <= to.
func fetchCheckpoints(ctx context.Context, c *adminClient, from, to int64) ([]admin.AuditCheckpoint, error) {
	var out []admin.AuditCheckpoint
	seen := map[string]bool{}
	for from <= to {
		var page []admin.AuditCheckpoint
		q := url.Values{"from": {strconv.FormatInt(from, 10)}, "limit": {strconv.Itoa(auditPageSize)}}
		if _, err := c.call(ctx, http.MethodGet, "/admin/v1/audit/checkpoints", q, nil, &page); err != nil {
			return nil, err
		}
		added := false
		for _, cp := range page {
			key := strconv.FormatInt(cp.Seq, 10) + " " + cp.KeyID
			if cp.Seq > to || seen[key] {
				continue
			}
			seen[key], added = true, true
			out = append(out, cp)
		}
		if len(page) < auditPageSize {
			break
		}
		// Checkpoints of several keys may share a seq: continue from the
		// last one, unless the page held nothing new.
		last := page[len(page)-1].Seq
		if added {
			from = last
		} else {
			from = last + 1
		}
	}
	return out, nil
}

// recordSeq reads a record's seq without decoding the rest.
func recordSeq(raw []byte) int64 {
	var r struct {
		Seq int64 `json:"seq"`
	}
	_ = json.Unmarshal(raw, &r)
	return r.Seq
}

// recordCells describes a record for a table: time, seq, actor, action,
// target, outcome, rule, duration.
func recordCells(raw []byte) []string {
	var r audit.Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return []string{"-", "?", "-", "(unreadable record)", "-", "-", "-", "-"}
	}
	actor := r.Actor.AgentName
	switch {
	case actor != "" && r.Actor.User != "":
		actor += " (" + r.Actor.User + ")"
	case actor == "":
		actor = r.Actor.User
	}
	if actor == "" {
		actor = r.Actor.ID
	}
	if actor == "" {
		actor = r.Actor.Kind
	}
	target := r.Target.Tool
	if target == "" {
		target = r.Target.Prompt
	}
	if target == "" {
		target = r.Target.Resource
	}
	if target != "" && r.Target.Server != "" {
		target = r.Target.Server + "/" + target
	}
	if target == "" {
		target = r.Target.Object
	}
	if target == "" {
		target = r.Target.Server
	}
	outcome := r.Outcome.Status
	if r.Outcome.ErrorCode != 0 && outcome == audit.OutcomeError {
		outcome += " " + strconv.Itoa(r.Outcome.ErrorCode)
	}
	duration := "-"
	switch ms := r.DurationMS; {
	case ms <= 0:
	case ms < 1000:
		duration = strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	default:
		duration = strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
	}
	when := "-"
	if !r.Time.IsZero() {
		when = r.Time.Local().Format("2006-01-02 15:04:05")
	}
	return []string{when, strconv.FormatInt(r.Seq, 10), dash(clean(actor, 40)), dash(clean(r.Action, 40)),
		dash(clean(target, 60)), dash(clean(outcome, 20)), dash(clean(r.Outcome.Rule, 40)), duration}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var recordHeader = []string{"TIME", "SEQ", "ACTOR", "ACTION", "TARGET", "OUTCOME", "RULE", "DURATION"}

// writeRawLine writes a record as one JSON line, as served.
func writeRawLine(w io.Writer, raw []byte) error {
	_, err := fmt.Fprintf(w, "%s\n", bytes.TrimSpace(raw))
	return err
}

func newAuditSearchCmd(f *adminFlags) *cobra.Command {
	var filters auditFilters
	var limit int
	var before, after int64
	cmd := &cobra.Command{
		Use:   "search [--agent NAME] [--tool TOOL] [--decision denied] [--since 24h] [--limit N] [--json]",
		Short: "Search the audit trail, newest first",
		Long: `Print the records matching every filter given, newest first, up to
--limit: a table (time, seq, actor, action, target, outcome, deciding
rule, duration), or with --json the records themselves, one JSON object
a line, exactly as stored.

--since and --until take an RFC 3339 time or a duration meaning that long
ago (90m, 24h, 7d). --before SEQ continues a search where an earlier one
stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit must be 1 or more, not %d", limit)
			}
			if before < 0 || after < 0 {
				return errors.New("--before and --after must be sequence numbers (0 or more)")
			}
			q, err := filters.query(time.Now())
			if err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			q.Set("order", "desc")
			if after > 0 {
				q.Set("after", strconv.FormatInt(after, 10))
			}
			if before > 0 {
				q.Set("before", strconv.FormatInt(before, 10))
			}
			w := cmd.OutOrStdout()
			var rows [][]string
			var next *int64
			n := 0
			for n < limit {
				q.Set("limit", strconv.Itoa(min(limit-n, auditPageSize)))
				page, err := fetchRecords(cmd.Context(), c, q)
				if err != nil {
					return err
				}
				for _, raw := range page.Records {
					if f.json {
						if err := writeRawLine(w, raw); err != nil {
							return err
						}
					} else {
						rows = append(rows, recordCells(raw))
					}
				}
				n += len(page.Records)
				next = page.Next
				if next == nil {
					break
				}
				q.Set("before", strconv.FormatInt(*next, 10))
			}
			if f.json {
				if next != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "More records match: continue with --before %d.\n", *next)
				}
				return nil
			}
			if n == 0 {
				fmt.Fprintln(w, "No audit records match.")
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, strings.Join(recordHeader, "\t"))
			for _, r := range rows {
				fmt.Fprintln(tw, strings.Join(r, "\t"))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if next != nil {
				fmt.Fprintf(w, "\nShowing the newest %d; more match: raise --limit, or continue with --before %d.\n", n, *next)
			}
			return nil
		},
	}
	filters.addFlags(cmd.Flags(), true)
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many records (pages of 1000 are followed)")
	cmd.Flags().Int64Var(&before, "before", 0, "only records with a smaller seq (to continue a search)")
	cmd.Flags().Int64Var(&after, "after", 0, "only records with a greater seq")
	return cmd
}

// tailWidths are the column widths of audit tail (it prints as records
// arrive, so it cannot align on them).
var tailWidths = []int{19, 7, 24, 14, 36, 12, 18, 0}

func writeFixedRow(w io.Writer, cells []string) error {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteString("  ")
		}
		width := tailWidths[i]
		switch {
		case width == 0:
			b.WriteString(c)
		case i == 1: // seq, right-aligned
			fmt.Fprintf(&b, "%*s", width, c)
		default:
			if utf8.RuneCountInString(c) > width {
				c = clean(c, width-1) // and "…"
			}
			fmt.Fprintf(&b, "%-*s", width, c)
		}
	}
	_, err := fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	return err
}

func newAuditTailCmd(f *adminFlags) *cobra.Command {
	var filters auditFilters
	var lines int
	var follow bool
	cmd := &cobra.Command{
		Use:   "tail [-n N] [-f] [--agent NAME] [--tool TOOL] [--decision denied] [--json]",
		Short: "Print the latest records; with -f, keep printing new ones",
		Long: `Print the latest records matching the filters (default 20), oldest first;
with -f (--follow), keep asking for newer ones every second and print them
as they are committed, until interrupted. --json prints the records
themselves, one JSON object a line, exactly as stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lines < 0 || lines > admin.MaxAuditPage {
				return fmt.Errorf("--lines must be from 0 to %d, not %d", admin.MaxAuditPage, lines)
			}
			base, err := filters.equality()
			if err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			emit := func(raw []byte) error {
				if f.json {
					return writeRawLine(w, raw)
				}
				return writeFixedRow(w, recordCells(raw))
			}
			if !f.json {
				if err := writeFixedRow(w, recordHeader); err != nil {
					return err
				}
			}
			head, err := fetchHead(ctx, c)
			if err != nil {
				return err
			}
			last := head.Seq
			if lines > 0 && head.Seq > 0 {
				q := cloneValues(base)
				q.Set("order", "desc")
				q.Set("limit", strconv.Itoa(lines))
				q.Set("before", strconv.FormatInt(head.Seq+1, 10))
				page, err := fetchRecords(ctx, c, q)
				if err != nil {
					return err
				}
				for i := len(page.Records) - 1; i >= 0; i-- {
					if err := emit(page.Records[i]); err != nil {
						return err
					}
				}
			}
			if !follow {
				return nil
			}
			tick := time.NewTicker(tailInterval)
			defer tick.Stop()
			warned := false
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
				for {
					q := cloneValues(base)
					q.Set("order", "asc")
					q.Set("limit", strconv.Itoa(auditPageSize))
					q.Set("after", strconv.FormatInt(last, 10))
					page, err := fetchRecords(ctx, c, q)
					if ctx.Err() != nil {
						return nil
					}
					var ae *apiError
					if errors.As(err, &ae) {
						return err
					}
					if err != nil {
						// The gateway may be restarting: keep trying.
						if !warned {
							fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v (retrying)\n", err)
							warned = true
						}
						break
					}
					warned = false
					for _, raw := range page.Records {
						if err := emit(raw); err != nil {
							return err
						}
						if s := recordSeq(raw); s > last {
							last = s
						}
					}
					if page.Next == nil {
						break
					}
					last = max(last, *page.Next)
				}
			}
		},
	}
	filters.addFlags(cmd.Flags(), false)
	cmd.Flags().IntVarP(&lines, "lines", "n", 20, "print the latest N records first")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new records until interrupted")
	return cmd
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// checkpointLine is an export's checkpoint line.
type checkpointLine struct {
	Checkpoint *admin.AuditCheckpoint `json:"checkpoint"`
}

func newAuditExportCmd(f *adminFlags) *cobra.Command {
	var filters auditFilters
	cmd := &cobra.Command{
		Use:   "export [--since TIME] [--until TIME] > trail.jsonl",
		Short: "Write records in sequence order, then their checkpoints, as JSON lines (for verify)",
		Long: `Write the records to standard output, one JSON object a line, exactly as
stored and in sequence order, followed by the signed checkpoints covering
them, one {"checkpoint": {...}} a line. gatehouse audit verify --file
checks such a file offline.

--since and --until (RFC 3339, or a duration meaning that long ago) select
a contiguous range of sequence numbers: from the first record at or after
--since to the last record before --until, so that the export verifies
as a chain. Other filters select a subset, which verify cannot check as a
chain.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			eq, err := filters.equality()
			if err != nil {
				return err
			}
			since, until, err := filters.times(time.Now())
			if err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			if len(eq) > 0 {
				fmt.Fprintln(stderr, "note: a filtered export holds a subset of the chain: gatehouse audit verify cannot check it as a chain.")
			}
			head, err := fetchHead(ctx, c)
			if err != nil {
				return err
			}
			// The range: seqs first..last, found with the time filters.
			edge := func(desc bool, bound string, t time.Time) (int64, error) {
				q := cloneValues(eq)
				q.Set("limit", "1")
				q.Set("before", strconv.FormatInt(head.Seq+1, 10))
				if desc {
					q.Set("order", "desc")
				} else {
					q.Set("order", "asc")
				}
				if !t.IsZero() {
					q.Set(bound, t.UTC().Format(time.RFC3339Nano))
				}
				page, err := fetchRecords(ctx, c, q)
				if err != nil || len(page.Records) == 0 {
					return 0, err
				}
				return recordSeq(page.Records[0]), nil
			}
			var first, last int64
			if head.Seq > 0 {
				if first, err = edge(false, "since", since); err != nil {
					return err
				}
				if last, err = edge(true, "until", until); err != nil {
					return err
				}
			}
			if first == 0 || last == 0 || last < first {
				fmt.Fprintln(stderr, "No audit records to export.")
				return nil
			}

			out := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
			var n, firstWritten, lastWritten int64
			q := cloneValues(eq)
			q.Set("order", "asc")
			q.Set("limit", strconv.Itoa(auditPageSize))
			q.Set("before", strconv.FormatInt(last+1, 10))
			after := first - 1
			for {
				q.Set("after", strconv.FormatInt(after, 10))
				page, err := fetchRecords(ctx, c, q)
				if err != nil {
					return err
				}
				for _, raw := range page.Records {
					if err := writeRawLine(out, raw); err != nil {
						return err
					}
					s := recordSeq(raw)
					if n == 0 {
						firstWritten = s
					}
					lastWritten = s
					n++
				}
				if page.Next == nil {
					break
				}
				after = *page.Next
			}
			// The checkpoints from the anchor (the seq before the first
			// record) to the last record.
			cps, err := fetchCheckpoints(ctx, c, max(firstWritten-1, 1), lastWritten)
			if err != nil {
				return err
			}
			for i := range cps {
				line, err := json.Marshal(checkpointLine{Checkpoint: &cps[i]})
				if err != nil {
					return err
				}
				if err := writeRawLine(out, line); err != nil {
					return err
				}
			}
			if err := out.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "Exported %d records (seq %d to %d) and %d checkpoints.\n", n, firstWritten, lastWritten, len(cps))
			return nil
		},
	}
	filters.addFlags(cmd.Flags(), true)
	return cmd
}

// chainCheck walks a chain with an audit.Verifier, checking each
// checkpoint when the walk reaches its seq.
type chainCheck struct {
	v audit.Verifier
	// pending are the checkpoints not checked yet, by seq.
	pending map[int64][]audit.Checkpoint
	// started: the first record was seen; first is its seq, anchor the
	// hash it chains to.
	started        bool
	first          int64
	anchor         string
	anchorSigned   bool
	lastCheckpoint int64
	keys           []string // "key id (public key)" of the checkpoints checked
	records        int64    // records that passed every check
}

func newChainCheck(trusted []ed25519.PublicKey, cps []audit.Checkpoint) *chainCheck {
	cc := &chainCheck{v: audit.Verifier{Trusted: trusted}, pending: map[int64][]audit.Checkpoint{}}
	for _, c := range cps {
		cc.pending[c.Seq] = append(cc.pending[c.Seq], c)
	}
	return cc
}

// add checks the next record, then the checkpoints of its seq.
func (cc *chainCheck) add(raw []byte) *audit.Problem {
	started := cc.started
	if !started {
		var r struct {
			Seq      int64  `json:"seq"`
			PrevHash string `json:"prev_hash"`
		}
		_ = json.Unmarshal(raw, &r)
		cc.anchor = r.PrevHash
		if r.Seq == 1 {
			// The chain's first record chains to nothing.
			cc.v.Start(0, "")
		}
	}
	if p := cc.v.Add(raw); p != nil {
		return p
	}
	seq, hash := cc.v.Head()
	cc.records++
	if !started {
		cc.started, cc.first = true, seq
		// Checkpoints before the walk: the anchor's is checked against
		// the first record's prev_hash; older ones by signature only.
		var before []int64
		for s := range cc.pending {
			if s < seq {
				before = append(before, s)
			}
		}
		slices.Sort(before)
		for _, s := range before {
			if p := cc.check(s, func(at int64) (string, bool) { return cc.anchor, at == seq-1 && seq > 1 }); p != nil {
				return p
			}
			if s == seq-1 {
				cc.anchorSigned = true
			}
		}
	}
	return cc.check(seq, func(at int64) (string, bool) { return hash, at == seq })
}

func (cc *chainCheck) check(seq int64, hashAt func(int64) (string, bool)) *audit.Problem {
	for _, c := range cc.pending[seq] {
		if p := cc.v.CheckCheckpoint(c, hashAt); p != nil {
			return p
		}
		cc.lastCheckpoint = max(cc.lastCheckpoint, c.Seq)
		if k := fmt.Sprintf("%s (public key %s)", c.KeyID, c.PublicKey); !slices.Contains(cc.keys, k) {
			cc.keys = append(cc.keys, k)
		}
	}
	delete(cc.pending, seq)
	return nil
}

// finish checks what the walk did not reach: a checkpoint past the last
// record means records were removed from the end.
func (cc *chainCheck) finish() *audit.Problem {
	last, _ := cc.v.Head()
	var rest []int64
	for s := range cc.pending {
		rest = append(rest, s)
	}
	slices.Sort(rest)
	for _, s := range rest {
		for _, c := range cc.pending[s] {
			if p := cc.v.CheckCheckpoint(c, func(int64) (string, bool) { return "", false }); p != nil {
				return p
			}
			if c.Seq > last {
				return &audit.Problem{Seq: last + 1, Reason: fmt.Sprintf(
					"missing: a signed checkpoint vouches for seq %d, but the records end at seq %d (records were removed from the end)", c.Seq, last)}
			}
		}
	}
	return nil
}

// verifyResult is verify's outcome (its --json form).
type verifyResult struct {
	OK          bool            `json:"ok"`
	Records     int64           `json:"records"`
	Checkpoints int             `json:"checkpoints"`
	FirstSeq    int64           `json:"first_seq"`
	Head        admin.AuditHead `json:"head"`
	Problem     *audit.Problem  `json:"problem,omitempty"`
	Notes       []string        `json:"notes,omitempty"`
}

func newAuditVerifyCmd(f *adminFlags) *cobra.Command {
	var file string
	var trustKeys []string
	cmd := &cobra.Command{
		Use:   "verify (--file trail.jsonl | --admin-url URL) [--trust-key BASE64 ...]",
		Short: "Verify the audit trail's hash chain and signed checkpoints",
		Long: `Check that no record was changed, removed, inserted or reordered: each
record's hash must cover its content and the previous record's hash, and
each signed checkpoint must hold (a valid Ed25519 signature, and the
record at its seq has its hash).

With --file, checks a file written by gatehouse audit export, offline.
Without it, reads the whole trail through the admin API, page by page.
When the records do not start at seq 1 (retention removed older ones, or
the export starts later), the first record anchors the walk; a checkpoint
at the seq before it vouches for that anchor.

--trust-key (repeatable) pins the gateway's checkpoint key (base64 raw
Ed25519 public key, as checkpoints show it): checkpoints signed by any
other key are refused, and at least one checkpoint must be checked.
Without it, each checkpoint is checked against the key it names.

Prints "OK: …" and exits 0 when everything holds; prints "BROKEN at seq
N (id): reason" for the first problem and exits 5; exits 1 on an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var trusted []ed25519.PublicKey
			for _, k := range trustKeys {
				pub, err := parsePublicKey(k)
				if err != nil {
					return err
				}
				trusted = append(trusted, pub)
			}
			var res verifyResult
			var err error
			if file != "" {
				res, err = verifyFile(file, trusted)
			} else {
				var c *adminClient
				if c, err = f.client(cmd); err != nil {
					return err
				}
				res, err = verifyAPI(cmd.Context(), c, trusted)
			}
			if err != nil {
				return err
			}
			if res.OK && len(trusted) > 0 && res.Checkpoints == 0 {
				res.OK = false
				res.Notes = append([]string{"NOT VERIFIED: --trust-key was given, but no checkpoint covers these records, so nothing signed by a trusted key vouches for them."}, res.Notes...)
			}
			w := cmd.OutOrStdout()
			if f.json {
				raw, _ := json.Marshal(res)
				if err := printJSON(w, raw); err != nil {
					return err
				}
			} else {
				printVerify(w, res, len(trusted) > 0)
			}
			if !res.OK {
				return exitError{code: exitBroken}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "a file written by gatehouse audit export (default: read the trail through the admin API)")
	cmd.Flags().StringArrayVar(&trustKeys, "trust-key", nil, "accept only checkpoints signed by this base64 Ed25519 public key (repeatable)")
	return cmd
}

// parsePublicKey reads a base64 (standard or URL, padded or not) raw
// Ed25519 public key.
func parsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, fmt.Errorf("--trust-key %q is not a base64 Ed25519 public key (32 bytes), as checkpoints' public_key shows it", s)
}

func printVerify(w io.Writer, res verifyResult, pinned bool) {
	if res.Problem != nil {
		p := res.Problem
		switch {
		case p.Seq > 0 && p.ID != "":
			fmt.Fprintf(w, "BROKEN at seq %d (%s): %s\n", p.Seq, clean(p.ID, 60), clean(p.Reason, 500))
		case p.Seq > 0:
			fmt.Fprintf(w, "BROKEN at seq %d: %s\n", p.Seq, clean(p.Reason, 500))
		default:
			fmt.Fprintf(w, "BROKEN: %s\n", clean(p.Reason, 500))
		}
		fmt.Fprintf(w, "(%d records and %d checkpoints verified before it.)\n", res.Records, res.Checkpoints)
		return
	}
	if !res.OK {
		for _, n := range res.Notes {
			fmt.Fprintln(w, n)
		}
		return
	}
	fmt.Fprintf(w, "OK: %d records, %d checkpoints verified, head seq %d hash %s\n", res.Records, res.Checkpoints, res.Head.Seq, dash(res.Head.Hash))
	for _, n := range res.Notes {
		fmt.Fprintln(w, n)
	}
	if res.Checkpoints > 0 && !pinned {
		fmt.Fprintln(w, "Checkpoints were checked against the keys they name: pass --trust-key with the gateway's public key to require its signature.")
	}
}

// result is the outcome of a walk without problems, with notes on what it
// does and does not prove.
func (cc *chainCheck) result() verifyResult {
	seq, hash := cc.v.Head()
	res := verifyResult{OK: true, Records: cc.records, Checkpoints: cc.v.Checked, FirstSeq: cc.first,
		Head: admin.AuditHead{Seq: seq, Hash: hash}}
	if cc.first > 1 {
		n := fmt.Sprintf("The records start at seq %d, not 1 (earlier ones were removed by retention or are not in this export): the first record anchors the walk", cc.first)
		if cc.anchorSigned {
			n += fmt.Sprintf(", and a signed checkpoint at seq %d vouches for that anchor.", cc.first-1)
		} else {
			n += "; no checkpoint vouches for that anchor."
		}
		res.Notes = append(res.Notes, n)
	}
	switch {
	case cc.records == 0:
	case cc.v.Checked == 0:
		res.Notes = append(res.Notes, "No checkpoint: the records are consistent with each other, but nothing signed vouches for them.")
	case cc.lastCheckpoint < seq:
		res.Notes = append(res.Notes, fmt.Sprintf("Records after seq %d are not covered by a checkpoint yet.", cc.lastCheckpoint))
	}
	for _, k := range cc.keys {
		res.Notes = append(res.Notes, "Checkpoints signed by "+k+".")
	}
	return res
}

func (cc *chainCheck) broken(p *audit.Problem) verifyResult {
	res := cc.result()
	res.OK, res.Problem, res.Notes = false, p, nil
	return res
}

// isCheckpointLine reports whether an export line is a checkpoint:
// {"checkpoint": …}. Anything else is a record.
func isCheckpointLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("{"))
	return ok && bytes.HasPrefix(bytes.TrimSpace(rest), []byte(`"checkpoint"`))
}

// eachLine calls fn with each non-blank line of r (numbered from 1),
// however long.
func eachLine(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if ferr := fn(n, bytes.TrimSpace(line)); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// errStop ends eachLine at a problem.
var errStop = errors.New("stop")

// verifyFile checks an export file in two passes: its checkpoints first,
// then its records in order, each checkpoint checked when the walk
// reaches its seq (so that only those records' hashes are kept).
func verifyFile(path string, trusted []ed25519.PublicKey) (verifyResult, error) {
	fh, err := os.Open(path)
	if err != nil {
		return verifyResult{}, err
	}
	defer fh.Close()
	var cps []audit.Checkpoint
	var bad *audit.Problem
	err = eachLine(fh, func(n int, line []byte) error {
		if !isCheckpointLine(line) {
			return nil
		}
		var cl checkpointLine
		if err := json.Unmarshal(line, &cl); err != nil || cl.Checkpoint == nil {
			bad = &audit.Problem{Reason: fmt.Sprintf("line %d is neither a record nor a checkpoint", n)}
			return errStop
		}
		cps = append(cps, audit.Checkpoint(*cl.Checkpoint))
		return nil
	})
	cc := newChainCheck(trusted, cps)
	switch {
	case bad != nil:
		return cc.broken(bad), nil
	case err != nil:
		return verifyResult{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return verifyResult{}, err
	}
	err = eachLine(fh, func(_ int, line []byte) error {
		if isCheckpointLine(line) {
			return nil
		}
		if bad = cc.add(line); bad != nil {
			return errStop
		}
		return nil
	})
	switch {
	case bad != nil:
		return cc.broken(bad), nil
	case err != nil:
		return verifyResult{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if p := cc.finish(); p != nil {
		return cc.broken(p), nil
	}
	return cc.result(), nil
}

// verifyAPI checks the trail through the admin API, up to the head it
// finds first (records committed meanwhile are left for the next run).
func verifyAPI(ctx context.Context, c *adminClient, trusted []ed25519.PublicKey) (verifyResult, error) {
	head, err := fetchHead(ctx, c)
	if err != nil {
		return verifyResult{}, err
	}
	var cc *chainCheck
	q := url.Values{"order": {"asc"}, "limit": {strconv.Itoa(auditPageSize)}, "before": {strconv.FormatInt(head.Seq+1, 10)}}
	var after int64
	for head.Seq > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
		page, err := fetchRecords(ctx, c, q)
		if err != nil {
			return verifyResult{}, err
		}
		if cc == nil {
			// The checkpoints from the anchor on, once the first record
			// is known.
			from := int64(1)
			if len(page.Records) > 0 {
				from = max(recordSeq(page.Records[0])-1, 1)
			}
			list, err := fetchCheckpoints(ctx, c, from, head.Seq)
			if err != nil {
				return verifyResult{}, err
			}
			cps := make([]audit.Checkpoint, 0, len(list))
			for _, cp := range list {
				cps = append(cps, audit.Checkpoint(cp))
			}
			cc = newChainCheck(trusted, cps)
		}
		for _, raw := range page.Records {
			if p := cc.add(raw); p != nil {
				return cc.broken(p), nil
			}
		}
		if page.Next == nil {
			break
		}
		after = *page.Next
	}
	if cc == nil {
		cc = newChainCheck(trusted, nil)
	}
	if cc.records == 0 && head.Seq > 0 {
		return cc.allPurged(head), nil
	}
	if p := cc.finish(); p != nil {
		return cc.broken(p), nil
	}
	last, hash := cc.v.Head()
	switch {
	case last < head.Seq:
		return cc.broken(&audit.Problem{Seq: last + 1, Reason: fmt.Sprintf("missing: the chain's head is seq %d, but the records end at seq %d (records were removed from the end)", head.Seq, last)}), nil
	case hash != head.Hash:
		return cc.broken(&audit.Problem{Seq: last, Reason: "the chain's head has another hash than the last record (the chain was rewritten)"}), nil
	}
	return cc.result(), nil
}

// allPurged is the result for a trail whose head is past every record:
// retention removed them all (or they were deleted). The checkpoints are
// checked, the one at the head against the head's hash.
func (cc *chainCheck) allPurged(head admin.AuditHead) verifyResult {
	var rest []int64
	for s := range cc.pending {
		rest = append(rest, s)
	}
	slices.Sort(rest)
	for _, s := range rest {
		if p := cc.check(s, func(at int64) (string, bool) { return head.Hash, at == head.Seq }); p != nil {
			return cc.broken(p)
		}
	}
	res := cc.result()
	res.Head = head
	res.Notes = append([]string{fmt.Sprintf("No records are stored, though the chain's head is seq %d: retention removed them all, or they were deleted.", head.Seq)}, res.Notes...)
	return res
}

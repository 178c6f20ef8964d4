// Package policy decides what each caller may see and call: bundles of
// grants per role, organisation- and team-wide rules, CEL conditions over
// the caller, the tool, its arguments, the request and the session, and
// workflow rules over what a session has already read. A Policy is
// compiled once per configuration and is immutable; the same Decide
// filters lists and guards calls, and every decision carries its reason.
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"gatehouse/internal/config"
)

// Kinds of target.
const (
	KindTool     = "tool"
	KindPrompt   = "prompt"
	KindResource = "resource"
)

type mode uint8

const (
	enforce mode = iota
	monitor
)

func parseMode(s string, parent mode) mode {
	switch s {
	case "monitor":
		return monitor
	case "enforce":
		return enforce
	}
	return parent
}

func (m mode) String() string {
	if m == monitor {
		return "monitor"
	}
	return "enforce"
}

// Policy is a compiled policy section. It is safe for concurrent use.
type Policy struct {
	// Version identifies this policy's content; approvals are bound to it.
	Version string
	// Approvals bound how the calls this policy holds wait for a decision
	// (they are not part of Version).
	Approvals config.Approvals

	mode      mode
	facts     []*fact
	org       *ruleSet
	teams     map[string]*ruleSet
	bundles   map[string]*bundle
	bundleSeq []*bundle // sorted by name
	workflows []*workflow

	scopes sync.Map // caller key -> *scope

	factsMu sync.RWMutex
	tfacts  map[string]map[string]*factOverrides // upstream -> tool -> operator facts
	nfacts  int
}

type ruleSet struct {
	origin string // "organisation", "team support", "bundle support (v3)"
	allow  []*rule
	deny   []*rule
}

type bundle struct {
	name    string
	members config.Members
	set     *ruleSet
	// auditArgs is how records keep call arguments the bundle grants:
	// full, masked (default), hashed or omitted.
	auditArgs string
}

type rule struct {
	name    string
	origin  string
	bundle  string // the bundle the rule belongs to ("" for organisation and teams)
	path    string // configuration path, for messages
	servers []string
	tools   []glob
	prompts []glob
	res     []glob
	kinds   uint8 // bit per kind the rule applies to
	class   string
	labels  []string
	when    *condition
	reason  string
	mode    mode
}

type workflow struct {
	name   string
	after  []string
	calls  []string
	action string
	reason string
	mode   mode
}

type fact struct {
	upstream    string
	tools       []glob
	labels      []string
	readOnly    *bool
	destructive *bool
}

// glob matches names. Patterns compile to a fast form when they are a
// literal, a prefix ("get_*"), a suffix ("*_admin") or "*": list filtering
// runs every rule's globs against every tool, and path.Match costs ten
// times more. A pattern "upstream/name" matches the two parts separately.
type glob struct {
	up   *globPart // nil: any upstream
	name globPart
}

type globPart struct {
	kind uint8 // globExact, globPrefix, globSuffix, globAny, globGeneral, globURI
	s    string
	re   *regexp.Regexp // globURI
}

const (
	globExact = iota
	globPrefix
	globSuffix
	globAny
	globGeneral
	globURI
)

func newGlobPart(p string) globPart {
	const meta = `*?[\`
	switch {
	case p == "*":
		return globPart{kind: globAny}
	case !strings.ContainsAny(p, meta):
		return globPart{kind: globExact, s: p}
	case strings.HasSuffix(p, "*") && !strings.ContainsAny(p[:len(p)-1], meta):
		return globPart{kind: globPrefix, s: p[:len(p)-1]}
	case strings.HasPrefix(p, "*") && !strings.ContainsAny(p[1:], meta):
		return globPart{kind: globSuffix, s: p[1:]}
	}
	return globPart{kind: globGeneral, s: p}
}

func (g globPart) match(s string) bool {
	switch g.kind {
	case globURI:
		return g.re.MatchString(s)
	case globExact:
		return s == g.s
	case globPrefix:
		return strings.HasPrefix(s, g.s)
	case globSuffix:
		return strings.HasSuffix(s, g.s)
	case globAny:
		return true
	}
	ok, _ := path.Match(g.s, s)
	return ok
}

// newGlob compiles a name pattern; withUpstream allows "upstream/name".
func newGlob(p string, withUpstream bool) glob {
	if withUpstream {
		if up, name, ok := strings.Cut(p, "/"); ok {
			u := newGlobPart(up)
			return glob{up: &u, name: newGlobPart(name)}
		}
	}
	return glob{name: newGlobPart(p)}
}

func (g glob) match(upstream, name string) bool {
	if g.up != nil && !g.up.match(upstream) {
		return false
	}
	return g.name.match(name)
}

// upstreamMayMatch reports whether the glob can match a name of upstream.
func (g glob) upstreamMayMatch(upstream string) bool { return g.up == nil || g.up.match(upstream) }

const (
	bitTool = 1 << iota
	bitPrompt
	bitResource
)

func kindBit(kind string) uint8 {
	switch kind {
	case KindTool:
		return bitTool
	case KindPrompt:
		return bitPrompt
	}
	return bitResource
}

// Compile compiles cfg's policy section; it returns nil, nil when there is
// none. Errors are config.Problems located in the configuration file.
func Compile(cfg *config.Config) (*Policy, error) {
	pc := cfg.Policy
	if pc == nil {
		return nil, nil
	}
	var problems config.Problems
	p := &Policy{Approvals: pc.Approvals, mode: parseMode(pc.Mode, enforce), teams: map[string]*ruleSet{}, bundles: map[string]*bundle{},
		tfacts: map[string]map[string]*factOverrides{}}
	for _, f := range pc.Tools {
		if f == nil {
			continue
		}
		p.facts = append(p.facts, &fact{upstream: f.Upstream, tools: globs(f.Tools, false), labels: f.Labels, readOnly: f.ReadOnly, destructive: f.Destructive})
	}
	compileSet := func(origin, at string, rs *config.RuleSet, parent mode) *ruleSet {
		m := parseMode(rs.Mode, parent)
		out := &ruleSet{origin: origin}
		for _, k := range []struct {
			kind  string
			rules []*config.Rule
			dst   *[]*rule
		}{{"allow", rs.Allow, &out.allow}, {"deny", rs.Deny, &out.deny}} {
			for i, r := range k.rules {
				if r == nil {
					continue
				}
				rp := fmt.Sprintf("%s.%s[%d]", at, k.kind, i)
				cr := &rule{name: r.Name, origin: origin, path: rp, servers: r.Servers, tools: globs(r.Tools, true),
					prompts: globs(r.Prompts, true), res: uriGlobs(r.Resources), class: r.Class, labels: r.Labels,
					reason: r.Reason, mode: parseMode(r.Mode, m)}
				if len(r.Tools) > 0 {
					cr.kinds |= bitTool
				}
				if len(r.Prompts) > 0 {
					cr.kinds |= bitPrompt
				}
				if len(r.Resources) > 0 {
					cr.kinds |= bitResource
				}
				if cr.kinds == 0 {
					cr.kinds = bitTool | bitPrompt | bitResource
				}
				if r.When != "" {
					c, err := compileCondition(r.When)
					if err != nil {
						problems = append(problems, cfg.ProblemAt(rp+".when", "condition does not compile: %v", err))
					}
					cr.when = c
				}
				*k.dst = append(*k.dst, cr)
			}
		}
		return out
	}
	if pc.Organisation != nil {
		p.org = compileSet("organisation", "policy.organisation", pc.Organisation, p.mode)
	} else {
		p.org = &ruleSet{origin: "organisation"}
	}
	for name, rs := range pc.Teams {
		if rs != nil {
			p.teams[name] = compileSet("team "+name, "policy.teams."+name, rs, p.mode)
		}
	}
	for name, b := range pc.Bundles {
		if b == nil {
			continue
		}
		origin := "bundle " + name
		if b.Version > 0 {
			origin += fmt.Sprintf(" (v%d)", b.Version)
		}
		cb := &bundle{name: name, members: b.Members,
			set: compileSet(origin, "policy.bundles."+name, &config.RuleSet{Mode: b.Mode, Allow: b.Allow, Deny: b.Deny}, p.mode)}
		for _, r := range append(cb.set.allow, cb.set.deny...) {
			r.bundle = name
		}
		cb.auditArgs = "masked"
		if v, ok := b.Audit["args"].(string); ok && v != "" {
			cb.auditArgs = v
		}
		p.bundles[name] = cb
		p.bundleSeq = append(p.bundleSeq, cb)
	}
	sort.Slice(p.bundleSeq, func(i, j int) bool { return p.bundleSeq[i].name < p.bundleSeq[j].name })
	for _, w := range pc.Workflows {
		if w == nil {
			continue
		}
		p.workflows = append(p.workflows, &workflow{name: w.Name, after: w.After, calls: w.Calls, action: w.Action,
			reason: w.Reason, mode: parseMode(w.Mode, p.mode)})
	}
	if len(problems) > 0 {
		return nil, problems
	}
	// The version is a digest of the section as configured: any change to
	// a rule, a bundle's membership or a fact makes a new version.
	versioned := *pc
	versioned.Record, versioned.Approvals = "", config.Approvals{} // do not change what is allowed
	b, _ := json.Marshal(versioned)
	sum := sha256.Sum256(b)
	p.Version = hex.EncodeToString(sum[:6])
	return p, nil
}

func globs(ps []string, withUpstream bool) []glob {
	out := make([]glob, len(ps))
	for i, p := range ps {
		out[i] = newGlob(p, withUpstream)
	}
	return out
}

// uriGlobs compiles resource URI patterns. Unlike names, URIs contain
// '/', and a pattern such as "crm://customers/*" is meant to cover what is
// under it: in URI globs '*' matches any run of characters, '/' included,
// '?' one character, and [...] a class.
func uriGlobs(ps []string) []glob {
	out := make([]glob, len(ps))
	for i, p := range ps {
		if !strings.ContainsAny(p, `*?[\`) {
			out[i] = glob{name: globPart{kind: globExact, s: p}}
			continue
		}
		out[i] = glob{name: globPart{kind: globURI, re: uriPattern(p)}}
	}
	return out
}

func uriPattern(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '\\':
			if i+1 < len(p) {
				i++
				b.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		case '[':
			end := strings.IndexByte(p[i+1:], ']')
			if end < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := p[i+1 : i+1+end]
			b.WriteString("[")
			b.WriteString(strings.ReplaceAll(class, `\`, `\\`))
			b.WriteString("]")
			i += end + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		// Validation accepted the pattern as a glob; one that is no valid
		// class here matches nothing rather than everything.
		return regexp.MustCompile(`^\b\B$`)
	}
	return re
}

// Bundles lists the bundle names, sorted.
func (p *Policy) Bundles() []string {
	out := make([]string, len(p.bundleSeq))
	for i, b := range p.bundleSeq {
		out[i] = b.name
	}
	return out
}

// AuditMode returns how audit records keep the arguments of calls the
// bundle granted: full, masked, hashed or omitted (masked by default, and
// for calls no bundle granted).
func (p *Policy) AuditMode(bundle string) string {
	if b := p.bundles[bundle]; b != nil {
		return b.auditArgs
	}
	return "masked"
}

// HasBundle reports whether the policy defines bundle name.
func (p *Policy) HasBundle(name string) bool { _, ok := p.bundles[name]; return ok }

// ApprovalsUsed reports whether some workflow rule may hold calls.
func (p *Policy) ApprovalsUsed() bool {
	return slices.ContainsFunc(p.workflows, func(w *workflow) bool { return w.action == "approve" })
}

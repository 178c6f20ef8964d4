package policy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Effect is a decision's outcome.
type Effect string

const (
	Allow   Effect = "allow"
	Deny    Effect = "deny"
	Approve Effect = "approve" // hold the call until a person approves it
)

// Decision is the outcome of one request and why.
type Decision struct {
	Effect Effect
	// WouldDeny is set when monitor mode let through a request that an
	// enforced policy would have denied or held; Rule and Reason then
	// describe that rule.
	WouldDeny bool
	Rule      string // the deciding rule ("" for the default denial)
	Origin    string // the rule's set: "organisation", "team support", "bundle support (v3)", "workflow"
	Bundle    string // the bundle of the rule that allowed the request, if any
	Reason    string
	// Bundles are the caller's bundles (membership and grants).
	Bundles []string
	// Labels are the target's data labels (a session accumulates them).
	Labels []string
	// Trace lists every rule considered, when asked for (Explain).
	Trace []Step
}

// Step is one rule considered by a decision.
type Step struct {
	Origin string `json:"origin"`
	Rule   string `json:"rule"`
	Kind   string `json:"kind"`   // allow, deny, workflow
	Result string `json:"result"` // matched, no_match, error, assumed (list)
	Detail string `json:"detail,omitempty"`
	Mode   string `json:"mode"`
}

// Message is the text a denied caller sees: the rule and its reason.
func (d Decision) Message() string {
	var b strings.Builder
	switch {
	case d.Rule == "":
		b.WriteString("denied by policy: ")
	case d.Origin == "workflow":
		fmt.Fprintf(&b, "denied by workflow rule %q: ", d.Rule)
	default:
		fmt.Fprintf(&b, "denied by policy rule %q (%s): ", d.Rule, d.Origin)
	}
	b.WriteString(d.Reason)
	return b.String()
}

// scope is the rule sets that apply to one caller, in evaluation order,
// with the rules indexed by the upstream they can match.
type scope struct {
	sets    []*ruleSet
	bundles []string

	mu    sync.RWMutex
	index map[scopeKey]*scopeRules
}

type scopeKey struct{ kind, upstream string }

// scopeRules are a scope's rules that can match one kind of target of one
// upstream, in evaluation order.
type scopeRules struct {
	deny, allow []*rule
}

// rulesFor returns the rules of the scope that may apply to targets of
// kind on upstream. List filtering asks this once per item; the answer is
// computed once per scope.
func (s *scope) rulesFor(kind, upstream string) *scopeRules {
	k := scopeKey{kind, upstream}
	s.mu.RLock()
	r := s.index[k]
	s.mu.RUnlock()
	if r != nil {
		return r
	}
	r = &scopeRules{}
	bit := kindBit(kind)
	for _, set := range s.sets {
		for _, rl := range set.deny {
			if rl.mayApply(bit, kind, upstream) {
				r.deny = append(r.deny, rl)
			}
		}
	}
	for _, set := range s.sets {
		for _, rl := range set.allow {
			if rl.mayApply(bit, kind, upstream) {
				r.allow = append(r.allow, rl)
			}
		}
	}
	s.mu.Lock()
	if s.index == nil {
		s.index = map[scopeKey]*scopeRules{}
	}
	s.index[k] = r
	s.mu.Unlock()
	return r
}

// mayApply reports whether the rule can match some target of kind on
// upstream.
func (r *rule) mayApply(bit uint8, kind, upstream string) bool {
	if r.kinds&bit == 0 {
		return false
	}
	names := r.namesFor(kind)
	if len(names) == 0 {
		return true
	}
	for _, g := range names {
		if g.upstreamMayMatch(upstream) {
			return true
		}
	}
	return false
}

func (r *rule) namesFor(kind string) []glob {
	switch kind {
	case KindTool:
		return r.tools
	case KindPrompt:
		return r.prompts
	}
	return r.res
}

// callerScope caches a caller's scope under one policy.
type callerScope struct {
	p *Policy
	s *scope
}

func (p *Policy) scopeFor(c *Caller) *scope {
	if cs := c.scope.Load(); cs != nil && cs.p == p {
		return cs.s
	}
	k := c.key()
	var s *scope
	if v, ok := p.scopes.Load(k); ok {
		s = v.(*scope)
	} else {
		s = &scope{sets: []*ruleSet{p.org}}
		if c.Team != "" {
			if t := p.teams[c.Team]; t != nil {
				s.sets = append(s.sets, t)
			}
		}
		for _, b := range p.bundleSeq {
			if b.member(c) {
				s.sets = append(s.sets, b.set)
				s.bundles = append(s.bundles, b.name)
			}
		}
		p.scopes.Store(k, s)
	}
	c.scope.Store(&callerScope{p: p, s: s})
	return s
}

func (b *bundle) member(c *Caller) bool {
	m := &b.members
	switch {
	case m.Everyone:
		return true
	case slices.Contains(c.Grants, b.name):
		return true
	case c.Kind == "agent" && (slices.Contains(m.Agents, c.AgentName) || (c.Team != "" && slices.Contains(m.Teams, c.Team))):
		return true
	case c.Kind == "user" && slices.Contains(m.Users, c.User):
		return true
	}
	// People (calling directly, or driving an agent) bring their groups.
	for _, g := range c.Groups {
		if slices.Contains(m.Groups, g) {
			return true
		}
	}
	return false
}

// factOverrides are the operator's facts about one tool.
type factOverrides struct {
	labels                []string
	readOnly, destructive *bool
}

var noFacts = &factOverrides{}

func (p *Policy) factsFor(t *Target) toolFacts {
	if t.Kind != KindTool {
		return toolFacts{classDone: true}
	}
	p.factsMu.RLock()
	fo := p.tfacts[t.Upstream][t.Name]
	p.factsMu.RUnlock()
	if fo == nil {
		fo = p.computeFacts(t.Upstream, t.Name)
	}
	// The class is worked out when a rule asks for it (see class).
	return toolFacts{labels: fo.labels, fo: fo, t: t}
}

// class works out whether the tool is read-only and destructive, once:
// annotations may change with the upstream's list; the operator's facts do
// not, and win over them. MCP defaults: readOnlyHint false;
// destructiveHint true unless read-only. A list item's annotations are
// read only now, when a rule needs them: most tools of a list never meet
// a rule with a class.
func (f *toolFacts) class() {
	if f.classDone {
		return
	}
	f.classDone = true
	t, fo := f.t, f.fo
	if t == nil {
		return
	}
	if fo == nil {
		fo = noFacts
	}
	if t.raw != nil {
		t.Annotations = AnnotationsOf(t.raw)
		t.raw = nil
	}
	f.readOnly = t.Annotations.ReadOnly != nil && *t.Annotations.ReadOnly
	if fo.readOnly != nil {
		f.readOnly = *fo.readOnly
	}
	f.destructive = !f.readOnly
	if t.Annotations.Destructive != nil && !f.readOnly {
		f.destructive = *t.Annotations.Destructive
	}
	if fo.destructive != nil {
		f.destructive = *fo.destructive
	}
}

func (f *toolFacts) isReadOnly() bool    { f.class(); return f.readOnly }
func (f *toolFacts) isDestructive() bool { f.class(); return f.destructive }

// maxFactsCache bounds the tools whose facts are cached (tool names come
// from upstreams).
const maxFactsCache = 100_000

func (p *Policy) computeFacts(upstream, name string) *factOverrides {
	fo := &factOverrides{}
	for _, f := range p.facts {
		if f.upstream != upstream || !matchAny(f.tools, "", name) {
			continue
		}
		for _, l := range f.labels {
			if !slices.Contains(fo.labels, l) {
				fo.labels = append(fo.labels, l)
			}
		}
		if f.readOnly != nil {
			fo.readOnly = f.readOnly
		}
		if f.destructive != nil {
			fo.destructive = f.destructive
		}
	}
	slices.Sort(fo.labels)
	if fo.labels == nil && fo.readOnly == nil && fo.destructive == nil {
		fo = noFacts
	}
	p.factsMu.Lock()
	if p.nfacts < maxFactsCache {
		m := p.tfacts[upstream]
		if m == nil {
			m = map[string]*factOverrides{}
			p.tfacts[upstream] = m
		}
		if m[name] == nil {
			m[name] = fo
			p.nfacts++
		}
	}
	p.factsMu.Unlock()
	return fo
}

func matchAny(gs []glob, upstream, name string) bool {
	for _, g := range gs {
		if g.match(upstream, name) {
			return true
		}
	}
	return false
}

// applies reports whether r's static part (kind, server, names, class,
// labels) matches the target.
func (r *rule) applies(t *Target, f *toolFacts) bool {
	if r.kinds&kindBit(t.Kind) == 0 {
		return false
	}
	if len(r.servers) > 0 && !slices.Contains(r.servers, t.Server) {
		return false
	}
	if names := r.namesFor(t.Kind); len(names) > 0 && !matchAny(names, t.Upstream, t.Name) {
		return false
	}
	if t.Kind == KindTool {
		switch r.class {
		case "read_only":
			if !f.isReadOnly() {
				return false
			}
		case "write":
			if f.isReadOnly() {
				return false
			}
		case "destructive":
			if !f.isDestructive() {
				return false
			}
		}
		if len(r.labels) > 0 && !slices.ContainsFunc(r.labels, func(l string) bool { return slices.Contains(f.labels, l) }) {
			return false
		}
	} else if r.class != "" || len(r.labels) > 0 {
		return false // classes and labels are facts about tools
	}
	return true
}

// Decide decides in. With explain, the decision lists every rule
// considered. It never fails: a condition that cannot be evaluated denies
// (allow rules: it does not grant; deny rules: it matches) and says so.
func (p *Policy) Decide(in *Input, explain bool) Decision {
	sc := p.scopeFor(in.Caller)
	in.facts = p.factsFor(in.Target)
	rs := sc.rulesFor(in.Target.Kind, in.Target.Upstream)
	in.act = activation{in: in}
	act := &in.act // part of Input: no allocation when no condition runs
	d := Decision{Bundles: sc.bundles, Labels: in.facts.labels}
	var would *Decision // the first monitor-mode denial
	step := func(r *rule, kind, result, detail string) {
		if explain {
			d.Trace = append(d.Trace, Step{Origin: r.origin, Rule: r.name, Kind: kind, Result: result, Detail: detail, Mode: r.mode.String()})
		}
	}

	// Denies first, in every set: a deny anywhere wins over any allow, so
	// no team or bundle can override the organisation's.
	for _, r := range rs.deny {
		if !r.applies(in.Target, &in.facts) {
			continue
		}
		matched, detail := true, ""
		if r.when != nil {
			if in.List && r.when.uses["args"] {
				step(r, "deny", "skipped", "reads args: decided per call")
				continue
			}
			ok, err := in.eval(r.when, act)
			switch {
			case err != nil:
				detail = fmt.Sprintf("condition could not be evaluated (%v): denied (fail closed)", err)
			case !ok:
				matched = false
			}
		}
		if !matched {
			step(r, "deny", "no_match", "")
			continue
		}
		reason := r.reason
		if detail != "" {
			reason = detail
		} else if reason == "" {
			reason = "the rule denies this"
		}
		step(r, "deny", "matched", detail)
		res := Decision{Effect: Deny, Rule: r.name, Origin: r.origin, Reason: reason}
		if r.mode == monitor {
			if would == nil {
				would = &res
			}
			continue
		}
		return d.finish(res)
	}

	// Allows: any match grants.
	var evalErr string
	for _, r := range rs.allow {
		if !r.applies(in.Target, &in.facts) {
			continue
		}
		if r.when != nil {
			if in.List && r.when.uses["args"] {
				step(r, "allow", "assumed", "reads args: decided per call")
				return d.allow(r, would)
			}
			ok, err := in.eval(r.when, act)
			if err != nil {
				step(r, "allow", "error", err.Error())
				if evalErr == "" {
					evalErr = fmt.Sprintf("rule %q (%s) could not be evaluated (%v), so it grants nothing (fail closed)", r.name, r.origin, err)
				}
				continue
			}
			if !ok {
				step(r, "allow", "no_match", "")
				continue
			}
		}
		step(r, "allow", "matched", "")
		return p.granted(in, d, r, would, explain)
	}
	reason := "no rule allows this for the caller"
	if evalErr != "" {
		reason = evalErr
	}
	res := Decision{Effect: Deny, Reason: reason}
	if p.mode == monitor {
		if would == nil {
			would = &res
		}
		return p.granted(in, d, nil, would, explain)
	}
	return d.finish(res)
}

// granted finishes a decision whose request an allow rule (or monitor
// mode) lets through: workflow rules then decide whether it may go on.
// They come after the allows, so that an approver can never run a call no
// rule grants.
func (p *Policy) granted(in *Input, d Decision, r *rule, would *Decision, explain bool) Decision {
	if in.Target.Kind == KindTool && !in.List {
		for _, w := range p.workflows {
			read := firstShared(w.after, in.Session.Labels)
			guarded := firstShared(w.calls, in.facts.labels)
			if read == "" || guarded == "" {
				if explain {
					d.Trace = append(d.Trace, Step{Origin: "workflow", Rule: w.name, Kind: "workflow", Result: "no_match", Mode: w.mode.String()})
				}
				continue
			}
			reason := w.reason
			if reason == "" {
				reason = fmt.Sprintf("this session has read %s data; calling a %s tool", read, guarded)
				if w.action == "approve" {
					reason += " needs a person's approval"
				} else {
					reason += " is not allowed"
				}
			}
			if explain {
				d.Trace = append(d.Trace, Step{Origin: "workflow", Rule: w.name, Kind: "workflow", Result: "matched", Detail: w.action, Mode: w.mode.String()})
			}
			eff := Deny
			if w.action == "approve" {
				eff = Approve
			}
			res := Decision{Effect: eff, Rule: w.name, Origin: "workflow", Reason: reason}
			if w.mode == monitor {
				if would == nil {
					would = &res
				}
				continue
			}
			return d.finish(res)
		}
	}
	return d.allow(r, would)
}

func (d Decision) finish(res Decision) Decision {
	d.Effect, d.Rule, d.Origin, d.Reason = res.Effect, res.Rule, res.Origin, res.Reason
	return d
}

func (d Decision) allow(r *rule, would *Decision) Decision {
	d.Effect = Allow
	if r != nil {
		d.Rule, d.Origin, d.Reason, d.Bundle = r.name, r.origin, "allowed", r.bundle
	}
	if would != nil {
		d.WouldDeny = true
		d.Rule, d.Origin, d.Reason = would.Rule, would.Origin, would.Reason
	}
	return d
}

func firstShared(a, b []string) string {
	for _, x := range a {
		if slices.Contains(b, x) {
			return x
		}
	}
	return ""
}

// eval evaluates c, reusing across a list's items the result of a
// condition that reads neither tool nor args.
func (in *Input) eval(c *condition, act *activation) (bool, error) {
	if !in.List || c.uses["tool"] || c.uses["args"] {
		return c.eval(act)
	}
	if r, ok := in.memo[c]; ok {
		return r.ok, r.err
	}
	ok, err := c.eval(act)
	if in.memo == nil {
		in.memo = map[*condition]memoResult{}
	}
	in.memo[c] = memoResult{ok, err}
	return ok, err
}

package config

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// Policy defaults.
const (
	DefaultApprovalWait = 2 * time.Minute
	DefaultApprovalTTL  = time.Hour
)

func applyPolicyDefaults(p *Policy) {
	if p == nil {
		return
	}
	if p.Mode == "" {
		p.Mode = "enforce"
	}
	if p.Approvals.Wait == 0 {
		p.Approvals.Wait = Duration(DefaultApprovalWait)
	}
	if p.Approvals.TTL == 0 {
		p.Approvals.TTL = Duration(DefaultApprovalTTL)
	}
}

// validatePolicy checks the policy section's structure and references.
// Conditions (CEL) are compiled by internal/policy, which reports with
// ProblemAt.
func (l *loader) validatePolicy(c *Config) {
	p := c.Policy
	if p == nil {
		return
	}
	l.checkMode("policy.mode", p.Mode, false)
	if p.Approvals.TTL < p.Approvals.Wait {
		l.addAt("policy.approvals.ttl", "must be at least approvals.wait (%s)", p.Approvals.Wait.Std())
	}
	for i, f := range p.Tools {
		fp := fmt.Sprintf("policy.tools[%d]", i)
		if f == nil {
			l.addAt(fp, "empty entry")
			continue
		}
		if _, ok := c.Upstreams[f.Upstream]; !ok {
			l.addAt(fp+".upstream", "unknown upstream %q (declared: %s)", f.Upstream, strings.Join(sortedKeys(c.Upstreams), ", "))
		}
		if len(f.Tools) == 0 {
			l.addAt(fp+".tools", "name at least one tool (globs allowed)")
		}
		l.checkGlobs(fp+".tools", f.Tools)
		l.checkLabels(fp+".labels", f.Labels)
	}
	if p.Organisation != nil {
		l.validateRuleSet(c, "policy.organisation", p.Organisation)
	}
	teams := map[string]bool{}
	for _, t := range c.Identity.Teams {
		if t != nil {
			teams[t.Name] = true
		}
	}
	for _, name := range sortedKeys(p.Teams) {
		tp := joinPath("policy.teams", name)
		if !teams[name] {
			l.addAt(tp, "unknown team %q (declare it under identity.teams)", name)
		}
		if p.Teams[name] == nil {
			continue
		}
		l.validateRuleSet(c, tp, p.Teams[name])
	}
	for _, name := range sortedKeys(p.Bundles) {
		bp := joinPath("policy.bundles", name)
		if !segmentRE.MatchString(name) {
			l.addAt(bp, "bundle name %q must be 1-64 characters of letters, digits, '_', '-' and '.'", name)
		}
		b := p.Bundles[name]
		if b == nil {
			l.addAt(bp, "empty bundle")
			continue
		}
		if b.Version < 0 {
			l.addAt(bp+".version", "must not be negative")
		}
		for i, t := range b.Members.Teams {
			if !teams[t] {
				l.addAt(fmt.Sprintf("%s.members.teams[%d]", bp, i), "unknown team %q (declare it under identity.teams)", t)
			}
		}
		l.validateRuleSet(c, bp, &RuleSet{Mode: b.Mode, Allow: b.Allow, Deny: b.Deny})
		for k, v := range b.Audit {
			switch k {
			case "args":
				switch v {
				case "full", "masked", "hashed", "omitted":
				default:
					l.addAt(bp+".audit.args", "unknown mode %v (full, masked, hashed, omitted)", v)
				}
			default:
				l.addAt(bp+".audit."+k, "unknown audit setting %q (args)", k)
			}
		}
	}
	seen := map[string]int{}
	for i, w := range p.Workflows {
		wp := fmt.Sprintf("policy.workflows[%d]", i)
		if w == nil {
			l.addAt(wp, "empty entry")
			continue
		}
		if w.Name == "" {
			l.addAt(wp, "missing name")
		} else if j, dup := seen[w.Name]; dup {
			l.addAt(wp+".name", "workflow %q is also policy.workflows[%d]", w.Name, j)
		} else {
			seen[w.Name] = i
		}
		if len(w.After) == 0 {
			l.addAt(wp+".after", "name at least one data label a session must have read")
		}
		if len(w.Calls) == 0 {
			l.addAt(wp+".calls", "name at least one data label of the tools this rule guards")
		}
		l.checkLabels(wp+".after", w.After)
		l.checkLabels(wp+".calls", w.Calls)
		switch w.Action {
		case "deny", "approve":
		default:
			l.addAt(wp+".action", "unknown action %q (deny, approve)", w.Action)
		}
		l.checkMode(wp+".mode", w.Mode, true)
	}
}

func (l *loader) validateRuleSet(c *Config, p string, rs *RuleSet) {
	l.checkMode(p+".mode", rs.Mode, true)
	for _, kr := range []struct {
		kind  string
		rules []*Rule
	}{{"allow", rs.Allow}, {"deny", rs.Deny}} {
		kind, rules := kr.kind, kr.rules
		names := map[string]int{}
		for i, r := range rules {
			rp := fmt.Sprintf("%s.%s[%d]", p, kind, i)
			if r == nil {
				l.addAt(rp, "empty rule")
				continue
			}
			if r.Name == "" {
				l.addAt(rp, "missing name (denials and explanations name the rule)")
			} else if j, dup := names[r.Name]; dup {
				l.addAt(rp+".name", "rule %q is also %s[%d]", r.Name, kind, j)
			} else {
				names[r.Name] = i
			}
			for k, s := range r.Servers {
				if _, ok := c.Servers[s]; !ok {
					l.addAt(fmt.Sprintf("%s.servers[%d]", rp, k), "unknown virtual server %q (declared: %s)", s, strings.Join(sortedKeys(c.Servers), ", "))
				}
			}
			l.checkGlobs(rp+".tools", r.Tools)
			l.checkGlobs(rp+".prompts", r.Prompts)
			l.checkGlobs(rp+".resources", r.Resources)
			l.checkLabels(rp+".labels", r.Labels)
			switch r.Class {
			case "", "read_only", "write", "destructive":
			default:
				l.addAt(rp+".class", "unknown class %q (read_only, write, destructive)", r.Class)
			}
			l.checkMode(rp+".mode", r.Mode, true)
		}
	}
}

func (l *loader) checkMode(p, mode string, emptyOK bool) {
	switch mode {
	case "enforce", "monitor":
	case "":
		if !emptyOK {
			l.addAt(p, "missing mode (enforce, monitor)")
		}
	default:
		l.addAt(p, "unknown mode %q (enforce, monitor)", mode)
	}
}

func (l *loader) checkGlobs(p string, globs []string) {
	for i, g := range globs {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			l.addAt(fmt.Sprintf("%s[%d]", p, i), "invalid glob %q", g)
		}
	}
}

func (l *loader) checkLabels(p string, labels []string) {
	for i, s := range labels {
		if !segmentRE.MatchString(s) {
			l.addAt(fmt.Sprintf("%s[%d]", p, i), "label %q must be 1-64 characters of letters, digits, '_', '-' and '.'", s)
		}
	}
}

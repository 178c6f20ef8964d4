// Package secrets finds secrets and credentials in text: API keys, tokens,
// private keys, passwords in connection strings and configuration.
//
// The rules are gitleaks' default rule set (github.com/zricethezav/gitleaks/v8,
// read as data from the TOML it embeds) plus rules for Gatehouse's own
// credentials. Regexes run on RE2 (github.com/wasilibs/go-re2, no cgo), behind
// a keyword prefilter: one Aho–Corasick pass over the text selects the rules
// whose keywords occur, and most rules then run only on a window around each
// keyword occurrence (analysis.go explains when that is exact).
// Findings pass the rule's entropy minimum and gitleaks' allowlists and stop
// words, as in gitleaks; path allowlists and path-scoped rules do not apply
// to text that has no path.
package secrets

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"gatehouse/internal/inspect"
)

// Options configures a Detector. The zero value enables every rule.
type Options struct {
	// DisabledRules lists rule ids (e.g. "generic-api-key") not to run.
	DisabledRules []string
}

// Detector finds secrets. It is safe for concurrent use.
type Detector struct {
	rules    []*rule
	byID     map[string]*rule
	keywords *keywordMatcher
	byKw     [][]int32 // keyword index -> rules that use it
	always   []int32   // rules without keywords: run on every text
	global   *allowlist
	stats    Stats
	pool     sync.Pool // *scratch

	wholeText bool // tests: run every selected rule over the whole text
}

// Stats describes the compiled rule set.
type Stats struct {
	Rules         int      // rules that run
	Windowed      int      // of which run on windows around keyword hits
	WholeText     []string // rules run over the whole text when a keyword occurs
	NoKeywords    []string // rules run on every text
	NotRE2        []string // gitleaks rules RE2 cannot compile (skipped)
	PathOnly      []string // gitleaks rules that match file paths only (skipped)
	PathScoped    []string // gitleaks rules that only apply to some file paths (skipped)
	Disabled      []string // rules disabled by Options
	GitleaksRules int      // rules in the gitleaks config
}

var _ inspect.Detector = (*Detector)(nil)

// New compiles the rules.
func New(opts Options) (*Detector, error) {
	cfg, err := loadGitleaksConfig()
	if err != nil {
		return nil, err
	}
	disabled := map[string]bool{}
	for _, id := range opts.DisabledRules {
		if !isRuleID(cfg, id) {
			return nil, fmt.Errorf("disabled rule %q: no rule has that id", id)
		}
		disabled[id] = true
	}
	d := &Detector{}
	d.stats.GitleaksRules = len(cfg.Rules)
	add := func(src ruleSource, kind ruleKind, conf inspect.Confidence) error {
		if disabled[src.id] {
			d.stats.Disabled = append(d.stats.Disabled, src.id)
			return nil
		}
		r, err := compileRule(src, kind, conf)
		if err != nil {
			return err
		}
		d.rules = append(d.rules, r)
		return nil
	}
	for _, tr := range cfg.Rules {
		switch {
		case tr.Regex == "":
			d.stats.PathOnly = append(d.stats.PathOnly, tr.ID)
			continue
		case tr.Path != "":
			d.stats.PathScoped = append(d.stats.PathScoped, tr.ID)
			continue
		case tr.SkipReport:
			continue
		}
		als := append(tr.Allowlists, extraAllowlists[tr.ID]...)
		if tr.Allowlist != nil {
			als = append(als, *tr.Allowlist)
		}
		src := ruleSource{id: tr.ID, regex: tr.Regex, secretGroup: tr.SecretGroup,
			entropy: tr.Entropy, keywords: tr.Keywords, allowlists: als}
		kind, conf := classify(tr.ID, tr.Regex, tr.Entropy)
		if err := add(src, kind, conf); err != nil {
			// RE2 lacks a few Perl features; gitleaks' own regexes may use
			// them. Such rules are skipped and reported in Stats.
			d.stats.NotRE2 = append(d.stats.NotRE2, tr.ID)
		}
	}
	for _, src := range extraRules {
		if err := add(src, kindFormat, inspect.High); err != nil {
			return nil, fmt.Errorf("compiling rule %s: %w", src.id, err)
		}
	}
	if err := add(passwordRule, kindContextual, inspect.Medium); err != nil {
		return nil, fmt.Errorf("compiling rule %s: %w", passwordRule.id, err)
	}
	for _, src := range gatehouseRules {
		if err := add(src, kindGatehouse, inspect.High); err != nil {
			return nil, fmt.Errorf("compiling rule %s: %w", src.id, err)
		}
	}

	global := cfg.Allowlist
	for _, a := range cfg.Allowlists {
		global.Regexes = append(global.Regexes, a.Regexes...)
		global.StopWords = append(global.StopWords, a.StopWords...)
	}
	global.Paths, global.Commits, global.RegexTarget = nil, nil, ""
	if d.global, err = compileAllowlist(global); err != nil {
		return nil, fmt.Errorf("compiling the global allowlist: %w", err)
	}

	// One automaton over every keyword of every rule.
	kwIndex := map[string]int{}
	var kws []string
	for i, r := range d.rules {
		if len(r.keywords) == 0 {
			d.always = append(d.always, int32(i))
			d.stats.NoKeywords = append(d.stats.NoKeywords, r.id)
			continue
		}
		if r.windowed {
			d.stats.Windowed++
		} else {
			d.stats.WholeText = append(d.stats.WholeText, r.id)
		}
		for _, k := range r.keywords {
			j, ok := kwIndex[k]
			if !ok {
				j = len(kws)
				kwIndex[k] = j
				kws = append(kws, k)
				d.byKw = append(d.byKw, nil)
			}
			d.byKw[j] = append(d.byKw[j], int32(i))
		}
	}
	d.keywords = newKeywordMatcher(kws)
	d.byID = make(map[string]*rule, len(d.rules))
	for _, r := range d.rules {
		d.byID[r.id] = r
	}
	d.stats.Rules = len(d.rules)
	n := len(d.rules)
	d.pool.New = func() any { return &scratch{rules: make([]ruleState, n)} }
	return d, nil
}

// isRuleID reports whether id names a gitleaks rule (run or skipped) or
// one of the detector's own.
func isRuleID(cfg *gitleaksConfig, id string) bool {
	if id == passwordRule.id {
		return true
	}
	for _, src := range slices.Concat(extraRules, gatehouseRules) {
		if src.id == id {
			return true
		}
	}
	return slices.ContainsFunc(cfg.Rules, func(r tomlRule) bool { return r.ID == id })
}

// Name is the detector's name in configuration and metrics.
func (d *Detector) Name() string { return "secrets" }

// Stats describes the compiled rule set.
func (d *Detector) Stats() Stats {
	s := d.stats
	for _, l := range []*[]string{&s.WholeText, &s.NoKeywords, &s.NotRE2, &s.PathOnly, &s.PathScoped, &s.Disabled} {
		*l = slices.Clone(*l)
	}
	return s
}

// span is a byte range of the text.
type span struct{ lo, hi int }

// ruleState is one rule's part of a scan.
type ruleState struct {
	active bool
	full   bool   // run over the whole text
	wins   []span // else over these windows, in order
	// Right-scan state of the last window (see extendRight).
	anchor, stop, count int
}

// scratch is the per-scan state, pooled so a scan allocates nothing.
type scratch struct {
	hits   []hit
	rules  []ruleState
	active []int32
}

// Scan appends the secrets in text to dst.
func (d *Detector) Scan(text string, dst []inspect.Finding) []inspect.Finding {
	if text == "" {
		return dst
	}
	sc := d.pool.Get().(*scratch)
	defer d.release(sc)

	sc.hits = d.keywords.find(text, sc.hits[:0])
	if len(sc.hits) == 0 && len(d.always) == 0 {
		return dst
	}
	ascii := isASCII(text)
	// The rules' (?i) folds the Kelvin sign to k and the long s to s, which
	// the window analysis (ASCII folding) does not foresee: a match may
	// then reach past a hit's window, so rules run over the whole text.
	full := d.wholeText || (!ascii && (strings.Contains(text, "\u212A") || strings.Contains(text, "\u017F")))
	for _, h := range sc.hits {
		start := h.end - d.keywords.lens[h.keyword]
		for _, ri := range d.byKw[h.keyword] {
			st := &sc.rules[ri]
			if !st.active {
				st.active = true
				sc.active = append(sc.active, ri)
			}
			if st.full {
				continue
			}
			r := d.rules[ri]
			if !r.windowed || full {
				st.full = true
				continue
			}
			if r.follow != nil && !r.follow.ok(text[h.end:]) {
				continue
			}
			addWindow(r, st, text, start, h.end, ascii)
		}
	}
	for _, ri := range d.always {
		st := &sc.rules[ri]
		if !st.active {
			st.active = true
			sc.active = append(sc.active, ri)
		}
		st.full = true
	}

	first := len(dst)
	for _, ri := range sc.active {
		dst = d.runRule(d.rules[ri], &sc.rules[ri], text, dst)
	}
	return dedupe(dst, first, d)
}

func (d *Detector) release(sc *scratch) {
	for _, ri := range sc.active {
		st := &sc.rules[ri]
		st.active, st.full, st.wins = false, false, st.wins[:0]
	}
	sc.active = sc.active[:0]
	if cap(sc.hits) > 1<<16 { // do not keep huge buffers alive
		sc.hits = nil
	}
	d.pool.Put(sc)
}

// addWindow adds the window around a keyword hit text[start:end] in which
// every match of r containing the hit lies (see analysis.go), plus one byte
// of context on each side for assertions such as \b and $.
func addWindow(r *rule, st *ruleState, text string, start, end int, ascii bool) {
	left, right := r.left.bytes, r.right.bytes
	if ascii {
		left, right = r.left.runes, r.right.runes
	}
	prevHi := -1
	if n := len(st.wins); n > 0 {
		prevHi = st.wins[n-1].hi
	}
	// Left: a match containing the hit holds at most left bytes outside
	// r.left.free in [lo, end). Stop early once the previous window is
	// reached: the windows merge.
	lo, c, free := end, 0, &r.left.free
	for lo > 0 && lo > prevHi {
		if !free[text[lo-1]] {
			if c++; c > left {
				break
			}
		}
		lo--
	}
	hi := extendRight(st, text, start, right, &r.right.free, prevHi >= 0)
	lo, hi = max(lo-1, 0), min(hi+1, len(text))
	if n := len(st.wins); n > 0 && lo <= st.wins[n-1].hi {
		w := &st.wins[n-1]
		w.lo, w.hi = min(w.lo, lo), max(w.hi, hi)
		return
	}
	st.wins = append(st.wins, span{lo, hi})
}

// extendRight returns the end of the span from start holding at most budget
// bytes outside free. It reuses the previous hit's scan when start is at or
// after that hit's start, so hits in a long run of free bytes (a base64 blob
// with many "ey"s) cost linear time in all, not quadratic.
func extendRight(st *ruleState, text string, start, budget int, free *[256]bool, resume bool) int {
	if resume && start >= st.anchor && start <= st.stop {
		for i := st.anchor; i < start; i++ {
			if !free[text[i]] {
				st.count--
			}
		}
	} else {
		st.stop, st.count = start, 0
	}
	st.anchor = start
	i, c := st.stop, st.count
	for i < len(text) {
		if !free[text[i]] {
			if c+1 > budget {
				break
			}
			c++
		}
		i++
	}
	st.stop, st.count = i, c
	return i
}

// runRule evaluates one rule over its windows (or the whole text).
func (d *Detector) runRule(r *rule, st *ruleState, text string, dst []inspect.Finding) []inspect.Finding {
	if st.full {
		out, _ := d.match(r, text, 0, len(text), dst)
		return out
	}
	first := len(dst)
	for _, w := range st.wins {
		var exact bool
		if dst, exact = d.match(r, text, w.lo, w.hi, dst); !exact {
			// A match touched the window's edge, which the analysis says
			// cannot happen but for odd case folding: scan it all.
			out, _ := d.match(r, text, 0, len(text), dst[:first])
			return out
		}
	}
	return dst
}

// match appends the findings of r in text[lo:hi]. It reports false when a
// match touches an edge of the window that is not an edge of the text: the
// window may have cut it, so the caller must scan the whole text.
func (d *Detector) match(r *rule, text string, lo, hi int, dst []inspect.Finding) ([]inspect.Finding, bool) {
	sub := text[lo:hi]
	if !r.re.MatchString(sub) {
		return dst, true
	}
	for _, m := range r.re.FindAllStringSubmatchIndex(sub, -1) {
		if (m[0] == 0 && lo > 0) || (m[1] == len(sub) && hi < len(text)) {
			return dst, false
		}
		s, e := m[0], m[1]
		if r.secretGroup > 0 {
			s, e = m[2*r.secretGroup], m[2*r.secretGroup+1]
		} else {
			for g := 1; 2*g+1 < len(m); g++ {
				if m[2*g] >= 0 && m[2*g+1] > m[2*g] {
					s, e = m[2*g], m[2*g+1]
					break
				}
			}
		}
		if s < 0 || e <= s {
			continue
		}
		s, e, ms, me := lo+s, lo+e, lo+m[0], lo+m[1]
		secret := text[s:e]
		if r.entropy > 0 && shannonEntropy(secret) <= r.entropy {
			continue
		}
		if d.allowed(r, secret, text, ms, me) {
			continue
		}
		dst = append(dst, inspect.Finding{Category: inspect.CategorySecret, Type: r.id,
			Start: s, End: e, Confidence: r.confidence})
	}
	return dst, true
}

// allowed applies the global and the rule's allowlists to a candidate.
func (d *Detector) allowed(r *rule, secret, text string, ms, me int) bool {
	match := trimNewlines(text[ms:me])
	if d.global != nil && d.global.allows(secret, match, "") {
		return true
	}
	for _, a := range r.allow {
		line := ""
		if a.target == "line" {
			line = lineAround(text, ms, me)
		}
		if a.allows(secret, match, line) {
			return true
		}
	}
	return false
}

// dedupe keeps one finding per overlapping group among dst[first:], the one
// of the most confident and most specific rule, and sorts them by offset.
func dedupe(dst []inspect.Finding, first int, d *Detector) []inspect.Finding {
	fs := dst[first:]
	if len(fs) < 2 {
		return dst
	}
	slices.SortFunc(fs, func(a, b inspect.Finding) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return b.End - a.End
	})
	out := fs[:1]
	for _, f := range fs[1:] {
		last := &out[len(out)-1]
		if f.Start < last.End {
			if d.better(f, *last) {
				*last = f
			}
			continue
		}
		out = append(out, f)
	}
	return dst[:first+len(out)]
}

// better reports whether finding a should be kept over b.
func (d *Detector) better(a, b inspect.Finding) bool {
	if a.Confidence != b.Confidence {
		return a.Confidence > b.Confidence
	}
	if ka, kb := d.kindOf(a.Type), d.kindOf(b.Type); ka != kb {
		return ka > kb
	}
	return a.End-a.Start > b.End-b.Start
}

func (d *Detector) kindOf(id string) ruleKind {
	if r, ok := d.byID[id]; ok {
		return r.kind
	}
	return kindGeneric
}

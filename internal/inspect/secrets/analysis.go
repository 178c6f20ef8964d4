package secrets

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Scanning a whole text with every rule whose keyword occurs in it is what
// gitleaks does, and it is slow on the gateway's hot path: common keywords
// ("key", "token", "ey" for JWTs) occur in most texts. Instead a rule is run
// over a window around each keyword hit, when that finds every match the
// whole-text scan would. Two properties of the rule's regex make that so:
//
//  1. every match contains one of the rule's keywords (containsKeyword), so
//     every match is near a hit; and
//  2. the match cannot extend arbitrarily far from the hit (extent): its
//     bounded parts produce at most N characters, and its unbounded
//     repetitions only bytes from a set F. A match containing a hit therefore
//     lies within the span around the hit that holds at most N bytes outside
//     F on each side. For a rule like `ey[a-zA-Z0-9]{17,}\.ey…` (JWT) that
//     ends a few punctuation characters or spaces after the hit; for
//     `[\w.-]{0,50}?(?:key)…([\w.=-]{10,150})` after N bytes; for a private
//     key block (`[\s\S-]{64,}?`) only at the end of the text.
//
// Rules without property 1 are run over the whole text when one of their
// keywords occurs (see the Stats of a Detector for which).

// extent bounds the span of a regex's matches.
type extent struct {
	runes int       // characters produced by bounded parts, at most
	bytes int       // the same in UTF-8 bytes (for texts that are not ASCII)
	free  [256]bool // bytes that unbounded repetitions may produce
}

// matchExtent computes the extent of a parsed regex.
func matchExtent(re *syntax.Regexp) extent {
	var e extent
	e.runes, e.bytes = e.walk(re)
	return e
}

// walk returns the bounds of re's bounded parts, adding the bytes of its
// unbounded parts to e.free.
func (e *extent) walk(re *syntax.Regexp) (runes, bytes int) {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			runes++
			bytes += runeBytes(r, re.Flags&syntax.FoldCase != 0)
		}
	case syntax.OpCharClass:
		if len(re.Rune) > 0 {
			runes, bytes = 1, utf8.RuneLen(min(re.Rune[len(re.Rune)-1], unicode.MaxRune))
		}
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		runes, bytes = 1, utf8.UTFMax
	case syntax.OpCapture, syntax.OpQuest:
		return e.walk(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		byteSet(re.Sub[0], &e.free)
	case syntax.OpRepeat:
		if re.Max < 0 {
			byteSet(re.Sub[0], &e.free)
			return 0, 0
		}
		r, b := e.walk(re.Sub[0])
		return r * re.Max, b * re.Max
	case syntax.OpConcat:
		for _, s := range re.Sub {
			r, b := e.walk(s)
			runes, bytes = runes+r, bytes+b
		}
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			r, b := e.walk(s)
			runes, bytes = max(runes, r), max(bytes, b)
		}
	}
	// Empty matches and assertions produce nothing.
	return runes, bytes
}

// runeBytes is the longest UTF-8 encoding of r (or of a case variant of r).
func runeBytes(r rune, fold bool) int {
	n := utf8.RuneLen(r)
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			n = max(n, utf8.RuneLen(f))
		}
	}
	return max(n, 1)
}

// byteSet adds to set every byte a match of re may contain.
func byteSet(re *syntax.Regexp, set *[256]bool) {
	addRune := func(r rune) {
		if r < utf8.RuneSelf {
			set[r] = true
			return
		}
		for b := 0x80; b < 0x100; b++ {
			set[b] = true
		}
	}
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			addRune(r)
			if re.Flags&syntax.FoldCase != 0 {
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					addRune(f)
				}
			}
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
				set[r] = true
			}
			if hi >= utf8.RuneSelf {
				addRune(hi)
			}
		}
	case syntax.OpAnyChar:
		for b := range set {
			set[b] = true
		}
	case syntax.OpAnyCharNotNL:
		for b := range set {
			set[b] = b != '\n'
		}
	default:
		for _, s := range re.Sub {
			byteSet(s, set)
		}
	}
}

// maxLiteralSet caps the finite string sets containsKeyword expands.
const maxLiteralSet = 64

// containsKeyword reports whether every match of re contains one of the
// (lower-case) keywords, ignoring ASCII case. It is conservative: false
// means "not proven".
func containsKeyword(re *syntax.Regexp, keywords []string) bool {
	if set, ok := literalSet(re); ok {
		return allContain(set, keywords)
	}
	switch re.Op {
	case syntax.OpCapture:
		return containsKeyword(re.Sub[0], keywords)
	case syntax.OpPlus:
		return containsKeyword(re.Sub[0], keywords)
	case syntax.OpRepeat:
		return re.Min > 0 && containsKeyword(re.Sub[0], keywords)
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if !containsKeyword(s, keywords) {
				return false
			}
		}
		return len(re.Sub) > 0
	case syntax.OpConcat:
		// Adjacent parts are expanded together, so a keyword spread over
		// several nodes (`(?-i:[Aa]pi)`, or `A(?:KIA|SIA|3T[A-Z0-9])` as the
		// parser factors `AKIA|ASIA|A3T[A-Z0-9]`) is still seen. run holds
		// strings one of which every match has, ending at the current node.
		run := []string{""}
		for _, s := range re.Sub {
			if set, ok := literalSet(s); ok {
				if run, ok = cross(run, set); !ok {
					run = set
				}
				if allContain(run, keywords) {
					return true
				}
				continue
			}
			if joined, ok := cross(run, affixSet(s, true)); ok && allContain(joined, keywords) {
				return true
			}
			if containsKeyword(s, keywords) {
				return true
			}
			run = affixSet(s, false)
		}
		return false
	}
	return false
}

// affixSet returns lower-cased strings one of which every match of re starts
// with (prefix) or ends with (!prefix); {""} when nothing better is known.
func affixSet(re *syntax.Regexp, prefix bool) []string {
	if set, ok := literalSet(re); ok {
		return set
	}
	none := []string{""}
	switch re.Op {
	case syntax.OpCapture, syntax.OpPlus:
		return affixSet(re.Sub[0], prefix)
	case syntax.OpRepeat:
		if re.Min > 0 {
			return affixSet(re.Sub[0], prefix)
		}
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			for _, x := range affixSet(s, prefix) {
				if !slices.Contains(out, x) {
					out = append(out, x)
				}
			}
			if len(out) > maxLiteralSet {
				return none
			}
		}
		return out
	case syntax.OpConcat:
		subs := re.Sub
		out := []string{""}
		for i := range subs {
			s := subs[i]
			if !prefix {
				s = subs[len(subs)-1-i]
			}
			set, finite := literalSet(s)
			if !finite {
				set = affixSet(s, prefix)
			}
			var ok bool
			if prefix {
				out, ok = cross(out, set)
			} else {
				out, ok = cross(set, out)
			}
			if !ok {
				return none
			}
			if !finite {
				break
			}
		}
		return out
	}
	return none
}

// literalSet returns the lower-cased strings re matches when they are few
// and finite.
func literalSet(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return []string{""}, true
	case syntax.OpLiteral:
		return []string{strings.ToLower(string(re.Rune))}, true
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i+1]-re.Rune[i] > 8 {
				return nil, false
			}
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				s := strings.ToLower(string(r))
				if !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		}
		return out, len(out) > 0 && len(out) <= 8
	case syntax.OpCapture:
		return literalSet(re.Sub[0])
	case syntax.OpQuest:
		set, ok := literalSet(re.Sub[0])
		if !ok {
			return nil, false
		}
		if !slices.Contains(set, "") {
			set = append(set, "")
		}
		return set, true
	case syntax.OpRepeat:
		if re.Min != re.Max || re.Max > 4 {
			return nil, false
		}
		set, ok := literalSet(re.Sub[0])
		if !ok {
			return nil, false
		}
		out := []string{""}
		for range re.Max {
			if out, ok = cross(out, set); !ok {
				return nil, false
			}
		}
		return out, true
	case syntax.OpConcat:
		out := []string{""}
		for _, s := range re.Sub {
			set, ok := literalSet(s)
			if !ok {
				return nil, false
			}
			if out, ok = cross(out, set); !ok {
				return nil, false
			}
		}
		return out, true
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			set, ok := literalSet(s)
			if !ok {
				return nil, false
			}
			for _, x := range set {
				if !slices.Contains(out, x) {
					out = append(out, x)
				}
			}
			if len(out) > maxLiteralSet {
				return nil, false
			}
		}
		return out, true
	}
	return nil, false
}

// cross returns every a+b, if there are not too many.
func cross(as, bs []string) ([]string, bool) {
	if len(as)*len(bs) > maxLiteralSet {
		return nil, false
	}
	out := make([]string, 0, len(as)*len(bs))
	for _, a := range as {
		for _, b := range bs {
			out = append(out, a+b)
		}
	}
	return out, true
}

func allContain(set, keywords []string) bool {
	for _, s := range set {
		found := false
		for _, k := range keywords {
			if strings.Contains(s, k) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return len(set) > 0
}

// splitExtent bounds the parts of a match on either side of its keyword:
// left covers the match from its start to the end of the part that holds
// the keyword, right from the start of that part to the end of the match.
// Each side is a separate budget around a keyword hit, which gives much
// narrower windows than the whole extent on both sides (generic-api-key has
// 50 characters before its keyword but ~180 after).
//
// The hit a window is built around may not be the keyword occurrence the
// match uses (a "key" inside the value); the match then also contains its own
// keyword occurrence, whose window covers it, and windows that overlap are
// merged, so the match is still found whole.
func splitExtent(re *syntax.Regexp, keywords []string) (left, right extent) {
	switch re.Op {
	case syntax.OpCapture:
		return splitExtent(re.Sub[0], keywords)
	case syntax.OpConcat:
		subs := re.Sub
		for i := range subs {
			for j := i; j >= 0; j-- {
				part := subs[j : i+1]
				if !containsKeyword(&syntax.Regexp{Op: syntax.OpConcat, Sub: part}, keywords) {
					continue
				}
				if j == i {
					left, right = splitExtent(subs[i], keywords)
				} else {
					left.add(subs[j : i+1]...)
					right.add(subs[j : i+1]...)
				}
				left.add(subs[:j]...)
				right.add(subs[i+1:]...)
				return left, right
			}
		}
	}
	e := matchExtent(re)
	return e, e
}

// add adds the extents of parts matched in sequence.
func (e *extent) add(parts ...*syntax.Regexp) {
	for _, p := range parts {
		r, b := e.walk(p)
		e.runes, e.bytes = e.runes+r, e.bytes+b
	}
}

// follow is a cheap necessary condition on the text right after a keyword
// hit, derived from the regex (see followCheck): up to skipMax bytes from
// skip, then a byte from first; or, with skipMax 0 and run > 0, run bytes
// from runSet. Alternatives (e.g. `hvs\.…|s\.…`) are tried in turn.
type follow struct {
	skip    [256]bool
	skipMax int
	first   [256]bool
	run     int
	runSet  [256]bool
}

type followSet []follow

// ok reports whether text (the bytes after a hit) may continue a match.
func (fs followSet) ok(text string) bool {
	for i := range fs {
		if fs[i].ok(text) {
			return true
		}
	}
	return false
}

func (f *follow) ok(text string) bool {
	if f.run > 0 {
		if len(text) < f.run {
			return false
		}
		for i := 0; i < f.run; i++ {
			if !f.runSet[text[i]] {
				return false
			}
		}
		return true
	}
	for k := 0; k < len(text); k++ {
		b := text[k]
		if f.first[b] {
			return true
		}
		if k >= f.skipMax || !f.skip[b] {
			return false
		}
	}
	return false
}

// minRun and maxRun bound the run checks.
const minRun, maxRun = 8, 64

// followCheck derives a cheap necessary condition for a keyword hit to be
// part of a match: what must follow the keyword (e.g. up to 23 name or
// space characters and then one of "=:>|?," for "key = …" rules, or 17
// letters and digits after the "ey" of a JWT). Hits failing it get no
// window, which keeps common words ("they", "keyboard") from costing an RE2
// call.
//
// It applies where the keyword part of the regex is a finite set of strings
// that are all keywords: then every match has a keyword hit ending exactly
// where its keyword part ends, and the condition holds after that hit. Other
// hits inside the match may fail it; the aligned one does not.
func followCheck(re *syntax.Regexp, keywords []string) (followSet, bool) {
	switch re.Op {
	case syntax.OpCapture:
		return followCheck(re.Sub[0], keywords)
	case syntax.OpAlternate:
		var out followSet
		for _, s := range re.Sub {
			fs, ok := followCheck(s, keywords)
			if !ok {
				return nil, false
			}
			out = append(out, fs...)
		}
		return out, len(out) > 0
	case syntax.OpConcat:
		subs := re.Sub
		for i := range subs {
			for j := i; j >= 0; j-- {
				part := &syntax.Regexp{Op: syntax.OpConcat, Sub: subs[j : i+1]}
				if !containsKeyword(part, keywords) {
					continue
				}
				if set, finite := literalSet(part); finite && allKeywords(set, keywords) {
					f, ok := followOf(subs[i+1:])
					return followSet{f}, ok
				}
				if j == i {
					return followCheck(subs[i], keywords)
				}
				return nil, false
			}
		}
	}
	return nil, false
}

// followOf builds the condition for the start of a sequence of parts:
// optional character-class parts, then a required part.
func followOf(parts []*syntax.Regexp) (follow, bool) {
	var f follow
	for _, p := range parts {
		if p.Op == syntax.OpCapture {
			p = p.Sub[0]
		}
		// Optional class repetitions are skipped.
		if (p.Op == syntax.OpRepeat && p.Min == 0 && p.Max >= 0) || p.Op == syntax.OpQuest {
			sub := p.Sub[0]
			if sub.Op != syntax.OpCharClass && sub.Op != syntax.OpLiteral {
				return f, false
			}
			n := 1
			if p.Op == syntax.OpRepeat {
				n = p.Max
			}
			byteSet(sub, &f.skip)
			f.skipMax += n * matchExtent(sub).bytes
			continue
		}
		// A required class repetition right after the keyword: a run of
		// its minimum length, when that says something (JWT: 17 letters
		// after "ey"; ghp_: 36). A short minimum with a bounded maximum is
		// skipped over instead, looking for what follows (a URL's user
		// name, up to the ':' before its password).
		if (p.Op == syntax.OpRepeat || p.Op == syntax.OpPlus) && p.Sub[0].Op == syntax.OpCharClass {
			if f.skipMax == 0 && p.Min >= minRun {
				f.run = min(p.Min, maxRun)
				byteSet(p.Sub[0], &f.runSet)
				return f, true
			}
			if p.Op == syntax.OpRepeat && p.Max >= 0 {
				byteSet(p.Sub[0], &f.skip)
				f.skipMax += p.Max * matchExtent(p.Sub[0]).bytes
				continue
			}
		}
		first, nullable := firstBytes(p)
		if nullable {
			return f, false
		}
		f.first = first
		return f, true
	}
	return f, false
}

// firstBytes returns the bytes a match of re can start with, and whether re
// can match the empty string (then the set is not a condition).
func firstBytes(re *syntax.Regexp) (set [256]bool, nullable bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return set, true
		}
		byteSet(&syntax.Regexp{Op: syntax.OpLiteral, Rune: re.Rune[:1], Flags: re.Flags}, &set)
		return set, false
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		byteSet(re, &set)
		return set, false
	case syntax.OpCapture, syntax.OpPlus:
		return firstBytes(re.Sub[0])
	case syntax.OpRepeat:
		set, nullable = firstBytes(re.Sub[0])
		return set, nullable || re.Min == 0
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			sub, n := firstBytes(s)
			for b := range set {
				set[b] = set[b] || sub[b]
			}
			nullable = nullable || n
		}
		return set, nullable
	case syntax.OpConcat:
		for _, s := range re.Sub {
			sub, n := firstBytes(s)
			for b := range set {
				set[b] = set[b] || sub[b]
			}
			if !n {
				return set, false
			}
		}
		return set, true
	}
	return set, true // empty matches, assertions, star, quest
}

func allKeywords(set, keywords []string) bool {
	for _, s := range set {
		if !slices.Contains(keywords, s) {
			return false
		}
	}
	return len(set) > 0
}

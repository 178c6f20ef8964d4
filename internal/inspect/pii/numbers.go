package pii

import "gatehouse/internal/inspect"

// maxGroups bounds the digit groups of one run; longer runs are split.
const maxGroups = 12

// span is a half-open byte range [s, e).
type span struct{ s, e int }

// run is a sequence of digit groups joined by short separators, such as
// "+1 (415) 555-0132", "4111 1111 1111 1111", "192.168.0.1" or
// "1990-05-12". Every number candidate is a window of consecutive groups
// of one run.
type run struct {
	start int  // first byte, including a leading '+' or '('
	plus  bool // the run starts with '+'
	g     [maxGroups]span
	n     int
}

// sep is the separator between groups k and k+1.
func (r *run) sep(t string, k int) string { return t[r.g[k].e:r.g[k+1].s] }

// validSep lists the separators a run may continue through.
func validSep(sep string) bool {
	switch sep {
	case " ", "-", ".", "/", "(", ")", ") ", ")-", " (", " - ":
		return true
	}
	return false
}

func isSepByte(c byte) bool {
	return c == ' ' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')'
}

// breakable reports whether a number may end or begin at separator sep
// inside a run: "4111 1111 1111 1111 12/27" holds a card and an expiry
// date, but "550e8400-e29b" style dashed chains are one token.
func breakable(sep string) bool {
	for i := 0; i < len(sep); i++ {
		if sep[i] == ' ' || sep[i] == '/' {
			return true
		}
	}
	return false
}

// numbers reads the run starting at i (a digit, '+' or '(') and reports
// the numbers in it. It returns the index after the run.
func (s *scanner) numbers(i int) int {
	t := s.text
	var r run
	r.start = i
	j := i
	if t[j] == '+' {
		r.plus = true
		j++
		if j < len(t) && t[j] == '(' {
			j++
		}
	} else if t[j] == '(' {
		j++
	}
	for {
		gs := j
		for j < len(t) && isDigit(t[j]) {
			j++
		}
		r.g[r.n] = span{gs, j}
		r.n++
		k := j
		for k < len(t) && k-j < 3 && isSepByte(t[k]) {
			k++
		}
		if r.n == maxGroups || k == j || k >= len(t) || !isDigit(t[k]) || !validSep(t[j:k]) {
			break
		}
		j = k
	}
	end := r.g[r.n-1].e
	if r.n == 1 && !r.plus {
		// One group, the most common case: shorter than seven digits it
		// can only be the year of a written-out date of birth.
		d := t[r.g[0].s:end]
		if l := len(d); l < 4 || l == 5 || l == 6 || l == 4 && d[:2] != "19" && d[:2] != "20" {
			return end
		}
	}

	// A run glued to a word or continuing a dashed/dotted token (a UUID
	// piece, a version, a host name) is part of that token.
	prev := prevByte(t, r.start)
	if isWord(prev) {
		return end
	}
	if (prev == '-' || prev == '.' || prev == '_') && isWord(prevByte(t, r.start-1)) {
		return end
	}
	next := byteAt(t, end)
	dateOnly := false
	switch {
	case isWord(next) || next == '@' || next == '%':
		// "2024-01-15T10:00:00Z": a timestamp may still be a date of birth.
		if next == 'T' && isDigit(byteAt(t, end+1)) {
			dateOnly = true
		} else {
			return end
		}
	case (next == '-' || next == '.' || next == '_') && isWord(byteAt(t, end+1)):
		return end
	}
	s.windows(&r, prev, next, dateOnly)
	return end
}

// window is a candidate: groups [g, h] of a run.
type window struct {
	r          *run
	g, h       int
	start, end int  // byte span of the finding
	plus       bool // starts with '+'
	prev, next byte // bytes just outside the window
	digits     int
}

func (w *window) groups() int { return w.h - w.g + 1 }

// size is the digit count of the i-th group of the window.
func (w *window) size(i int) int { g := w.r.g[w.g+i]; return g.e - g.s }

// sep is the separator after the i-th group of the window.
func (w *window) sep(t string, i int) string { return w.r.sep(t, w.g+i) }

// sameSeps reports whether all separators of the window equal one of
// allowed, returning it ("" for a single group).
func (w *window) sameSeps(t string, allowed ...string) (string, bool) {
	if w.groups() == 1 {
		return "", true
	}
	first := w.sep(t, 0)
	for i := 1; i < w.groups()-1; i++ {
		if w.sep(t, i) != first {
			return "", false
		}
	}
	for _, a := range allowed {
		if first == a {
			return first, true
		}
	}
	return "", false
}

// digitsInto copies the window's digits into buf.
func (w *window) digitsInto(t string, buf []byte) []byte {
	buf = buf[:0]
	for k := w.g; k <= w.h; k++ {
		buf = append(buf, t[w.r.g[k].s:w.r.g[k].e]...)
	}
	return buf
}

// windows tries every window of the run, longest first from the left, and
// reports the first kind each matches; a match consumes its groups.
func (s *scanner) windows(r *run, prev, next byte, dateOnly bool) {
	t := s.text
	for g := 0; g < r.n; {
		if g > 0 && !breakable(r.sep(t, g-1)) {
			g++
			continue
		}
		matched := -1
		for h := r.n - 1; h >= g && matched < 0; h-- {
			if h < r.n-1 && !breakable(r.sep(t, h)) {
				continue
			}
			w := window{r: r, g: g, h: h, start: r.g[g].s, end: r.g[h].e, prev: prev, next: next}
			if g == 0 {
				w.start = r.start
				w.plus = r.plus
			} else {
				w.prev = t[r.g[g].s-1]
				if w.prev == '(' {
					w.start--
				}
			}
			if h < r.n-1 {
				w.next = t[r.g[h].e]
			}
			for k := g; k <= h; k++ {
				w.digits += r.g[k].e - r.g[k].s
			}
			if w.digits > 19 {
				continue
			}
			if s.classify(&w, dateOnly && h == r.n-1) {
				matched = h
			}
		}
		if matched >= 0 {
			g = matched + 1
		} else {
			g++
		}
	}
}

// classify reports the window as the first kind it matches, in order of
// how specific the kinds are.
func (s *scanner) classify(w *window, dateOnly bool) bool {
	if dateOnly {
		return s.on(bitDateOfBirth) && s.dateOfBirth(w)
	}
	if s.on(bitSSN) {
		if c, ok := s.ssn(w); ok {
			s.emit(TypeSSN, w.start, w.end, c)
			return true
		}
	}
	if s.on(bitCard) {
		if c, ok := s.card(w); ok {
			s.emit(TypeCard, w.start, w.end, c)
			return true
		}
	}
	if s.on(bitNationalID) && s.numericNationalID(w) {
		s.emit(TypeNationalID, w.start, w.end, inspect.Medium)
		return true
	}
	if s.on(bitIPAddress) && s.ipv4(w) {
		s.emit(TypeIPAddress, w.start, w.end, inspect.Low)
		return true
	}
	if s.on(bitDateOfBirth) && s.dateOfBirth(w) {
		return true
	}
	if s.on(bitPhone) {
		if c, ok := s.phone(w); ok {
			s.emit(TypePhone, w.start, w.end, c)
			return true
		}
	}
	return false
}

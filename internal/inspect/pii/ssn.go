package pii

import "gatehouse/internal/inspect"

// ssn reports whether the window is a US social security number:
// "123-45-6789" shaped (High), or nine digits bare or as "123 45 6789"
// next to a context word (Medium). The number must follow the SSA's
// rules: area not 000, 666 or 900-999; group not 00; serial not 0000;
// and not one of the numbers known to be published or placeholders.
func (s *scanner) ssn(w *window) (inspect.Confidence, bool) {
	if w.digits != 9 || w.plus {
		return 0, false
	}
	t := s.text
	conf := inspect.Medium
	switch w.groups() {
	case 1:
		if !near(t, w.start, w.end, 40, 16, ctxSSN) {
			return 0, false
		}
	case 3:
		if w.size(0) != 3 || w.size(1) != 2 || w.size(2) != 4 {
			return 0, false
		}
		sep, ok := w.sameSeps(t, "-", " ")
		if !ok {
			return 0, false
		}
		if sep == "-" {
			conf = inspect.High
		} else if !near(t, w.start, w.end, 40, 16, ctxSSN) {
			return 0, false
		}
	default:
		return 0, false
	}
	var buf [12]byte
	if !validSSN(w.digitsInto(t, buf[:])) {
		return 0, false
	}
	return conf, true
}

// validSSN checks nine digits against the SSA's allocation rules.
func validSSN(d []byte) bool {
	if len(d) != 9 {
		return false
	}
	area, group, serial := prefixNum(d, 3), prefixNum(d[3:], 2), prefixNum(d[5:], 4)
	if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
		return false
	}
	switch string(d) {
	case "078051120", // printed on wallet inserts in 1938
		"219099999", // used in a Social Security Board pamphlet
		"123456789": // the placeholder everyone types
		return false
	}
	// Repeated digits (111-11-1111) are placeholders, not numbers.
	same := true
	for _, c := range d[1:] {
		if c != d[0] {
			same = false
			break
		}
	}
	return !same
}

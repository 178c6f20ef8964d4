package pii

import (
	"strings"

	"gatehouse/internal/inspect"
)

// dateOfBirth reports a date next to a date-of-birth context word. Dates
// are numeric ("1990-05-12", "05/12/1990", "12.05.1990") or written with
// a month name ("May 12, 1990", "12 May 1990"). It emits the finding
// itself, since a month-name date starts before the window.
func (s *scanner) dateOfBirth(w *window) bool {
	t := s.text
	start := w.start
	switch w.groups() {
	case 3:
		if _, ok := w.sameSeps(t, "-", "/", "."); !ok || w.plus {
			return false
		}
		var buf [12]byte
		d := w.digitsInto(t, buf[:])
		a, b, c := w.size(0), w.size(1), w.size(2)
		switch {
		case a == 4 && b <= 2 && c <= 2:
			if !validDate(prefixNum(d, 4), prefixNum(d[4:], b), prefixNum(d[4+b:], c)) {
				return false
			}
		case a <= 2 && b <= 2 && c == 4:
			x, y, year := prefixNum(d, a), prefixNum(d[a:], b), prefixNum(d[a+b:], 4)
			if !validDate(year, x, y) && !validDate(year, y, x) {
				return false
			}
		default:
			return false
		}
	case 1:
		if w.size(0) != 4 || w.plus {
			return false
		}
		year := prefixNum(t[w.start:w.end], 4)
		if year < 1900 || year > 2099 {
			return false
		}
		var ok bool
		if start, ok = monthNameDate(t, w.start); !ok {
			return false
		}
	default:
		return false
	}
	if !near(t, start, w.end, 48, 8, ctxDOB) {
		return false
	}
	s.emit(TypeDateOfBirth, start, w.end, inspect.Medium)
	return true
}

func validDate(year, month, day int) bool {
	if year < 1900 || year > 2099 || month < 1 || month > 12 || day < 1 {
		return false
	}
	days := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	return day <= days[month]
}

var months = []string{
	"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
	"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}

func isMonth(word string) bool {
	if len(word) < 3 || len(word) > 9 {
		return false
	}
	var buf [9]byte
	for i := 0; i < len(word); i++ {
		buf[i] = lower(word[i])
	}
	for _, m := range months {
		if string(buf[:len(word)]) == m {
			return true
		}
	}
	return false
}

// monthNameDate reads "May 12, 1990" or "12 May 1990" backwards from the
// year at y and returns where the date starts.
func monthNameDate(t string, y int) (int, bool) {
	p := y
	if p < 2 || t[p-1] != ' ' {
		return 0, false
	}
	p--
	comma := t[p-1] == ','
	if comma {
		p--
	}
	// "May 12, 1990" / "May 12th 1990"
	if q, ok := dayBefore(t, p); ok && q > 1 && t[q-1] == ' ' {
		ms := q - 1
		for ms > 0 && isLetter(t[ms-1]) {
			ms--
		}
		if isMonth(t[ms:q-1]) && (ms == 0 || !isWord(t[ms-1])) {
			return ms, true
		}
	}
	if comma {
		return 0, false
	}
	// "12 May 1990"
	ms := p
	for ms > 0 && isLetter(t[ms-1]) {
		ms--
	}
	if !isMonth(t[ms:p]) || ms < 2 || t[ms-1] != ' ' {
		return 0, false
	}
	if q, ok := dayBefore(t, ms-1); ok && (q == 0 || !isWord(t[q-1])) {
		return q, true
	}
	return 0, false
}

// dayBefore reads a day of the month ("12", "3rd") ending at p and returns
// where it starts.
func dayBefore(t string, p int) (int, bool) {
	if p >= 3 && isDigit(t[p-3]) && (strings.HasSuffix(t[:p], "st") || strings.HasSuffix(t[:p], "nd") || strings.HasSuffix(t[:p], "rd") || strings.HasSuffix(t[:p], "th")) {
		p -= 2
	}
	q := p
	for q > 0 && p-q < 2 && isDigit(t[q-1]) {
		q--
	}
	if q == p || (q > 0 && isDigit(t[q-1])) {
		return 0, false
	}
	day := prefixNum(t[q:p], 2)
	return q, day >= 1 && day <= 31
}

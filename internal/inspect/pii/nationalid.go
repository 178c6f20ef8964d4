package pii

import "gatehouse/internal/inspect"

// numericNationalID reports a Canadian social insurance number (nine
// digits, Luhn) or an Indian Aadhaar number (twelve digits, Verhoeff),
// each only next to its context words: both shapes are too common in
// other numbers to report on their own.
func (s *scanner) numericNationalID(w *window) bool {
	if w.plus || (w.digits != 9 && w.digits != 12) {
		return false
	}
	t := s.text
	n := w.groups()
	if n > 1 {
		if _, ok := w.sameSeps(t, " ", "-"); !ok {
			return false
		}
	}
	var buf [16]byte
	d := w.digitsInto(t, buf[:])
	if w.digits == 9 {
		// SIN: 123 456 782 or bare; 0 and 8 are not issued as first digits.
		if n != 1 && !(n == 3 && w.size(0) == 3 && w.size(1) == 3) {
			return false
		}
		return d[0] != '0' && d[0] != '8' && luhn(d) && near(t, w.start, w.end, 40, 16, ctxSIN)
	}
	// Aadhaar: 2345 6789 0123 or bare; never starts with 0 or 1.
	if n != 1 && !(n == 3 && w.size(0) == 4 && w.size(1) == 4) {
		return false
	}
	return d[0] >= '2' && verhoeff(d) && near(t, w.start, w.end, 40, 16, ctxAadhaar)
}

// Verhoeff check digit tables (dihedral group D5).
var (
	verhoeffD = [10][10]uint8{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		{1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
		{2, 3, 4, 0, 1, 7, 8, 9, 5, 6},
		{3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
		{4, 0, 1, 2, 3, 9, 5, 6, 7, 8},
		{5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
		{6, 5, 9, 8, 7, 1, 0, 4, 3, 2},
		{7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
		{8, 7, 6, 5, 9, 3, 2, 1, 0, 4},
		{9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
	}
	verhoeffP = [8][10]uint8{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		{1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
		{5, 8, 0, 3, 7, 9, 6, 1, 4, 2},
		{8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
		{9, 4, 5, 3, 1, 2, 6, 8, 7, 0},
		{4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
		{2, 7, 9, 3, 8, 0, 6, 4, 1, 5},
		{7, 0, 4, 6, 9, 1, 3, 2, 5, 8},
	}
)

// verhoeff reports whether d (digits, check digit last) passes Verhoeff.
func verhoeff(d []byte) bool {
	c := uint8(0)
	for i := 0; i < len(d); i++ {
		c = verhoeffD[c][verhoeffP[i%8][d[len(d)-1-i]-'0']]
	}
	return c == 0
}

// nino reads a UK National Insurance number at i: two prefix letters, six
// digits (optionally in pairs separated by spaces) and a suffix A-D. It
// returns the end of the number, or i when there is none.
func (s *scanner) nino(i int) int {
	t := s.text
	if i+9 > len(t) || !ninoPrefix(t[i], t[i+1]) {
		return i
	}
	j := i + 2
	spaced := t[j] == ' '
	for k := 0; k < 3; k++ {
		if spaced {
			if j >= len(t) || t[j] != ' ' {
				return i
			}
			j++
		}
		if j+2 > len(t) || !isDigit(t[j]) || !isDigit(t[j+1]) {
			return i
		}
		j += 2
	}
	if spaced && j < len(t) && t[j] == ' ' {
		j++
	}
	if j >= len(t) || t[j] < 'A' || t[j] > 'D' {
		return i
	}
	j++
	if j < len(t) && isWord(t[j]) {
		return i
	}
	conf := inspect.Medium
	if near(t, i, j, 40, 16, ctxNINO) {
		conf = inspect.High
	}
	s.emit(TypeNationalID, i, j, conf)
	return j
}

// ninoPrefix applies HMRC's prefix rules: neither letter D, F, I, Q, U or
// V; the second not O; and not the prefixes kept for other uses.
func ninoPrefix(a, b byte) bool {
	bad := func(c byte) bool {
		return c == 'D' || c == 'F' || c == 'I' || c == 'Q' || c == 'U' || c == 'V'
	}
	if !isUpper(a) || !isUpper(b) || bad(a) || bad(b) || b == 'O' {
		return false
	}
	switch uint16(a)<<8 | uint16(b) {
	case 'B'<<8 | 'G', 'G'<<8 | 'B', 'K'<<8 | 'N', 'N'<<8 | 'K', 'N'<<8 | 'T', 'T'<<8 | 'N', 'Z'<<8 | 'Z':
		return false
	}
	return true
}

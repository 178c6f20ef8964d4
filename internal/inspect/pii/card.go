package pii

import "gatehouse/internal/inspect"

// card reports whether the window is a payment card number: 12–19 digits,
// written whole or in the groups card issuers print (4-4-4-4, 4-6-5 for
// Amex, 4-6-4 for Diners) with one kind of separator, inside an issuer's
// range and length, passing Luhn.
func (s *scanner) card(w *window) (inspect.Confidence, bool) {
	if w.digits < 12 || w.digits > 19 || w.plus {
		return 0, false
	}
	t := s.text
	sep, ok := w.sameSeps(t, " ", "-")
	if !ok {
		return 0, false
	}
	n := w.groups()
	if n > 1 && !cardGrouping(w) {
		return 0, false
	}
	// A 4-4-4-4 window inside a longer chain of four-digit groups (a
	// tracking or account number) is not a card.
	if n > 1 && w.size(0) == 4 {
		r := w.r
		if w.g > 0 && r.sep(t, w.g-1) == sep && r.g[w.g-1].e-r.g[w.g-1].s == 4 {
			return 0, false
		}
		if w.h < r.n-1 && r.sep(t, w.h) == sep && r.g[w.h+1].e-r.g[w.h+1].s == 4 {
			return 0, false
		}
	}
	if w.next == ':' || w.prev == '$' {
		return 0, false
	}
	var buf [24]byte
	d := w.digitsInto(t, buf[:])
	if !cardNumber(d) {
		return 0, false
	}
	if testCard(d) {
		return inspect.Medium, true
	}
	return inspect.High, true
}

// cardGrouping accepts the ways card numbers are printed in groups.
func cardGrouping(w *window) bool {
	n := w.groups()
	if n == 3 && w.size(0) == 4 && w.size(1) == 6 && (w.size(2) == 5 || w.size(2) == 4) {
		return true // Amex 4-6-5, Diners 4-6-4
	}
	if n < 3 {
		return false
	}
	for i := 0; i < n-1; i++ {
		if w.size(i) != 4 {
			return false
		}
	}
	return w.size(n-1) >= 1 && w.size(n-1) <= 4
}

// cardNumber reports whether d (digits only) is in an issuer's range with
// one of its lengths and passes Luhn.
func cardNumber(d []byte) bool {
	return issuerLength(d) && luhn(d)
}

// prefixNum reads the first n digits of d as a number.
func prefixNum[T ~string | ~[]byte](d T, n int) int {
	v := 0
	for i := 0; i < n && i < len(d); i++ {
		v = v*10 + int(d[i]-'0')
	}
	return v
}

// issuerLength checks the issuer identification number ranges of the
// major networks and the lengths each issues.
func issuerLength(d []byte) bool {
	l := len(d)
	p1, p2, p3, p4, p6 := prefixNum(d, 1), prefixNum(d, 2), prefixNum(d, 3), prefixNum(d, 4), prefixNum(d, 6)
	switch {
	case p1 == 4: // Visa
		return l == 13 || l == 16 || l == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return l == 16
	case p2 == 34 || p2 == 37: // American Express
		return l == 15
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p6 >= 622126 && p6 <= 622925: // Discover
		return l >= 16 && l <= 19
	case p4 >= 3528 && p4 <= 3589: // JCB
		return l >= 16 && l <= 19
	case p3 >= 300 && p3 <= 305, p4 == 3095, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return l >= 14 && l <= 19
	case p2 == 62: // UnionPay
		return l >= 16 && l <= 19
	case p4 == 5018, p4 == 5020, p4 == 5038, p4 == 5893, p4 == 6304, p4 == 6759, p4 == 6761, p4 == 6762, p4 == 6763: // Maestro
		return l >= 12 && l <= 19
	}
	return false
}

// luhn is the mod-10 check of ISO/IEC 7812.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// testCards are numbers card networks and payment providers publish for
// testing. They are valid card formats, so they are reported, but with
// Medium confidence.
var testCards = []string{
	"4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556",
	"4222222222222", "4000000000000002", "4000000000009995", "4000002500003155",
	"5555555555554444", "5105105105105100", "5200828282828210", "2223003122003222",
	"378282246310005", "371449635398431", "378734493671000",
	"6011111111111117", "6011000990139424", "6011000000000004",
	"3530111333300000", "3566002020360505", "3566111111111113",
	"30569309025904", "38520000023237", "36227206271667",
	"6200000000000005", "6759649826438453", "5019717010103742",
}

// testCard reports a published test number, or one whose digits after the
// issuer prefix barely vary (4000 0000 0000 0002): a placeholder, not a
// card someone holds.
func testCard(d []byte) bool {
	for _, c := range testCards {
		if string(d) == c {
			return true
		}
	}
	var seen [10]bool
	distinct := 0
	for _, c := range d[6 : len(d)-1] {
		if !seen[c-'0'] {
			seen[c-'0'] = true
			distinct++
		}
	}
	return distinct <= 2
}

package pii

import (
	"strings"

	"github.com/nyaruka/phonenumbers"

	"gatehouse/internal/inspect"
)

// callingCodes marks the country calling codes libphonenumber knows. They
// are prefix-free, so the first prefix of an international number found
// here is its country code.
var callingCodes = func() (m [1000]bool) {
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		if cc > 0 && cc < len(m) {
			m[cc] = true
		}
	}
	return m
}()

// phone reports whether the window is a phone number: international
// ("+44 20 7946 0958", "+14155550132"; High) or national in the default
// region ("(415) 555-0132", "415.555.0132"; Medium), valid by
// libphonenumber's metadata. Shapes that are usually something else are
// turned away before the (comparatively costly) validation: dates,
// thousands ("1 234 567"), ISBN-like check-digit tails, bare digit strings
// without a phone context word, numbers labelled as orders, invoices,
// tracking or account numbers, prices and times.
func (s *scanner) phone(w *window) (inspect.Confidence, bool) {
	// A phone number is the whole run: "3824 462121 2123" holds no phone
	// number in its first two groups.
	if w.digits < 7 || w.digits > 15 || w.g != 0 || w.h != w.r.n-1 {
		return 0, false
	}
	t := s.text
	n := w.groups()
	for i := 0; i < n-1; i++ {
		if strings.IndexByte(w.sep(t, i), '/') >= 0 {
			return 0, false
		}
	}
	if w.prev == '#' || w.prev == '$' || w.next == ':' || w.next == '/' {
		return 0, false
	}
	if !w.plus {
		if n == 1 {
			if !near(t, w.start, w.end, 32, 0, ctxPhone) {
				return 0, false
			}
		} else if w.size(0) > 5 || w.size(n-1) < 2 || thousands(w, t) || dateShaped(w, t) || n == 2 && w.sep(t, 0) == "." {
			return 0, false // "12350.50" is a decimal
		}
		if near(t, w.start, w.end, 20, 0, ctxNotPhone) && !near(t, w.start, w.end, 20, 0, ctxPhone) {
			return 0, false
		}
	}
	var buf [24]byte
	d := buf[:0]
	for k := w.g; k <= w.h; k++ {
		g := w.r.g[k]
		// "+44 (0)20 7946 0958": the bracketed trunk prefix is not dialled
		// from abroad.
		if w.plus && k > w.g && t[g.s:g.e] == "0" && g.s > 0 && t[g.s-1] == '(' && g.e < len(t) && t[g.e] == ')' {
			continue
		}
		d = append(d, t[g.s:g.e]...)
	}
	if w.plus {
		if s.d.validInternational(d) {
			return inspect.High, true
		}
		return 0, false
	}
	if s.d.validNational(d) {
		return inspect.Medium, true
	}
	return 0, false
}

// thousands reports "1 234 567" or "12.345.678": every group after the
// first has three digits.
func thousands(w *window, t string) bool {
	if w.size(0) > 3 {
		return false
	}
	if _, ok := w.sameSeps(t, " ", ".", "-"); !ok {
		return false
	}
	for i := 1; i < w.groups(); i++ {
		if w.size(i) != 3 {
			return false
		}
	}
	return true
}

// dateShaped reports 2024-01-15, 15.01.2024 and 01/15/24 style numbers.
func dateShaped(w *window, t string) bool {
	if w.groups() != 3 {
		return false
	}
	if _, ok := w.sameSeps(t, "-", ".", "/"); !ok {
		return false
	}
	a, b, c := w.size(0), w.size(1), w.size(2)
	return (a == 4 && b <= 2 && c <= 2) || (a <= 2 && b <= 2 && (c == 4 || c == 2))
}

// validInternational validates digits written after a '+'.
func (d *Detector) validInternational(digits []byte) bool {
	for l := 1; l <= 3 && l < len(digits); l++ {
		cc := prefixNum(digits, l)
		if callingCodes[cc] {
			return validNumber(int32(cc), digits[l:], "")
		}
	}
	return false
}

// validNational validates digits written without a country code, in the
// default region, with or without its trunk prefix ("1 800 ...", "020 ...").
func (d *Detector) validNational(digits []byte) bool {
	if d.ndd != "" && len(digits) > len(d.ndd) && string(digits[:len(d.ndd)]) == d.ndd {
		if validNumber(d.regionCC, digits[len(d.ndd):], d.region) {
			return true
		}
	}
	return validNumber(d.regionCC, digits, d.region)
}

// validNumber builds the number libphonenumber would parse and asks its
// metadata. Parsing the text with phonenumbers.Parse gives the same answer
// for the candidates the scanner produces, at several times the cost.
func validNumber(cc int32, nsn []byte, region string) bool {
	if len(nsn) < 4 || len(nsn) > 14 {
		return false
	}
	var national uint64
	zeros := int32(0)
	for i, c := range nsn {
		if c == '0' && int(zeros) == i {
			zeros++
		}
		national = national*10 + uint64(c-'0')
	}
	num := &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &national}
	if zeros > 0 {
		if int(zeros) == len(nsn) {
			return false
		}
		italian := true
		num.ItalianLeadingZero = &italian
		num.NumberOfLeadingZeros = &zeros
	}
	regions := phonenumbers.GetRegionCodesForCountryCode(int(cc))
	if len(regions) == 0 {
		return false
	}
	if region == "" {
		region = regions[0] // the main region: US for +1, GB for +44
	}
	// The length check is cheap; the pattern checks below run regular
	// expressions. Checking the main region first spares IsValidNumber's
	// walk over every region sharing the code (25 for +1) in the common case.
	if !phonenumbers.IsPossibleNumber(num) {
		return false
	}
	if phonenumbers.IsValidNumberForRegion(num, region) {
		return true
	}
	return len(regions) > 1 && phonenumbers.IsValidNumber(num)
}

package pii

import "gatehouse/internal/inspect"

// upperToken looks at a word starting with two upper-case letters for an
// IBAN or a UK National Insurance number. It returns the index after what
// it consumed, or i when the word is neither.
func (s *scanner) upperToken(i int) int {
	if s.on(bitIBAN) {
		if j := s.iban(i); j > i {
			return j
		}
	}
	if s.on(bitNationalID) {
		return s.nino(i)
	}
	return i
}

// ibanLengths maps a country code to the length of its IBANs (SWIFT's IBAN
// registry).
var ibanLengths = func() (m [26 * 26]uint8) {
	for cc, n := range map[string]uint8{
		"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
		"BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
		"DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
		"GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
		"IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
		"LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
		"MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
		"PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
		"SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
		"TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
	} {
		m[int(cc[0]-'A')*26+int(cc[1]-'A')] = n
	}
	return m
}()

// ibanLength is the length of the country's IBANs, 0 for a country
// without them.
func ibanLength(country string) int {
	if len(country) != 2 || !isUpper(country[0]) || !isUpper(country[1]) {
		return 0
	}
	return int(ibanLengths[int(country[0]-'A')*26+int(country[1]-'A')])
}

// iban reads an IBAN at i, compact ("DE89370400440532013000") or printed
// in groups of four ("DE89 3704 0044 0532 0130 00"). An IBAN-shaped token
// with a bad checksum is consumed without a finding, so its digits are not
// read again as some other number. It returns the index after the token,
// or i when there is no IBAN-shaped token.
func (s *scanner) iban(i int) int {
	t := s.text
	if i+4 > len(t) || !isDigit(t[i+2]) || !isDigit(t[i+3]) {
		return i
	}
	want := ibanLength(t[i : i+2])
	if want == 0 {
		return i
	}
	var buf [34]byte
	n := 0
	j := i
	spaced := false
	for n < want && j < len(t) {
		c := t[j]
		switch {
		case isDigit(c) || isUpper(c):
			buf[n] = c
			n++
			j++
		case c == ' ' && n%4 == 0 && n > 0 && j+1 < len(t) && isAlnum(t[j+1]) && (spaced || n == 4):
			spaced = true
			j++
		default:
			return i
		}
	}
	if n != want || (j < len(t) && isWord(t[j])) {
		return i
	}
	if spaced && j+1 < len(t) && t[j] == ' ' && isDigit(t[j+1]) && n%4 == 0 {
		// "DE89 3704 ... 3000 12": the groups go on past the length.
		return i
	}
	if !ibanChecksum(buf[:n]) {
		return j
	}
	s.emit(TypeIBAN, i, j, inspect.High)
	return j
}

// ibanChecksum is ISO 13616's mod-97 check: move the first four characters
// to the end, read letters as 10–35, and the number mod 97 must be 1.
func ibanChecksum(b []byte) bool {
	if len(b) < 5 {
		return false
	}
	r := 0
	add := func(c byte) {
		if isDigit(c) {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A'+10)) % 97
		}
	}
	for _, c := range b[4:] {
		add(c)
	}
	for _, c := range b[:4] {
		add(c)
	}
	return r == 1
}

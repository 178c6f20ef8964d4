package pii

import "gatehouse/internal/inspect"

// Byte classes for the candidate pass.
const (
	clOther uint8 = iota
	clDigit
	clUpper
	clLower // lower-case letters and '_': the rest of a word
	clAt
	clColon
	clPlus  // '+' or '(' : may open a phone number
	clSlash // '\\': may start a JSON escape in raw JSON text
)

var class = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = clDigit
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = clUpper
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = clLower
	}
	t['_'] = clLower
	t['@'] = clAt
	t[':'] = clColon
	t['+'] = clPlus
	t['('] = clPlus
	t['\\'] = clSlash
	return t
}()

func isDigit(c byte) bool  { return c-'0' < 10 }
func isUpper(c byte) bool  { return c-'A' < 26 }
func isLower(c byte) bool  { return c-'a' < 26 }
func isLetter(c byte) bool { return isUpper(c) || isLower(c) }
func isAlnum(c byte) bool  { return isDigit(c) || isLetter(c) }
func isWord(c byte) bool   { return wordByte[c] }

var wordByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = isAlnum(byte(c)) || c == '_'
	}
	return t
}()

func lower(c byte) byte {
	if isUpper(c) {
		return c + 'a' - 'A'
	}
	return c
}

// scanner is the state of one Scan.
type scanner struct {
	d    *Detector
	text string
	dst  []inspect.Finding
	base int // len(dst) on entry: findings before it are the caller's
}

func (s *scanner) on(b typeSet) bool { return s.d.enabled&b != 0 }

func (s *scanner) emit(typ string, start, end int, c inspect.Confidence) {
	s.dst = append(s.dst, inspect.Finding{Category: inspect.CategoryPII, Type: typ, Start: start, End: end, Confidence: c})
}

// dropFrom removes this scan's findings that end after start: an email
// found at '@' supersedes a number found earlier in its local part.
func (s *scanner) dropFrom(start int) {
	for len(s.dst) > s.base && s.dst[len(s.dst)-1].End > start {
		s.dst = s.dst[:len(s.dst)-1]
	}
}

// scan is the single candidate pass. Words that start with a letter are
// skipped whole, so digits inside identifiers and hex hashes never become
// number candidates.
func (s *scanner) scan() {
	t := s.text
	n := len(t)
	want := s.d.enabled
	for i := 0; i < n; {
		switch class[t[i]] {
		case clOther:
			i++
		case clLower:
			i = skipWord(t, i+1)
		case clUpper:
			if want&(bitIBAN|bitNationalID) != 0 && i+3 < n && isUpper(t[i+1]) && (i == 0 || !isWord(t[i-1])) {
				if j := s.upperToken(i); j > i {
					i = j
					continue
				}
			}
			i = skipWord(t, i+1)
		case clDigit:
			i = s.numbers(i)
		case clPlus:
			if i+1 < n && (isDigit(t[i+1]) || t[i] == '+' && t[i+1] == '(' && i+2 < n && isDigit(t[i+2])) && (i == 0 || !isWord(t[i-1])) {
				i = s.numbers(i)
			} else {
				i++
			}
		case clAt:
			if want&bitEmail != 0 {
				i = s.email(i)
			} else {
				i++
			}
		case clColon:
			if want&bitIPAddress != 0 && i > 0 && i+1 < n && isHex(t[i-1]) && (isHex(t[i+1]) || t[i+1] == ':') {
				i = s.ipv6(i)
			} else {
				i++
			}
		case clSlash:
			// "\n", "\t", "\r" and "\uXXXX" in raw JSON are separators, not
			// the start of a word that would hide the number after them.
			if i+1 < n && (t[i+1] == 'n' || t[i+1] == 't' || t[i+1] == 'r') {
				i += 2
			} else if i+5 < n && t[i+1] == 'u' {
				i += 6
			} else {
				i++
			}
		}
	}
}

func skipWord(t string, i int) int {
	for i < len(t) && wordByte[t[i]] {
		i++
	}
	return i
}

// prevByte is the byte before i, reading a raw-JSON "\n" escape as a space.
func prevByte(t string, i int) byte {
	if i <= 0 {
		return ' '
	}
	if i >= 2 && t[i-2] == '\\' && (t[i-1] == 'n' || t[i-1] == 't' || t[i-1] == 'r') {
		return ' '
	}
	return t[i-1]
}

func byteAt(t string, i int) byte {
	if i < 0 || i >= len(t) {
		return 0
	}
	return t[i]
}

// Context words. A phrase matches case-insensitively at word boundaries;
// a space in a phrase matches a space, '_', '-', '.' or nothing, so
// "date of birth" also matches "date_of_birth" and "dateOfBirth".
var (
	ctxSSN      = []string{"ssn", "social security", "soc sec", "ss no", "ss#"}
	ctxSIN      = []string{"sin", "social insurance", "nas"}
	ctxAadhaar  = []string{"aadhaar", "aadhar", "uidai", "uid"}
	ctxNINO     = []string{"national insurance", "nino", "ni number", "ni no", "nin"}
	ctxDOB      = []string{"dob", "d.o.b", "date of birth", "birth date", "birthdate", "born", "birthday"}
	ctxPhone    = []string{"phone", "tel", "telephone", "mobile", "cell", "cellphone", "fax", "call", "sms", "whatsapp", "msisdn", "contact", "ph", "mob"}
	ctxNotPhone = []string{"isbn", "issn", "doi", "sku", "order", "invoice", "tracking", "ticket", "ref", "version", "serial", "account", "acct", "routing", "id", "po", "case", "build", "txn", "transaction"}
	ctxVersion  = []string{"version", "ver", "v", "build", "release", "section", "chapter", "clause", "oid", "rule", "step", "firmware"}
)

// near reports whether one of words occurs within before bytes before
// start or after bytes after end.
func near(t string, start, end, before, after int, words []string) bool {
	return phraseIn(t, max(start-before, 0), start, words) || phraseIn(t, end, min(end+after, len(t)), words)
}

// phraseIn reports whether one of phrases starts somewhere in t[lo:hi]
// (it may end past hi, but not past the end of t).
func phraseIn(t string, lo, hi int, phrases []string) bool {
	for p := lo; p < hi; p++ {
		c := lower(t[p])
		if !isLower(c) {
			continue
		}
		// Left boundary: not inside a word, except a camelCase hump.
		if p > 0 && isLetter(t[p-1]) && !(isUpper(t[p]) && isLower(t[p-1])) {
			continue
		}
		for _, phrase := range phrases {
			if phrase[0] != c {
				continue
			}
			if q, ok := matchPhrase(t, p, phrase); ok {
				if q == len(t) || !isLetter(t[q]) || (isUpper(t[q]) && isLower(t[q-1])) {
					return true
				}
			}
		}
	}
	return false
}

func matchPhrase(t string, p int, phrase string) (int, bool) {
	q := p
	for j := 0; j < len(phrase); j++ {
		if phrase[j] == ' ' {
			if q < len(t) && (t[q] == ' ' || t[q] == '_' || t[q] == '-' || t[q] == '.') {
				q++
			}
			continue
		}
		if q >= len(t) || lower(t[q]) != phrase[j] {
			return 0, false
		}
		q++
	}
	return q, true
}

package pii

import (
	"strings"

	"golang.org/x/net/publicsuffix"

	"gatehouse/internal/inspect"
)

// isLocal is the part of RFC 5321's local-part alphabet people use. The
// rest ('/', '=', '?', '!' ...) mostly shows up around addresses in URLs
// and query strings, where taking it would stretch the match.
func isLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func isDomain(c byte) bool { return isAlnum(c) || c == '-' }

// email reads the address around the '@' at a. It returns where the scan
// continues: after the address, or after the '@' when there is none.
func (s *scanner) email(a int) int {
	t := s.text
	start, end, ok := emailAt(t, a)
	if !ok {
		return a + 1
	}
	s.dropFrom(start)
	s.emit(TypeEmail, start, end, inspect.High)
	return end
}

// emailAt finds the address whose '@' is at a.
func emailAt(t string, a int) (start, end int, ok bool) {
	// Local part, leftwards.
	l := a
	for l > 0 && a-l < 64 && isLocal(t[l-1]) {
		l--
	}
	if l > 0 && isLocal(t[l-1]) {
		return 0, 0, false // longer than 64: not a mailbox
	}
	// A raw-JSON escape before the address ("\nbob@...") is not part of it.
	if l > 0 && t[l-1] == '\\' && a-l > 1 && (t[l] == 'n' || t[l] == 't' || t[l] == 'r') {
		l++
	}
	for l < a && (t[l] == '.' || t[l] == '-' || t[l] == '+') {
		l++
	}
	if l == a || t[a-1] == '.' || strings.Contains(t[l:a], "..") {
		return 0, 0, false
	}
	// URL user info ("https://user@host") names an account, not a mailbox.
	if l >= 3 && t[l-3:l] == "://" {
		return 0, 0, false
	}

	// Domain, rightwards: labels of letters, digits and inner hyphens.
	r := a + 1
	labels := 0
	lastStart := r
	for {
		ls := r
		for r < len(t) && isDomain(t[r]) && r-ls < 63 {
			r++
		}
		if r == ls || t[ls] == '-' || t[r-1] == '-' {
			return 0, 0, false
		}
		labels++
		lastStart = ls
		if r+1 < len(t) && t[r] == '.' && isAlnum(t[r+1]) && r-a < 253 {
			r++
			continue
		}
		break
	}
	if labels < 2 || (r < len(t) && (isWord(t[r]) || t[r] == '@')) {
		return 0, 0, false
	}
	// "icon@2x.webp", "logo@1.5x.co": a retina image suffix, not a host.
	if retina(t[a+1 : r]) {
		return 0, 0, false
	}
	// "git@github.com:org/repo.git": an scp-style ssh remote.
	if r+1 < len(t) && t[r] == ':' && (isWord(t[r+1]) || t[r+1] == '/' || t[r+1] == '~') {
		return 0, 0, false
	}
	// Last, as it is the one check that allocates (publicsuffix tries the
	// label as an IP address first, and that error escapes).
	if !topLevelDomain(t[lastStart:r]) {
		return 0, 0, false // localhost-less hosts, file names (icon@2x.png), versions (foo@1.2.3)
	}
	return l, r, true
}

// topLevelDomain reports whether label is an ICANN top-level domain.
func topLevelDomain(label string) bool {
	if len(label) < 2 {
		return false
	}
	puny := strings.HasPrefix(label, "xn--") || strings.HasPrefix(label, "XN--")
	for i := 0; i < len(label); i++ {
		if !isLetter(label[i]) && !puny {
			return false
		}
	}
	for i := 0; i < len(label); i++ {
		if isUpper(label[i]) {
			label = strings.ToLower(label)
			break
		}
	}
	_, icann := publicsuffix.PublicSuffix(label)
	return icann
}

// retina reports a domain whose first label is an image scale such as
// "2x" or "3x".
func retina(domain string) bool {
	k := strings.IndexByte(domain, '.')
	if k < 2 || domain[k-1] != 'x' {
		return false
	}
	for i := 0; i < k-1; i++ {
		if !isDigit(domain[i]) {
			return false
		}
	}
	return true
}

package pii

import (
	"net/netip"
	"strings"

	"gatehouse/internal/inspect"
)

func isHex(c byte) bool { return isDigit(c) || c|0x20-'a' < 6 }

// ipv4 reports whether the window is a dotted-quad IPv4 address that
// identifies a host: not loopback, unspecified or a netmask, and not a
// version or section number ("v1.2.3.4", "Chrome/120.0.0.0",
// "section 1.2.3.4").
func (s *scanner) ipv4(w *window) bool {
	if w.groups() != 4 || w.plus || w.digits > 12 {
		return false
	}
	t := s.text
	if _, ok := w.sameSeps(t, "."); !ok {
		return false
	}
	if w.start > 0 {
		if p := t[w.start-1]; p == '/' && isWord(prevByte(t, w.start-1)) {
			return false
		}
	}
	addr, err := netip.ParseAddr(t[w.start:w.end])
	if err != nil || !reportableIP(addr) {
		return false
	}
	return !near(t, w.start, w.end, 12, 0, ctxVersion)
}

func reportableIP(a netip.Addr) bool {
	if a.IsLoopback() || a.IsUnspecified() {
		return false
	}
	return !(a.Is4() && a.As4()[0] == 255)
}

// ipv6 reads an IPv6 address around the ':' at c. It returns where the
// scan continues.
func (s *scanner) ipv6(c int) int {
	t := s.text
	l := c
	for l > 0 && c-l < 40 && (isHex(t[l-1]) || t[l-1] == ':') {
		l--
	}
	r := c + 1
	for r < len(t) && r-l < 45 && (isHex(t[r]) || t[r] == ':' || t[r] == '.') {
		r++
	}
	for r > c+1 && t[r-1] == '.' {
		r-- // sentence end
	}
	if (l > 0 && (isWord(t[l-1]) || t[l-1] == '.')) || (r < len(t) && isWord(t[r])) {
		return c + 1
	}
	// Without "::" an address has eight groups (seven colons), or six and
	// a dotted IPv4 tail. Times ("10:30:00") and MAC addresses fail here,
	// before ParseAddr, whose error allocates.
	cand := t[l:r]
	colons := strings.Count(cand, ":")
	full := 7
	if strings.IndexByte(cand, '.') >= 0 {
		full = 6
	}
	if colons < 2 || colons < full && !strings.Contains(cand, "::") {
		return c + 1
	}
	addr, err := netip.ParseAddr(cand)
	if err != nil || !addr.Is6() || addr.Is4In6() && !reportableIP(addr.Unmap()) || !reportableIP(addr) {
		return c + 1
	}
	s.emit(TypeIPAddress, l, r, inspect.Low)
	return r
}

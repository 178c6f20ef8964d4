package oauth

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// maxRedirectURILen bounds one redirect URI.
const maxRedirectURILen = 2000

// forbiddenSchemes may never be redirect targets: they run code in the
// browser, read local files or leave the browser for other protocols.
var forbiddenSchemes = map[string]bool{
	"javascript": true, "data": true, "vbscript": true, "file": true, "about": true,
	"blob": true, "filesystem": true, "ftp": true, "mailto": true, "ws": true, "wss": true,
}

// validateRedirectURI checks a redirect URI a client registers (RFC 6749
// §3.1.2, OAuth 2.1 §2.3, RFC 8252 §7): absolute, no fragment; https; or
// http on a loopback host (native apps); or a private-use scheme (native
// apps, e.g. com.example.app:/cb or cursor://…).
func validateRedirectURI(raw string) error {
	if raw == "" {
		return errors.New("empty redirect URI")
	}
	if len(raw) > maxRedirectURILen {
		return fmt.Errorf("redirect URI longer than %d characters", maxRedirectURILen)
	}
	if strings.ContainsAny(raw, "#\x00\r\n\t ") {
		return fmt.Errorf("redirect URI %s has a fragment or a blank or control character", quote(raw))
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("redirect URI %s is not an absolute URI", quote(raw))
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "https":
		if u.Host == "" || u.User != nil {
			return fmt.Errorf("redirect URI %s needs a host and no user information", quote(raw))
		}
	case scheme == "http":
		if u.User != nil || !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("redirect URI %s: http is allowed only on loopback hosts (localhost, 127.0.0.1, [::1]); use https", quote(raw))
		}
	case forbiddenSchemes[scheme]:
		return fmt.Errorf("redirect URI scheme %q is not allowed", scheme)
	}
	return nil
}

// isLoopbackHost reports whether host is localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redirectAllowed reports whether a redirect URI of an authorization
// request matches one the client registered: exactly, or — for http
// loopback URIs of native apps — with any port (OAuth 2.1 §8.4.2, RFC 8252
// §7.3), since such apps pick a free port at run time.
func redirectAllowed(registered []string, got string) bool {
	for _, r := range registered {
		if r == got {
			return true
		}
	}
	gu, err := url.Parse(got)
	if err != nil || gu.Scheme != "http" || !isLoopbackHost(gu.Hostname()) || gu.User != nil || strings.Contains(got, "#") {
		return false
	}
	for _, r := range registered {
		ru, err := url.Parse(r)
		if err != nil || ru.Scheme != "http" || !isLoopbackHost(ru.Hostname()) {
			continue
		}
		if strings.EqualFold(ru.Hostname(), gu.Hostname()) && ru.EscapedPath() == gu.EscapedPath() && ru.RawQuery == gu.RawQuery {
			return true
		}
	}
	return false
}

// withParams adds query parameters to a redirect URI, keeping the ones it
// has (RFC 6749 §3.1.2).
func withParams(redirect string, params url.Values) string {
	u, err := url.Parse(redirect)
	if err != nil {
		// Validated before; never happens.
		return redirect
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Set(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

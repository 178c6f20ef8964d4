package oauth

import (
	"net/netip"
	"net/url"
	"testing"
)

func TestValidateRedirectURI(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/cb", true},
		{"https://app.example.com/cb?x=1", true},
		{"http://localhost:3000/cb", true},
		{"http://127.0.0.1/cb", true},
		{"http://127.5.6.7:80/cb", true},
		{"http://[::1]:9000/cb", true},
		{"com.example.app:/oauth2redirect", true},
		{"cursor://anysphere.cursor-retrieval/oauth/callback", true},
		{"vscode://vscode.github-authentication/did-authenticate", true},
		{"", false},
		{"http://app.example.com/cb", false},
		{"http://localhost.example.com/cb", false},
		{"http://user@localhost/cb", false},
		{"https:///cb", false},
		{"https://user:pw@app.example.com/cb", false},
		{"https://app.example.com/cb#frag", false},
		{"https://app.example.com/cb#", false},
		{"/relative", false},
		{"javascript:alert(1)", false},
		{"JavaScript:alert(1)", false},
		{"data:text/html,x", false},
		{"file:///etc/passwd", false},
		{"https://app.example.com/a b", false},
	} {
		if err := validateRedirectURI(tc.uri); (err == nil) != tc.ok {
			t.Errorf("validateRedirectURI(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
}

func TestRedirectAllowed(t *testing.T) {
	reg := []string{"https://app.example.com/cb", "http://127.0.0.1/callback", "http://localhost:3000/cb?x=1", "com.example.app:/cb"}
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/cb", true},
		{"com.example.app:/cb", true},
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:53117/callback", true}, // any port on loopback
		{"http://localhost:3000/cb?x=1", true},
		{"http://localhost:4000/cb?x=1", true},
		{"http://LOCALHOST:4000/cb?x=1", true},
		{"http://127.0.0.1:53117/callback/", false},
		{"http://127.0.0.1:53117/other", false},
		{"http://localhost:53117/callback", false}, // localhost and 127.0.0.1 are different hosts
		{"http://localhost:3000/cb?x=2", false},
		{"http://localhost:3000/cb", false},
		{"https://127.0.0.1:53117/callback", false},
		{"https://app.example.com:444/cb", false}, // ports are exact off loopback
		{"https://app.example.com/cb/", false},
		{"https://app.example.com/CB", false},
		{"https://evil.example.com/cb", false},
		{"http://127.0.0.1:53117/callback#x", false},
		{"com.example.app:/cb2", false},
	} {
		if got := redirectAllowed(reg, tc.uri); got != tc.ok {
			t.Errorf("redirectAllowed(%q) = %v, want %v", tc.uri, got, tc.ok)
		}
	}
}

func TestWithParams(t *testing.T) {
	got := withParams("https://app.example.com/cb?keep=1", url.Values{"code": {"c"}, "state": {""}, "iss": {"https://gh"}})
	u, _ := url.Parse(got)
	q := u.Query()
	if q.Get("keep") != "1" || q.Get("code") != "c" || q.Has("state") || q.Get("iss") != "https://gh" {
		t.Fatalf("withParams = %s", got)
	}
}

func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		ip string
		ok bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1:248:1893:25c8:1946", true},
		{"127.0.0.1", false},
		{"127.1.2.3", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"255.255.255.255", false},
		{"224.0.0.1", false},
		{"::", false},
		{"fe80::1", false},
		{"fd00::1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"64:ff9b::7f00:1", false},
		{"2002:7f00:1::", false},
		{"192.0.2.1", false},
		{"198.18.0.1", false},
	} {
		if got := publicAddr(netip.MustParseAddr(tc.ip)); got != tc.ok {
			t.Errorf("publicAddr(%s) = %v, want %v", tc.ip, got, tc.ok)
		}
	}
}

func TestPKCE(t *testing.T) {
	v, c := pkce()
	if !validVerifier(v) || !validChallenge(c) || !verifyPKCE(v, c) {
		t.Fatal("a generated pair does not verify")
	}
	// RFC 7636 appendix B.
	if !verifyPKCE("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") {
		t.Fatal("the RFC 7636 example does not verify")
	}
	for _, bad := range []string{"", "short", string(make([]byte, 43)), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX+", string(make([]byte, 129))} {
		if validVerifier(bad) {
			t.Errorf("validVerifier(%q) = true", bad)
		}
	}
	if validChallenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c") || validChallenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c=") {
		t.Error("a malformed challenge is valid")
	}
}

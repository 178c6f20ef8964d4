package oauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

var (
	errForbiddenAddress  = errors.New("destination address is not public")
	errCrossHostRedirect = errors.New("redirect to another host")
)

// nonPublic lists the address ranges a metadata document fetch may not
// reach (besides loopback, private, link-local, multicast and unspecified
// addresses, which netip classifies).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),  // documentation
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),  // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64: may embed any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"), // documentation
	netip.MustParsePrefix("2002::/16"),     // 6to4: may embed any IPv4 address
	netip.MustParsePrefix("fc00::/7"),      // unique local
}

// publicAddr reports whether a fetch may connect to ip.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || !ip.IsGlobalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// guardDial refuses connections to non-public addresses. It runs after name
// resolution, on the address actually dialled, so DNS answers that change
// between a check and the connection (rebinding) do not get through.
func guardDial(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", errForbiddenAddress, address)
	}
	if !publicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", errForbiddenAddress, ap.Addr())
	}
	return nil
}

// metadataClient returns the HTTP client that fetches metadata documents:
// base (or a new client) with redirects limited to the same host over https
// and, unless insecure, a dialer that refuses non-public addresses and no
// proxy (a proxy would hide the address that must be checked).
func metadataClient(base *http.Client, insecure bool) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	c.Timeout = fetchTimeout
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > maxFetchRedirects {
			return errors.New("too many redirects")
		}
		first := via[0].URL
		if req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
			return errCrossHostRedirect
		}
		return nil
	}
	if insecure {
		return &c
	}
	var t *http.Transport
	switch rt := c.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = rt.Clone()
	default:
		// An unknown RoundTripper cannot be guarded; use a fresh one.
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	d := &net.Dialer{Timeout: fetchTimeout, KeepAlive: 30 * time.Second, Control: guardDial}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	t.DialTLSContext = nil
	t.Proxy = nil
	t.MaxResponseHeaderBytes = 16 << 10
	c.Transport = t
	return &c
}

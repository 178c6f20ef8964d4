package oauth

import (
	"net/url"
	"slices"
	"strings"

	"gatehouse/internal/identity"
)

// serverForResource returns the virtual server whose resource URL is res.
// Scheme and host compare case-insensitively and one trailing slash is
// ignored (the MCP authorization spec asks servers to accept both); the
// path compares exactly. A resource with a query or fragment is no
// resource of this gateway.
func (s *Server) serverForResource(res string) (string, bool) {
	u, err := url.Parse(res)
	if err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Contains(res, "#") {
		return "", false
	}
	if !strings.EqualFold(u.Scheme, s.issuer.Scheme) || !strings.EqualFold(u.Host, s.issuer.Host) {
		return "", false
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	name, ok := strings.CutPrefix(path, resourcePrefix)
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	if !slices.Contains(s.cfg.Servers(), name) {
		return "", false
	}
	return name, true
}

// serverForScope returns the server named by a scope mcp:{server}, when
// that server exists.
func (s *Server) serverForScope(scope string) (string, bool) {
	name, ok := strings.CutPrefix(scope, "mcp:")
	if !ok || name == "" || !slices.Contains(s.cfg.Servers(), name) {
		return "", false
	}
	return name, true
}

// expandServers turns a grant list (server names, "*" for all) into the
// names of existing virtual servers, in configuration order.
func (s *Server) expandServers(granted []string) []string {
	all := s.cfg.Servers()
	if slices.Contains(granted, "*") {
		return slices.Clone(all)
	}
	var out []string
	for _, name := range all {
		if slices.Contains(granted, name) {
			out = append(out, name)
		}
	}
	return out
}

// scopesFor returns mcp:{server} for each server.
func scopesFor(servers []string) []string {
	out := make([]string, len(servers))
	for i, name := range servers {
		out[i] = identity.ServerScope(name)
	}
	return out
}

// resourcesFor returns the resource URL of each server.
func (s *Server) resourcesFor(servers []string) []string {
	out := make([]string, len(servers))
	for i, name := range servers {
		out[i] = ResourceURL(s.cfg.Issuer, name)
	}
	return out
}

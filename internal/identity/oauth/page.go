package oauth

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"net/url"
)

//go:embed login.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// Page kinds.
const (
	pageLogin  = "login"
	pageError  = "error"
	pageDenied = "denied"
)

// page is what login.html shows.
type page struct {
	Kind    string
	Title   string
	Message string // error and denied pages

	// Login page.
	ClientName   string
	ClientHost   string // host of a metadata document client_id
	Agent        string // the agent the user will drive, if any
	Server       string
	Resource     string
	RedirectHost string
	Localhost    bool // the application runs on the user's machine
	Action       string
	Hidden       []hiddenField
	FormToken    string
	Error        string
}

type hiddenField struct{ Name, Value string }

// loginPage describes the login form for req, with an optional error.
func (s *Server) loginPage(req *authRequest, token, errMsg string) page {
	p := page{
		Kind: pageLogin, Title: "Sign in to Gatehouse",
		ClientName: req.client.displayName(),
		Server:     req.server, Resource: req.Resource,
		Action: pathAuthorize, Hidden: req.hidden(), FormToken: token, Error: errMsg,
	}
	if req.client.Kind == kindDocument {
		if u, err := url.Parse(req.client.ID); err == nil {
			p.ClientHost = u.Host
		}
	}
	if req.client.Kind == kindAgent {
		p.Agent = req.client.Agent.Name
	}
	if u, err := url.Parse(req.RedirectURI); err == nil {
		p.RedirectHost = u.Host
		if u.Host == "" {
			p.RedirectHost = u.Scheme + ":"
		}
		p.Localhost = u.Scheme == "http" && isLoopbackHost(u.Hostname())
	}
	return p
}

// renderPage writes an HTML page that must not be cached, framed or leak
// its URL (which holds the request's state) through Referer.
func (s *Server) renderPage(w http.ResponseWriter, status int, p page) {
	if p.Title == "" {
		p.Title = "Sign-in problem"
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		s.log.Error("rendering the login page", "error", err)
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// No form-action: after the post the browser follows a redirect to the
	// client's redirect URI, which form-action would block.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"gatehouse/internal/identity"
	"gatehouse/internal/store"
)

// Authorization endpoint limits and lifetimes.
const (
	codeLifetime     = 60 * time.Second
	maxLoginBody     = 32 << 10
	maxParamLen      = 4096
	maxUsernameLen   = 256
	maxPasswordBytes = 1024
)

// authRequest is a validated authorization request (RFC 6749 §4.1.1 with
// PKCE and a resource indicator).
type authRequest struct {
	ResponseType        string
	ClientID            string
	RedirectURI         string
	CodeChallenge       string
	CodeChallengeMethod string
	Resource            string // canonical resource URL of Server
	Scope               string
	State               string

	client *client
	server string
}

// fields returns the request parameters bound into the login form token.
func (q *authRequest) fields() []string {
	return []string{q.ResponseType, q.ClientID, q.RedirectURI, q.CodeChallenge, q.CodeChallengeMethod, q.Resource, q.Scope, q.State}
}

// hidden returns the parameters the login form carries back.
func (q *authRequest) hidden() []hiddenField {
	return []hiddenField{
		{"response_type", q.ResponseType}, {"client_id", q.ClientID}, {"redirect_uri", q.RedirectURI},
		{"code_challenge", q.CodeChallenge}, {"code_challenge_method", q.CodeChallengeMethod},
		{"resource", q.Resource}, {"scope", q.Scope}, {"state", q.State},
	}
}

// authProblem is a failed authorization request: either shown on the page
// (the client or its redirect URI cannot be trusted, RFC 6749 §4.1.2.1) or
// sent back to the client's redirect URI.
type authProblem struct {
	page     bool
	status   int
	message  string      // for the page
	redirect *oauthError // for the client
	cause    error
}

func pageProblem(status int, format string, args ...any) *authProblem {
	return &authProblem{page: true, status: status, message: fmt.Sprintf(format, args...)}
}

func redirectProblem(e *oauthError) *authProblem { return &authProblem{redirect: e} }

// handleAuthorize serves the login page (GET) and checks a login (POST).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.showLogin(w, r)
	case http.MethodPost:
		s.postLogin(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.renderPage(w, http.StatusMethodNotAllowed, page{Kind: pageError, Message: "Use GET or POST."})
	}
}

// showLogin validates the authorization request, then shows the form.
func (s *Server) showLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req, p := s.parseAuthRequest(r.Context(), q)
	if p != nil {
		s.answerProblem(w, r, req, p, http.StatusFound)
		return
	}
	binding := s.browserBinding(w, r)
	s.renderPage(w, http.StatusOK, s.loginPage(req, s.formToken(binding, req, s.now()), ""))
}

// postLogin checks the form token, the user's password and the user's
// access to the server, then redirects with an authorization code.
func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, e := readForm(w, r, maxLoginBody)
	if e != nil {
		s.renderPage(w, http.StatusBadRequest, page{Kind: pageError, Message: "The sign-in form could not be read: " + e.Description})
		return
	}
	req, p := s.parseAuthRequest(ctx, form)
	if p != nil {
		s.answerProblem(w, r, req, p, http.StatusSeeOther)
		return
	}
	now := s.now()
	if why := s.checkForm(r, form.Get("form_token"), req, now); why != formOK {
		s.log.Warn("login form refused", "client_id", req.ClientID, "reason", string(why))
		status := http.StatusForbidden
		if why == formBusy {
			status = http.StatusServiceUnavailable
		}
		s.renderPage(w, status, page{Kind: pageError, Title: "Sign-in refused", Message: string(why)})
		return
	}
	binding := s.browserBinding(w, r)
	retry := func(status int, msg string) {
		s.renderPage(w, status, s.loginPage(req, s.formToken(binding, req, s.now()), msg))
	}
	if form.Get("action") == "cancel" {
		s.log.Info("login cancelled", "client_id", req.ClientID)
		s.redirectError(w, r, req, newError(errAccessDenied, "the user cancelled the sign-in"), http.StatusSeeOther)
		return
	}
	username := strings.TrimSpace(form.Get("username"))
	password := form.Get("password")
	if username == "" || password == "" || len(username) > maxUsernameLen || len(password) > maxPasswordBytes {
		retry(http.StatusOK, "Enter your username and password.")
		return
	}
	if d := s.failures.wait(username, now); d > 0 {
		secs := int((d + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		s.log.Warn("login throttled", "user", username, "client_id", req.ClientID)
		retry(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins for this username. Wait %d seconds and try again.", secs))
		return
	}
	u, ok, err := s.checkPassword(ctx, username, password)
	if err != nil {
		s.log.Error("checking a password", "user", username, "error", err)
		s.renderPage(w, http.StatusInternalServerError, page{Kind: pageError, Message: "Signing in failed on the server. Try again later."})
		return
	}
	if !ok {
		s.failures.fail(username, now)
		s.log.Warn("login failed", "user", username, "client_id", req.ClientID)
		retry(http.StatusOK, "Wrong username or password.")
		return
	}
	s.failures.succeed(username)
	if msg := s.accessProblem(ctx, u, req); msg != "" {
		s.log.Warn("login refused: no access", "user", username, "client_id", req.ClientID, "server", req.server)
		s.renderPage(w, http.StatusForbidden, page{Kind: pageDenied, Title: "No access to " + req.server, Message: msg})
		return
	}
	code := randomToken("ghac_", 32)
	ac := store.AuthCode{
		Hash: hashSecret(code), ClientID: req.ClientID, Username: u.Username, RedirectURI: req.RedirectURI,
		CodeChallenge: req.CodeChallenge, Resource: req.Resource, Scope: req.Scope,
		CreatedAt: now.UTC(), ExpiresAt: now.Add(codeLifetime).UTC(),
	}
	if req.client.Kind == kindAgent {
		ac.AgentID = req.client.Agent.ID
	}
	if err := s.cfg.Store.CreateAuthCode(ctx, ac); err != nil {
		s.log.Error("storing an authorization code", "user", username, "client_id", req.ClientID, "error", err)
		s.renderPage(w, http.StatusInternalServerError, page{Kind: pageError, Message: "Signing in failed on the server. Try again later."})
		return
	}
	s.log.Info("login succeeded", "user", u.Username, "client_id", req.ClientID, "server", req.server)
	http.Redirect(w, r, withParams(req.RedirectURI, url.Values{
		"code": {code}, "state": {req.State}, "iss": {s.cfg.Issuer},
	}), http.StatusSeeOther)
}

// parseAuthRequest validates an authorization request. Problems with the
// client or its redirect URI come first and are shown on the page; the
// rest go back to the client.
func (s *Server) parseAuthRequest(ctx context.Context, q url.Values) (*authRequest, *authProblem) {
	for k, v := range q {
		if len(v) > 1 && (k == "client_id" || k == "redirect_uri") {
			return nil, pageProblem(http.StatusBadRequest, "The request names more than one %s.", k)
		}
	}
	req := &authRequest{
		ResponseType: q.Get("response_type"), ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"),
		CodeChallenge: q.Get("code_challenge"), CodeChallengeMethod: q.Get("code_challenge_method"),
		Scope: q.Get("scope"), State: q.Get("state"),
	}
	if req.ClientID == "" {
		return nil, pageProblem(http.StatusBadRequest, "The application did not identify itself (client_id is missing).")
	}
	c, e := s.lookupClient(ctx, req.ClientID, true)
	if e != nil {
		if e.Code == errServerError {
			return nil, &authProblem{page: true, status: http.StatusInternalServerError, message: "The application could not be looked up. Try again later.", cause: e}
		}
		return nil, pageProblem(http.StatusBadRequest, "The application is not accepted: %s.", e.Description)
	}
	req.client = c
	if c.Kind == kindAgent {
		if why := agentInactive(c.Agent); why != "" {
			return nil, pageProblem(http.StatusBadRequest, "The application is not accepted: %s.", why)
		}
	}
	if !c.allows(grantAuthorizationCode) {
		return nil, pageProblem(http.StatusBadRequest, "The application %s may not use this sign-in (it has no registered redirect URIs).", c.displayName())
	}
	if req.RedirectURI == "" {
		return nil, pageProblem(http.StatusBadRequest, "The application did not say where to return after sign-in (redirect_uri is missing).")
	}
	if !redirectAllowed(c.RedirectURIs, req.RedirectURI) {
		return nil, pageProblem(http.StatusBadRequest, "The return address %s is not registered for the application %s, so this sign-in cannot continue.", req.RedirectURI, c.displayName())
	}
	// From here on, errors are sent back to the client.
	for k, v := range q {
		if len(v) > 1 && k != "resource" {
			return req, redirectProblem(newError(errInvalidRequest, "parameter %s is repeated", quote(k)))
		}
		for _, x := range v {
			if len(x) > maxParamLen {
				return req, redirectProblem(newError(errInvalidRequest, "parameter %s is too long", quote(k)))
			}
		}
	}
	switch {
	case req.ResponseType == "":
		return req, redirectProblem(newError(errInvalidRequest, "response_type is missing"))
	case req.ResponseType != "code":
		return req, redirectProblem(newError(errUnsupportedResponseType, "response_type must be code"))
	case req.CodeChallenge == "":
		return req, redirectProblem(newError(errInvalidRequest, "code_challenge is missing (PKCE with S256 is required)"))
	case req.CodeChallengeMethod == "plain":
		return req, redirectProblem(newError(errInvalidRequest, "code_challenge_method plain is not allowed; use S256"))
	case req.CodeChallengeMethod != "S256":
		return req, redirectProblem(newError(errInvalidRequest, "code_challenge_method must be S256"))
	case !validChallenge(req.CodeChallenge):
		return req, redirectProblem(newError(errInvalidRequest, "code_challenge is not a base64url SHA-256 value"))
	}
	resources := q["resource"]
	switch len(resources) {
	case 0:
		// Clients of the 2025-03-26 revision send no resource; one that
		// asks for exactly one server's scope names its server that way.
		name, ok := s.serverForScope(req.Scope)
		if !ok {
			return req, redirectProblem(newError(errInvalidTarget, "resource is missing: send the URL of the MCP server (%s)", ResourceURL(s.cfg.Issuer, "{server}")))
		}
		resources = []string{ResourceURL(s.cfg.Issuer, name)}
	case 1:
	default:
		return req, redirectProblem(newError(errInvalidTarget, "send one resource per authorization request"))
	}
	name, ok := s.serverForResource(resources[0])
	if !ok {
		return req, redirectProblem(newError(errInvalidTarget, "resource %s is not a virtual server of this gateway", quote(resources[0])))
	}
	req.server, req.Resource = name, ResourceURL(s.cfg.Issuer, name)
	want := identity.ServerScope(name)
	for _, sc := range strings.Fields(req.Scope) {
		if sc != want {
			return req, redirectProblem(newError(errInvalidScope, "scope %s is not available for %s (use %s)", quote(sc), req.Resource, want))
		}
	}
	req.Scope = want
	return req, nil
}

// answerProblem shows a problem on the page or sends it to the client.
func (s *Server) answerProblem(w http.ResponseWriter, r *http.Request, req *authRequest, p *authProblem, status int) {
	if p.page {
		if p.cause != nil {
			s.log.Error("authorization request failed", "error", p.cause)
		}
		s.renderPage(w, p.status, page{Kind: pageError, Title: "This sign-in cannot continue", Message: p.message})
		return
	}
	s.redirectError(w, r, req, p.redirect, status)
}

// redirectError sends an error to the client's redirect URI (RFC 6749
// §4.1.2.1, with iss per RFC 9207).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, req *authRequest, e *oauthError, status int) {
	s.log.Debug("authorization request refused", "client_id", req.ClientID, "error", e.Code, "description", e.Description)
	http.Redirect(w, r, withParams(req.RedirectURI, url.Values{
		"error": {e.Code}, "error_description": {e.Description}, "state": {req.State}, "iss": {s.cfg.Issuer},
	}), status)
}

// checkPassword verifies a user's password. An unknown or disabled user
// costs the same argon2 work as a known one and reads as a wrong password.
func (s *Server) checkPassword(ctx context.Context, username, password string) (store.User, bool, error) {
	u, err := s.cfg.Store.GetUser(ctx, username)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, fmt.Errorf("looking up user: %w", err)
	}
	hash := u.PasswordHash
	if !known || hash == "" {
		if hash, err = s.dummy(); err != nil {
			return store.User{}, false, err
		}
	}
	select {
	case s.pwSem <- struct{}{}:
	case <-ctx.Done():
		return store.User{}, false, ctx.Err()
	}
	ok, err := identity.VerifyPassword(hash, password)
	<-s.pwSem
	if err != nil {
		if known {
			s.log.Error("user has an unusable password hash", "user", username, "error", err)
		}
		return store.User{}, false, nil
	}
	if !known || u.Disabled || u.PasswordHash == "" {
		return store.User{}, false, nil
	}
	return u, ok, nil
}

// dummy returns a hash to verify against for unknown users.
func (s *Server) dummy() (string, error) {
	var err error
	s.dummyOnce.Do(func() {
		s.dummyHash, err = identity.HashPassword(randomToken("", 16))
	})
	if err != nil {
		return "", fmt.Errorf("hashing the dummy password: %w", err)
	}
	return s.dummyHash, nil
}

// accessProblem explains why the user (and the agent, when the client is
// one) may not use the requested server, or returns "".
func (s *Server) accessProblem(ctx context.Context, u store.User, req *authRequest) string {
	if !slices.Contains(s.expandServers(s.cfg.Directory.UserServers(u)), req.server) {
		groups := "no groups"
		if len(u.Groups) > 0 {
			groups = "groups " + strings.Join(u.Groups, ", ")
		}
		return fmt.Sprintf("Your account %s (%s) is not granted the MCP server %s. Ask a Gatehouse administrator to grant one of your groups access to it.", u.Username, groups, req.server)
	}
	if req.client.Kind == kindAgent {
		a, err := s.cfg.Store.GetAgent(ctx, req.client.Agent.ID)
		if err != nil {
			return "The agent " + req.client.Agent.Name + " could not be looked up."
		}
		if why := agentInactive(&a); why != "" {
			return "You cannot act through this agent: " + why + "."
		}
		if !slices.Contains(s.expandServers(s.cfg.Directory.AgentServers(a)), req.server) {
			return fmt.Sprintf("The agent %s (team %s) is not granted the MCP server %s.", a.Name, a.Team, req.server)
		}
	}
	return ""
}

package oauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"gatehouse/internal/store"
)

// Registration limits.
const (
	maxRegistrationBody = 64 << 10
	maxRedirectURIs     = 10
	maxClientNameLen    = 200
)

// registrationRequest is the part of an RFC 7591 §2 request the gateway
// uses; other members are accepted and ignored.
type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	TokenEndpointAuthMethod *string  `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ApplicationType         string   `json:"application_type"`
	Scope                   string   `json:"scope"`
	SoftwareID              string   `json:"software_id"`
	SoftwareVersion         string   `json:"software_version"`
}

// registrationResponse is the RFC 7591 §3.2.1 response.
type registrationResponse struct {
	ClientID              string `json:"client_id"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientIDIssuedAt      int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	registration
}

// handleRegister is the dynamic client registration endpoint (RFC 7591).
// Registration is open, as MCP clients expect; a registered client can do
// nothing until a user signs in through it.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if preflight(w, r) {
		return
	}
	allowCORS(w)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		e := newError(errInvalidRequest, "the registration endpoint accepts only POST")
		e.Status = http.StatusMethodNotAllowed
		s.writeError(w, r, e)
		return
	}
	reg, e := readRegistration(w, r)
	if e == nil {
		e = validateRegistration(&reg)
	}
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	now := s.now().UTC()
	resp := registrationResponse{ClientID: randomToken("ghc_", 16), ClientIDIssuedAt: now.Unix(), registration: reg}
	var secretHash []byte
	if reg.TokenEndpointAuthMethod != authNone {
		resp.ClientSecret = randomToken("ghcs_", 32)
		secretHash = hashSecret(resp.ClientSecret)
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
	}
	meta, err := json.Marshal(reg)
	if err != nil {
		s.writeError(w, r, serverError(fmt.Errorf("encoding registration: %w", err)))
		return
	}
	rec := store.OAuthClient{ClientID: resp.ClientID, Name: reg.ClientName, RedirectURIs: reg.RedirectURIs,
		Kind: kindDynamic, Metadata: meta, SecretHash: secretHash, CreatedAt: now}
	if err := s.cfg.Store.CreateClient(r.Context(), rec); err != nil {
		s.writeError(w, r, serverError(fmt.Errorf("storing client: %w", err)))
		return
	}
	s.log.Info("oauth client registered", "client_id", resp.ClientID, "client_name", reg.ClientName,
		"auth_method", reg.TokenEndpointAuthMethod, "redirect_uris", len(reg.RedirectURIs))
	writeJSON(w, http.StatusCreated, resp)
}

// readRegistration decodes a JSON registration request of bounded size.
func readRegistration(w http.ResponseWriter, r *http.Request) (registration, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return registration{}, newError(errInvalidClientMetadata, "the request body must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationBody))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			e := newError(errInvalidClientMetadata, "the registration is larger than %d bytes", maxRegistrationBody)
			e.Status = http.StatusRequestEntityTooLarge
			return registration{}, e
		}
		return registration{}, newError(errInvalidRequest, "reading the request body failed")
	}
	var req registrationRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return registration{}, newError(errInvalidClientMetadata, "the registration is not a valid JSON object of client metadata: %s", jsonProblem(err))
	}
	if dec.More() {
		return registration{}, newError(errInvalidClientMetadata, "trailing data after the JSON object")
	}
	method := ""
	if req.TokenEndpointAuthMethod != nil {
		method = *req.TokenEndpointAuthMethod
		if method == "" {
			return registration{}, newError(errInvalidClientMetadata, "token_endpoint_auth_method is empty")
		}
	}
	return registration{
		RedirectURIs: req.RedirectURIs, ClientName: req.ClientName, ClientURI: req.ClientURI,
		TokenEndpointAuthMethod: method, GrantTypes: req.GrantTypes, ResponseTypes: req.ResponseTypes,
		ApplicationType: req.ApplicationType, Scope: req.Scope,
		SoftwareID: req.SoftwareID, SoftwareVersion: req.SoftwareVersion,
	}, nil
}

// jsonProblem describes a JSON decoding error without echoing input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("member %q has the wrong type", te.Field)
	}
	return "malformed JSON"
}

// validateRegistration checks and completes (defaults) a registration.
func validateRegistration(reg *registration) *oauthError {
	if len(reg.RedirectURIs) == 0 {
		return newError(errInvalidRedirectURI, "redirect_uris is required")
	}
	if len(reg.RedirectURIs) > maxRedirectURIs {
		return newError(errInvalidRedirectURI, "at most %d redirect_uris", maxRedirectURIs)
	}
	for _, u := range reg.RedirectURIs {
		if err := validateRedirectURI(u); err != nil {
			return newError(errInvalidRedirectURI, "%s", err.Error())
		}
	}
	if err := checkText("client_name", reg.ClientName, maxClientNameLen); err != nil {
		return err
	}
	for name, v := range map[string]string{"client_uri": reg.ClientURI, "scope": reg.Scope, "software_id": reg.SoftwareID, "software_version": reg.SoftwareVersion} {
		if err := checkText(name, v, maxRedirectURILen); err != nil {
			return err
		}
	}
	switch reg.TokenEndpointAuthMethod {
	case "":
		reg.TokenEndpointAuthMethod = authSecretBasic // RFC 7591 §2 default
	case authNone, authSecretBasic, authSecretPost:
	case authPrivateKeyJWT:
		return newError(errInvalidClientMetadata, "private_key_jwt is available to agents only; register with none, client_secret_basic or client_secret_post")
	default:
		return newError(errInvalidClientMetadata, "token_endpoint_auth_method %s is not supported (none, client_secret_basic, client_secret_post)", quote(reg.TokenEndpointAuthMethod))
	}
	if len(reg.GrantTypes) == 0 {
		reg.GrantTypes = []string{grantAuthorizationCode}
	}
	for _, g := range reg.GrantTypes {
		if g != grantAuthorizationCode && g != grantRefreshToken {
			return newError(errInvalidClientMetadata, "grant type %s is not available to registered clients (authorization_code, refresh_token)", quote(g))
		}
	}
	if !slices.Contains(reg.GrantTypes, grantAuthorizationCode) {
		return newError(errInvalidClientMetadata, "grant_types must include authorization_code")
	}
	reg.GrantTypes = slices.Compact(slices.Sorted(slices.Values(reg.GrantTypes)))
	if len(reg.ResponseTypes) == 0 {
		reg.ResponseTypes = []string{"code"}
	}
	for _, rt := range reg.ResponseTypes {
		if rt != "code" {
			return newError(errInvalidClientMetadata, "response type %s is not supported (code)", quote(rt))
		}
	}
	reg.ResponseTypes = []string{"code"}
	switch reg.ApplicationType {
	case "", "web", "native":
	default:
		return newError(errInvalidClientMetadata, "application_type must be web or native")
	}
	return nil
}

// checkText refuses over-long values and control characters (they end up
// on the login page and in logs).
func checkText(name, v string, max int) *oauthError {
	if len(v) > max {
		return newError(errInvalidClientMetadata, "%s is longer than %d bytes", name, max)
	}
	if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
		return newError(errInvalidClientMetadata, "%s contains control characters or invalid UTF-8", name)
	}
	return nil
}

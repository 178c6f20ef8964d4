package oauth

import (
	"encoding/json"
	"net/http"
	"slices"
)

// resourceMetadata is an RFC 9728 protected resource metadata document.
type resourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name"`
}

// serverMetadata is an RFC 8414 authorization server metadata document.
type serverMetadata struct {
	Issuer                                   string   `json:"issuer"`
	AuthorizationEndpoint                    string   `json:"authorization_endpoint"`
	TokenEndpoint                            string   `json:"token_endpoint"`
	RegistrationEndpoint                     string   `json:"registration_endpoint"`
	JWKSURI                                  string   `json:"jwks_uri"`
	ScopesSupported                          []string `json:"scopes_supported"`
	ResponseTypesSupported                   []string `json:"response_types_supported"`
	ResponseModesSupported                   []string `json:"response_modes_supported"`
	GrantTypesSupported                      []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported            []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported        []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupport []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	ClientIDMetadataDocumentSupported        bool     `json:"client_id_metadata_document_supported"`
	AuthorizationResponseISSParameterSupport bool     `json:"authorization_response_iss_parameter_supported"`
}

// Values advertised in the metadata and enforced by the endpoints.
var (
	grantTypes       = []string{grantAuthorizationCode, grantClientCredentials, grantRefreshToken}
	authMethods      = []string{authSecretBasic, authSecretPost, authPrivateKeyJWT, authNone}
	assertionAlgs    = []string{"ES256", "EdDSA", "RS256"}
	challengeMethods = []string{"S256"}
)

// handleResourceMetadata serves the protected resource metadata of one
// virtual server (RFC 9728 §3, path-inserted well-known URI).
func (s *Server) handleResourceMetadata(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("server")
	allowCORS(w)
	if !slices.Contains(s.cfg.Servers(), name) {
		writeJSON(w, http.StatusNotFound, map[string]string{
			"error":             "not_found",
			"error_description": "no virtual server named " + name,
		})
		return
	}
	writeMetadata(w, resourceMetadata{
		Resource:               ResourceURL(s.cfg.Issuer, name),
		AuthorizationServers:   []string{s.cfg.Issuer},
		ScopesSupported:        scopesFor([]string{name}),
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Gatehouse MCP server " + name,
	})
}

// handleServerMetadata serves the authorization server metadata (RFC 8414
// §3), also at the OpenID configuration path for clients that probe it.
func (s *Server) handleServerMetadata(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	writeMetadata(w, serverMetadata{
		Issuer:                                   s.cfg.Issuer,
		AuthorizationEndpoint:                    s.endpoint(pathAuthorize),
		TokenEndpoint:                            s.endpoint(pathToken),
		RegistrationEndpoint:                     s.endpoint(pathRegister),
		JWKSURI:                                  s.endpoint(pathJWKS),
		ScopesSupported:                          scopesFor(s.cfg.Servers()),
		ResponseTypesSupported:                   []string{"code"},
		ResponseModesSupported:                   []string{"query"},
		GrantTypesSupported:                      grantTypes,
		CodeChallengeMethodsSupported:            challengeMethods,
		TokenEndpointAuthMethodsSupported:        authMethods,
		TokenEndpointAuthSigningAlgValuesSupport: assertionAlgs,
		ClientIDMetadataDocumentSupported:        true,
		AuthorizationResponseISSParameterSupport: true,
	})
}

// handleJWKS publishes the token signing keys.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	allowCORS(w)
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(s.cfg.Keys.JWKS())
}

// writeMetadata answers a metadata document. Short caching: the list of
// virtual servers changes on configuration reload.
func writeMetadata(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding metadata", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=60")
	_, _ = w.Write(append(b, '\n'))
}

// allowCORS lets browser-based clients (e.g. MCP Inspector) read public
// documents and call the token and registration endpoints. No credentials
// (cookies) are involved, so a wildcard origin is safe.
func allowCORS(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate")
}

// preflight answers a CORS preflight request; it reports whether r was one.
func preflight(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodOptions {
		return false
	}
	allowCORS(w)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, MCP-Protocol-Version")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

package identity

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AccessClaims are the claims of a gateway access token (RFC 9068).
type AccessClaims struct {
	jwt.Claims
	ClientID string `json:"client_id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	// Kind says whether sub names an agent or a user.
	Kind string `json:"gh_kind,omitempty"`
	// Act names the human driving the agent (RFC 8693 actor claim).
	Act *Actor `json:"act,omitempty"`
}

// Actor is an RFC 8693 act claim.
type Actor struct {
	Sub string `json:"sub"`
}

// Grant is what a token is issued for.
type Grant struct {
	Kind     string // KindAgent or KindUser
	Subject  string // agent id or username
	ClientID string
	Actor    string // username of the human driving the agent, if any
	Audience []string
	Scopes   []string
}

// Issuer signs access tokens.
type Issuer struct {
	keys   *KeyManager
	issuer string
	ttl    time.Duration
	now    func() time.Time
}

// NewIssuer returns an issuer for tokens of the given lifetime.
func NewIssuer(keys *KeyManager, issuer string, ttl time.Duration) *Issuer {
	return &Issuer{keys: keys, issuer: issuer, ttl: ttl, now: time.Now}
}

// TTL returns the lifetime of issued tokens.
func (i *Issuer) TTL() time.Duration { return i.ttl }

// Issue signs an access token for g.
func (i *Issuer) Issue(g Grant) (string, time.Time, error) {
	signer, _, ok := i.keys.Current()
	if !ok {
		return "", time.Time{}, errors.New("no signing key available")
	}
	now := i.now()
	exp := now.Add(i.ttl)
	c := AccessClaims{
		Claims: jwt.Claims{
			Issuer:    i.issuer,
			Subject:   g.Subject,
			Audience:  jwt.Audience(g.Audience),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(exp),
			ID:        newTokenID(),
		},
		ClientID: g.ClientID,
		Scope:    strings.Join(g.Scopes, " "),
		Kind:     g.Kind,
	}
	if g.Actor != "" {
		c.Act = &Actor{Sub: g.Actor}
	}
	raw, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing token: %w", err)
	}
	return raw, exp, nil
}

func newTokenID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// allowedAlgs are the only signature algorithms accepted: never "none",
// never HMAC (an HS256 token "signed" with the public key must fail).
var allowedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// AuthError is a failed authentication or authorization, with what the
// client is told (RFC 6750 error codes).
type AuthError struct {
	Status      int    // 401 or 403
	Code        string // invalid_token, invalid_request, insufficient_scope
	Description string
	Scope       string // for insufficient_scope: the scope needed
}

func (e *AuthError) Error() string { return e.Code + ": " + e.Description }

func invalidToken(format string, args ...any) *AuthError {
	return &AuthError{Status: 401, Code: "invalid_token", Description: fmt.Sprintf(format, args...)}
}

// parseToken checks a token's header and signature and decodes its
// claims. Each failure has its own description.
func parseToken(raw string, keys *KeyManager) (*AccessClaims, *AuthError) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, invalidToken("malformed token: not a signed JWT")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, invalidToken("malformed token header")
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, invalidToken("malformed token header")
	}
	if !slices.Contains(allowedAlgs, jose.SignatureAlgorithm(h.Alg)) {
		return nil, invalidToken("token signed with alg %q; this gateway accepts only ES256 and EdDSA", h.Alg)
	}
	if !strings.EqualFold(h.Typ, "at+jwt") && !strings.EqualFold(h.Typ, "application/at+jwt") {
		return nil, invalidToken("not an access token (typ %q, want at+jwt)", h.Typ)
	}
	if h.Kid == "" {
		return nil, invalidToken("token has no key id (kid)")
	}
	pub, alg, ok := keys.PublicKey(h.Kid)
	if !ok {
		return nil, invalidToken("unknown signing key %q", h.Kid)
	}
	if alg != h.Alg {
		return nil, invalidToken("token alg %q does not match its key (%s)", h.Alg, alg)
	}
	tok, err := jwt.ParseSigned(raw, allowedAlgs)
	if err != nil {
		return nil, invalidToken("malformed token")
	}
	var c AccessClaims
	if err := tok.Claims(pub, &c); err != nil {
		return nil, invalidToken("token signature is invalid")
	}
	return &c, nil
}

// clockSkew tolerates small clock differences between replicas.
const clockSkew = 30 * time.Second

// checkClaims validates issuer, lifetime and audience.
func checkClaims(c *AccessClaims, issuer, audience string, now time.Time) *AuthError {
	if c.Issuer != issuer {
		return invalidToken("token issuer %q is not this gateway (%s)", c.Issuer, issuer)
	}
	if c.Expiry == nil {
		return invalidToken("token has no expiry")
	}
	if exp := c.Expiry.Time(); now.Add(-clockSkew).After(exp) {
		return invalidToken("token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil {
		if nbf := c.NotBefore.Time(); now.Add(clockSkew).Before(nbf) {
			return invalidToken("token not valid before %s", nbf.UTC().Format(time.RFC3339))
		}
	}
	if c.IssuedAt != nil && now.Add(clockSkew).Before(c.IssuedAt.Time()) {
		return invalidToken("token issued in the future")
	}
	if !c.Audience.Contains(audience) {
		return invalidToken("token audience %q does not include this server (%s)", []string(c.Audience), audience)
	}
	if c.Subject == "" {
		return invalidToken("token has no subject")
	}
	return nil
}

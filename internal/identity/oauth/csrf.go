package oauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"time"
)

// The login form is protected against cross-site request forgery twice:
//
//   - a browser cookie (random, HttpOnly, SameSite=Strict, path
//     /oauth/authorize) that a cross-site form post does not carry, and
//   - a form token: nonce ‖ expiry ‖ HMAC-SHA256(per-process key, cookie ‖
//     nonce ‖ expiry ‖ the authorization request's parameters). It is valid
//     for formLifetime,
//     for that browser and that authorization request only, and once: a
//     used token is remembered until it expires.
//
// The cookie is kept across requests (not one per form), so several
// sign-ins in parallel tabs each keep a valid form.
const (
	formCookie    = "gatehouse_login"
	formLifetime  = 10 * time.Minute
	formCookieLen = 32
	formNonceLen  = 16
	formTokenLen  = formNonceLen + 8 + sha256.Size
)

// browserBinding returns the browser's login cookie value, setting a new
// cookie when there is none (or it is malformed).
func (s *Server) browserBinding(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(formCookie); err == nil && validBinding(c.Value) {
		s.setBindingCookie(w, c.Value) // extend it
		return c.Value
	}
	v := randomToken("", formCookieLen)
	s.setBindingCookie(w, v)
	return v
}

func (s *Server) setBindingCookie(w http.ResponseWriter, v string) {
	http.SetCookie(w, &http.Cookie{
		Name: formCookie, Value: v, Path: pathAuthorize,
		MaxAge: int(formLifetime / time.Second), HttpOnly: true,
		Secure: s.issuer.Scheme == "https", SameSite: http.SameSiteStrictMode,
	})
}

func validBinding(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == formCookieLen
}

// formToken returns the form token for an authorization request in the
// browser bound by binding.
func (s *Server) formToken(binding string, req *authRequest, now time.Time) string {
	head := make([]byte, formNonceLen+8, formTokenLen)
	if _, err := rand.Read(head[:formNonceLen]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	binary.BigEndian.PutUint64(head[formNonceLen:], uint64(now.Add(formLifetime).Unix()))
	return base64.RawURLEncoding.EncodeToString(append(head, s.formMAC(binding, head, req)...))
}

// formMAC authenticates a token's nonce and expiry (head) for a browser
// and a request.
func (s *Server) formMAC(binding string, head []byte, req *authRequest) []byte {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("gatehouse/login-form\x00"))
	writeField(m, binding)
	m.Write(head)
	for _, v := range req.fields() {
		writeField(m, v)
	}
	return m.Sum(nil)
}

// writeField writes a length-prefixed field, so that fields cannot be
// shifted into one another.
func writeField(m interface{ Write([]byte) (int, error) }, v string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(v)))
	m.Write(n[:])
	m.Write([]byte(v))
}

// formProblem says why a login form post is refused.
type formProblem string

const (
	formOK       formProblem = ""
	formNoCookie formProblem = "Your browser did not send the sign-in cookie. Allow cookies for this site, then start the sign-in again from the application."
	formInvalid  formProblem = "This sign-in form is not valid for this request. Start the sign-in again from the application."
	formExpired  formProblem = "This sign-in form has expired. Start the sign-in again from the application."
	formReplayed formProblem = "This sign-in form was already submitted. Start the sign-in again from the application."
	formBusy     formProblem = "The server is handling too many sign-ins. Wait a minute and try again."
)

// checkForm verifies the token of a posted login form and spends it.
func (s *Server) checkForm(r *http.Request, token string, req *authRequest, now time.Time) formProblem {
	c, err := r.Cookie(formCookie)
	if err != nil || !validBinding(c.Value) {
		return formNoCookie
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != formTokenLen {
		return formInvalid
	}
	head, mac := raw[:formNonceLen+8], raw[formNonceLen+8:]
	if subtle.ConstantTimeCompare(s.formMAC(c.Value, head, req), mac) != 1 {
		return formInvalid
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(head[formNonceLen:])), 0)
	if !now.Before(exp) {
		return formExpired
	}
	switch s.forms.use(string(mac), exp, now) {
	case onceReplay:
		return formReplayed
	case onceFull:
		return formBusy
	}
	return formOK
}

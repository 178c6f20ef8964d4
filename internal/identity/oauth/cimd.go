package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"gatehouse/internal/store"
)

// Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document):
// a client_id that is an https URL names a JSON document, published by the
// client, that lists its redirect URIs. The gateway fetches it (bounded in
// time, size and destination), checks it, caches it and records the client
// in the store on first use.
const (
	maxDocumentSize   = 64 << 10
	maxClientIDURLLen = 2048
	fetchTimeout      = 5 * time.Second
	defaultDocTTL     = 5 * time.Minute
	maxDocTTL         = 24 * time.Hour
	failedDocTTL      = 10 * time.Second
	maxFetchRedirects = 3
)

// cimdCache caches fetched documents (and, briefly, failures) by URL and
// coalesces concurrent fetches of one URL. Bounded; safe for concurrent use.
type cimdCache struct {
	mu       sync.Mutex
	max      int
	entries  map[string]*cimdEntry
	inflight map[string]*cimdFetch
}

type cimdEntry struct {
	c   *client
	err *oauthError
	exp time.Time
}

type cimdFetch struct {
	done chan struct{}
	c    *client
	err  *oauthError
}

func newCIMDCache(max int) *cimdCache {
	return &cimdCache{max: max, entries: map[string]*cimdEntry{}, inflight: map[string]*cimdFetch{}}
}

// get returns a cached, unexpired, valid document client.
func (cc *cimdCache) get(id string, now time.Time) (*client, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e := cc.entries[id]
	if e == nil || e.c == nil || !now.Before(e.exp) {
		return nil, false
	}
	return e.c, true
}

func (cc *cimdCache) put(id string, e *cimdEntry, now time.Time) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if len(cc.entries) >= cc.max {
		for k, old := range cc.entries {
			if !now.Before(old.exp) {
				delete(cc.entries, k)
			}
		}
		for k := range cc.entries {
			if len(cc.entries) < cc.max {
				break
			}
			delete(cc.entries, k)
		}
	}
	cc.entries[id] = e
}

// resolveDocument returns the client described by the metadata document at
// id, from the cache or fetched.
func (s *Server) resolveDocument(ctx context.Context, id string) (*client, *oauthError) {
	now := s.now()
	cc := s.cimd
	cc.mu.Lock()
	if e := cc.entries[id]; e != nil && now.Before(e.exp) {
		cc.mu.Unlock()
		return e.c, e.err
	}
	if f := cc.inflight[id]; f != nil {
		cc.mu.Unlock()
		select {
		case <-f.done:
			return f.c, f.err
		case <-ctx.Done():
			return nil, newError(errInvalidClient, "fetching the client metadata document was interrupted")
		}
	}
	f := &cimdFetch{done: make(chan struct{})}
	cc.inflight[id] = f
	cc.mu.Unlock()

	// The fetch is not tied to the first caller's request, whose
	// cancellation must not fail the others waiting for it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	c, ttl, e := s.fetchDocument(fctx, id)
	cancel()
	if e != nil {
		ttl = failedDocTTL
		s.log.Warn("client metadata document refused", "client_id", id, "error", e)
	} else if err := s.recordDocument(context.WithoutCancel(ctx), id, c); err != nil {
		e = serverError(err)
		ttl = 0
	}
	f.c, f.err = c, e
	if e != nil {
		f.c = nil
	}
	cc.mu.Lock()
	delete(cc.inflight, id)
	cc.mu.Unlock()
	if ttl > 0 {
		cc.put(id, &cimdEntry{c: f.c, err: f.err, exp: s.now().Add(ttl)}, s.now())
	}
	close(f.done)
	return f.c, f.err
}

// recordDocument stores a document client the first time it is seen.
func (s *Server) recordDocument(ctx context.Context, id string, c *client) error {
	if _, err := s.cfg.Store.GetClient(ctx, id); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("looking up client: %w", err)
	}
	meta, err := json.Marshal(registration{RedirectURIs: c.RedirectURIs, ClientName: c.Name,
		TokenEndpointAuthMethod: authNone, GrantTypes: c.GrantTypes, ResponseTypes: []string{"code"}})
	if err != nil {
		return fmt.Errorf("encoding client metadata: %w", err)
	}
	err = s.cfg.Store.CreateClient(ctx, store.OAuthClient{ClientID: id, Name: c.Name, RedirectURIs: c.RedirectURIs,
		Kind: kindDocument, Metadata: meta, CreatedAt: s.now().UTC()})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("recording client: %w", err)
	}
	if err == nil {
		s.log.Info("oauth client recorded from its metadata document", "client_id", id, "client_name", c.Name)
	}
	return nil
}

// checkClientIDURL checks the form of a metadata document URL.
func (s *Server) checkClientIDURL(id string) (*url.URL, *oauthError) {
	bad := func(why string) (*url.URL, *oauthError) {
		return nil, newError(errInvalidClient, "client_id %s is not a usable metadata document URL: %s", quote(id), why)
	}
	if len(id) > maxClientIDURLLen {
		return bad("too long")
	}
	u, err := url.Parse(id)
	if err != nil {
		return bad("not a URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && s.cfg.AllowInsecureMetadataURLs && isLoopbackHost(u.Hostname()):
	default:
		return bad("it must use https")
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(id, "#") {
		return bad("it needs a host and no user information or fragment")
	}
	if u.Path == "" || u.Path == "/" {
		return bad("it must have a path")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return bad("it must not have . or .. path segments")
		}
	}
	return u, nil
}

// clientDocument is the part of a metadata document the gateway reads.
type clientDocument struct {
	ClientID                string           `json:"client_id"`
	ClientName              string           `json:"client_name"`
	RedirectURIs            []string         `json:"redirect_uris"`
	GrantTypes              []string         `json:"grant_types"`
	ResponseTypes           []string         `json:"response_types"`
	TokenEndpointAuthMethod string           `json:"token_endpoint_auth_method"`
	ClientSecret            *json.RawMessage `json:"client_secret"`
	ClientSecretExpiresAt   *json.RawMessage `json:"client_secret_expires_at"`
}

// fetchDocument fetches and checks the document at id and returns the
// client it describes and how long to cache it.
func (s *Server) fetchDocument(ctx context.Context, id string) (*client, time.Duration, *oauthError) {
	u, e := s.checkClientIDURL(id)
	if e != nil {
		return nil, 0, e
	}
	fail := func(format string, args ...any) (*client, time.Duration, *oauthError) {
		return nil, 0, newError(errInvalidClient, "client metadata document %s: %s", id, fmt.Sprintf(format, args...))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail("cannot build the request")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.fetch.Do(req)
	if err != nil {
		if errors.Is(err, errForbiddenAddress) {
			return fail("its host resolves to a private or loopback address")
		}
		if errors.Is(err, errCrossHostRedirect) {
			return fail("it redirects to another host")
		}
		s.log.Debug("fetching a client metadata document", "client_id", id, "error", err)
		return fail("fetching it failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail("fetching it returned HTTP %d", resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return fail("it is not served as application/json")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return fail("reading it failed")
	}
	if len(body) > maxDocumentSize {
		return fail("it is larger than %d bytes", maxDocumentSize)
	}
	var doc clientDocument
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return fail("it is not a JSON object of client metadata")
	}
	if doc.ClientID != id {
		return fail("its client_id %s differs from its URL", quote(doc.ClientID))
	}
	if doc.ClientSecret != nil || doc.ClientSecretExpiresAt != nil {
		return fail("it must not contain a client secret")
	}
	switch doc.TokenEndpointAuthMethod {
	case "", authNone:
	default:
		return fail("token_endpoint_auth_method %s is not supported for metadata document clients (none)", quote(doc.TokenEndpointAuthMethod))
	}
	if len(doc.RedirectURIs) == 0 {
		return fail("it lists no redirect_uris")
	}
	if len(doc.RedirectURIs) > maxRedirectURIs {
		return fail("it lists more than %d redirect_uris", maxRedirectURIs)
	}
	for _, r := range doc.RedirectURIs {
		if err := validateRedirectURI(r); err != nil {
			return fail("%s", err.Error())
		}
	}
	if checkText("client_name", doc.ClientName, maxClientNameLen) != nil {
		return fail("client_name is too long or has control characters")
	}
	grants := []string{grantAuthorizationCode}
	for _, g := range doc.GrantTypes {
		if g == grantRefreshToken {
			grants = append(grants, grantRefreshToken)
		}
	}
	name := doc.ClientName
	if name == "" {
		name = u.Host
	}
	c := &client{ID: id, Name: name, Kind: kindDocument, RedirectURIs: doc.RedirectURIs,
		GrantTypes: grants, AuthMethod: authNone}
	return c, cacheLifetime(resp.Header), nil
}

// cacheLifetime reads max-age from Cache-Control (no-store and no-cache:
// not cached), capped at a day.
func cacheLifetime(h http.Header) time.Duration {
	ttl := defaultDocTTL
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(k) {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			n, err := strconv.Atoi(strings.Trim(v, `"`))
			if err != nil || n < 0 {
				continue
			}
			ttl = time.Duration(n) * time.Second
		}
	}
	return min(ttl, maxDocTTL)
}

// documentClientFromRecord rebuilds a document client from the store (the
// token endpoint, when the document is no longer cached).
func documentClientFromRecord(rec store.OAuthClient) (*client, *oauthError) {
	var reg registration
	if err := json.Unmarshal(rec.Metadata, &reg); err != nil {
		return nil, serverError(fmt.Errorf("decoding client %s: %w", rec.ClientID, err))
	}
	return &client{ID: rec.ClientID, Name: rec.Name, Kind: kindDocument, RedirectURIs: rec.RedirectURIs,
		GrantTypes: reg.GrantTypes, AuthMethod: authNone}, nil
}

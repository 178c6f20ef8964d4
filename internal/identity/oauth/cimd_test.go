package oauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"gatehouse/internal/identity"
)

// docServer publishes client ID metadata documents and counts fetches.
type docServer struct {
	*httptest.Server
	mu      sync.Mutex
	docs    map[string]docResponse
	fetches map[string]int
}

type docResponse struct {
	status       int
	contentType  string
	cacheControl string
	location     string
	body         string // "{{ID}}" is replaced by the document's URL
}

func newDocServer(t *testing.T, tls bool) *docServer {
	d := &docServer{docs: map[string]docResponse{}, fetches: map[string]int{}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		doc, ok := d.docs[r.URL.Path]
		d.fetches[r.URL.Path]++
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Accept") != "application/json" {
			http.Error(w, "want Accept: application/json", http.StatusNotAcceptable)
			return
		}
		if doc.location != "" {
			http.Redirect(w, r, doc.location, http.StatusFound)
			return
		}
		ct := doc.contentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		if doc.cacheControl != "" {
			w.Header().Set("Cache-Control", doc.cacheControl)
		}
		if doc.status != 0 {
			w.WriteHeader(doc.status)
		}
		_, _ = w.Write([]byte(strings.ReplaceAll(doc.body, "{{ID}}", d.URL+r.URL.Path)))
	})
	if tls {
		d.Server = httptest.NewTLSServer(h)
	} else {
		d.Server = httptest.NewServer(h)
	}
	t.Cleanup(d.Close)
	return d
}

func (d *docServer) publish(path string, r docResponse) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.docs[path] = r
	return d.URL + path
}

func (d *docServer) count(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fetches[path]
}

func TestMetadataDocumentFlow(t *testing.T) {
	e := newEnv(t)
	docs := newDocServer(t, false)
	cb := newCallback(t)
	redirect := cb.URL + "/callback"
	clientID := docs.publish("/oauth/client.json", docResponse{body: `{"client_id":"{{ID}}","client_name":"Doc Client",
		"redirect_uris":["` + redirect + `"],"grant_types":["authorization_code","refresh_token"],
		"response_types":["code"],"token_endpoint_auth_method":"none"}`})

	verifier := oauth2.GenerateVerifier()
	cfg := oauth2.Config{ClientID: clientID, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: e.url(pathAuthorize), TokenURL: e.url(pathToken), AuthStyle: oauth2.AuthStyleInParams}}
	authURL := cfg.AuthCodeURL("cimd-state", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", e.resource("support")))

	b := newBrowser(t)
	f, _ := getLogin(t, b, authURL)
	if f.Status != http.StatusOK {
		t.Fatalf("login page: %d %s", f.Status, f.Body)
	}
	host := strings.TrimPrefix(docs.URL, "http://")
	if !strings.Contains(f.Body, "Doc Client") || !strings.Contains(f.Body, "published by "+host) {
		t.Errorf("the page does not name the client and its host:\n%s", f.Body)
	}
	resp, body := postLogin(t, b, e.issuer, f.Fields, "alice", alicePW)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, redirect+"?") {
		t.Fatalf("Location %s", loc)
	}
	code := mustQuery(t, loc).Get("code")
	tok, err := cfg.Exchange(e.ctx, code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", e.resource("support")))
	if err != nil {
		t.Fatal(err)
	}
	p, aerr := e.authenticate(tok.AccessToken, "support")
	if aerr != nil {
		t.Fatal(aerr)
	}
	if p.Kind != identity.KindUser || p.ClientID != clientID || p.Username != "alice" {
		t.Errorf("principal %+v", p)
	}
	if _, err := cfg.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if n := docs.count("/oauth/client.json"); n != 1 {
		t.Errorf("the document was fetched %d times, want 1 (cached)", n)
	}
	rec, err := e.st.GetClient(e.ctx, clientID)
	if err != nil || rec.Kind != "metadata_document" || rec.Name != "Doc Client" {
		t.Fatalf("recorded client %+v, %v", rec, err)
	}

	t.Run("redirect_uri not in the document", func(t *testing.T) {
		f, _ := getLogin(t, newBrowser(t), e.authorizeURL(clientID, "http://127.0.0.1:1/elsewhere", oauth2.S256ChallengeFromVerifier(verifier), e.resource("support"), "s"))
		if f.Status != http.StatusBadRequest || !strings.Contains(f.Body, "is not registered") {
			t.Fatalf("%d %s", f.Status, f.Body)
		}
	})
}

func TestMetadataDocumentRefused(t *testing.T) {
	e := newEnv(t)
	docs := newDocServer(t, false)
	other := newDocServer(t, false)
	otherURL := other.publish("/c.json", docResponse{body: `{"client_id":"{{ID}}","redirect_uris":["http://127.0.0.1:7000/cb"]}`})
	good := `"redirect_uris":["http://127.0.0.1:7000/cb"],"client_name":"X"`
	for _, tc := range []struct {
		name string
		doc  docResponse
		want string
	}{
		{"client_id differs", docResponse{body: `{"client_id":"https://app.example.com/client.json",` + good + `}`}, "differs from its URL"},
		{"no client_id", docResponse{body: `{` + good + `}`}, "differs from its URL"},
		{"client secret", docResponse{body: `{"client_id":"{{ID}}","client_secret":"s3cret",` + good + `}`}, "must not contain a client secret"},
		{"secret-based authentication", docResponse{body: `{"client_id":"{{ID}}","token_endpoint_auth_method":"client_secret_basic",` + good + `}`}, "not supported for metadata document clients"},
		{"no redirect URIs", docResponse{body: `{"client_id":"{{ID}}"}`}, "lists no redirect_uris"},
		{"bad redirect URI", docResponse{body: `{"client_id":"{{ID}}","redirect_uris":["javascript:alert(1)"]}`}, "not allowed"},
		{"not JSON", docResponse{body: `<html>hello</html>`}, "not a JSON object"},
		{"trailing data", docResponse{body: `{"client_id":"{{ID}}",` + good + `} {}`}, "not a JSON object"},
		{"HTML content type", docResponse{contentType: "text/html", body: `{"client_id":"{{ID}}",` + good + `}`}, "not served as application/json"},
		{"HTTP error", docResponse{status: 500, body: `{}`}, "returned HTTP 500"},
		{"too large", docResponse{body: `{"client_id":"{{ID}}",` + good + `,"x":"` + strings.Repeat("a", 70<<10) + `"}`}, "larger than"},
		{"redirect to another host", docResponse{location: otherURL}, "redirects to another host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/" + strings.ReplaceAll(tc.name, " ", "-") + ".json"
			id := docs.publish(path, tc.doc)
			f, resp := getLogin(t, newBrowser(t), e.authorizeURL(id, "http://127.0.0.1:7000/cb", challengeOf(), e.resource("support"), "s"))
			if f.Status != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(f.Body, tc.want) {
				t.Fatalf("got %d %q; want 400 with %q:\n%s", f.Status, resp.Header.Get("Location"), tc.want, f.Body)
			}
			if _, err := e.st.GetClient(e.ctx, id); err == nil {
				t.Error("a refused document was recorded as a client")
			}
		})
	}
	for _, tc := range []struct{ name, id, want string }{
		{"no path", docs.URL, "must have a path"},
		{"dot segment", docs.URL + "/a/../c.json", "path segments"},
		{"user info", strings.Replace(docs.URL, "http://", "http://user:pw@", 1) + "/c.json", "no user information"},
		{"fragment", docs.URL + "/c.json#x", "fragment"},
		{"http on a public host", "http://app.example.com/c.json", "must use https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := getLogin(t, newBrowser(t), e.authorizeURL(tc.id, "http://127.0.0.1:7000/cb", challengeOf(), e.resource("support"), "s"))
			if f.Status != http.StatusBadRequest || !strings.Contains(f.Body, tc.want) {
				t.Fatalf("got %d; want 400 with %q:\n%s", f.Status, tc.want, f.Body)
			}
		})
	}
	t.Run("unknown document client at the token endpoint", func(t *testing.T) {
		_, te := e.postToken(t, map[string][]string{"grant_type": {"refresh_token"}, "client_id": {docs.URL + "/never.json"}, "refresh_token": {"x"}}, "", "")
		if te == nil || te.Code != "invalid_client" {
			t.Fatalf("%+v", te)
		}
		if docs.count("/never.json") != 0 {
			t.Error("the token endpoint fetched a document")
		}
	})
}

// TestMetadataDocumentSSRF checks that, in production mode, documents on
// loopback or private addresses are not fetched.
func TestMetadataDocumentSSRF(t *testing.T) {
	docs := newDocServer(t, true)
	id := docs.publish("/c.json", docResponse{body: `{"client_id":"{{ID}}","redirect_uris":["http://127.0.0.1:7000/cb"]}`})
	// The client trusts the test server's certificate: only the address
	// check can stop the fetch.
	e := newEnv(t, envOptions{httpClient: docs.Client()})
	for _, tc := range []struct{ name, id, want string }{
		{"https on a loopback address", id, "private or loopback address"},
		{"https on localhost", strings.Replace(id, "127.0.0.1", "localhost", 1), "private or loopback address"},
		{"http on loopback", strings.Replace(id, "https://", "http://", 1), "must use https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := getLogin(t, newBrowser(t), e.authorizeURL(tc.id, "http://127.0.0.1:7000/cb", challengeOf(), e.resource("support"), "s"))
			if f.Status != http.StatusBadRequest || !strings.Contains(f.Body, tc.want) {
				t.Fatalf("got %d; want 400 with %q:\n%s", f.Status, tc.want, f.Body)
			}
		})
	}
	if n := docs.count("/c.json"); n != 0 {
		t.Errorf("the document server was reached %d times", n)
	}
	// The same client with the insecure (development) setting works.
	dev := newEnv(t, envOptions{httpClient: docs.Client(), insecureMetadata: true})
	c, oe := dev.srv.lookupClient(dev.ctx, id, true)
	if oe != nil || c.Kind != kindDocument {
		t.Fatalf("development mode: %+v %v", c, oe)
	}
}

func TestMetadataDocumentCaching(t *testing.T) {
	e := newEnv(t)
	docs := newDocServer(t, false)
	body := `{"client_id":"{{ID}}","redirect_uris":["http://127.0.0.1:7000/cb"]}`
	noStore := docs.publish("/no-store.json", docResponse{body: body, cacheControl: "no-store"})
	short := docs.publish("/short.json", docResponse{body: body, cacheControl: "public, max-age=30"})
	bad := docs.publish("/bad.json", docResponse{status: 404})
	for i := 0; i < 3; i++ {
		for _, id := range []string{noStore, short, bad} {
			_, _ = e.srv.lookupClient(e.ctx, id, true)
		}
	}
	if n := docs.count("/no-store.json"); n != 3 {
		t.Errorf("no-store document fetched %d times, want 3", n)
	}
	if n := docs.count("/short.json"); n != 1 {
		t.Errorf("max-age document fetched %d times, want 1", n)
	}
	if n := docs.count("/bad.json"); n != 1 {
		t.Errorf("failing document fetched %d times, want 1 (failures are cached briefly)", n)
	}
	e.clock.Advance(31 * time.Second)
	_, _ = e.srv.lookupClient(e.ctx, short, true)
	if n := docs.count("/short.json"); n != 2 {
		t.Errorf("after max-age the document was fetched %d times in all, want 2", n)
	}

	// Concurrent first uses share one fetch.
	shared := docs.publish("/shared.json", docResponse{body: body})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, oe := e.srv.lookupClient(e.ctx, shared, true); oe != nil {
				t.Error(oe)
			}
		}()
	}
	wg.Wait()
	if n := docs.count("/shared.json"); n != 1 {
		t.Errorf("concurrent lookups fetched %d times, want 1", n)
	}
}

func TestCacheLifetime(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", defaultDocTTL},
		{"max-age=60", time.Minute},
		{"public, max-age=120", 2 * time.Minute},
		{"max-age=0", 0},
		{"no-store", 0},
		{"max-age=600, no-cache", 0},
		{"max-age=99999999", maxDocTTL},
		{"max-age=abc", defaultDocTTL},
		{`max-age="30"`, 30 * time.Second},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Cache-Control", tc.header)
		}
		if got := cacheLifetime(h); got != tc.want {
			t.Errorf("cacheLifetime(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

func challengeOf() string {
	_, c := pkce()
	return c
}

func mustQuery(t *testing.T, loc string) url.Values {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

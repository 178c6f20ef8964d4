package admin_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gatehouse/internal/admin"
	"gatehouse/internal/admin/admintest"
)

type openAPIDoc struct {
	OpenAPI    string                                 `json:"openapi"`
	Paths      map[string]map[string]openAPIOperation `json:"paths"`
	Components struct {
		Schemas map[string]any `json:"schemas"`
	} `json:"components"`
}

type openAPIOperation struct {
	OperationID string `json:"operationId"`
	Parameters  []struct {
		Name, In string
		Required bool
	} `json:"parameters"`
	Responses map[string]any `json:"responses"`
}

var docParamRE = regexp.MustCompile(`\{([^}]+)\}`)

// TestOpenAPICoversEveryRoute checks that every route registered on the
// server's mux is in the document and the document has nothing else.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	var doc openAPIDoc
	raw := c.call("GET", "/admin/v1/openapi.json", nil, http.StatusOK, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}

	documented := map[string]bool{}
	opIDs := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			if op.OperationID == "" || opIDs[op.OperationID] {
				t.Errorf("%s: operationId %q missing or repeated", key, op.OperationID)
			}
			opIDs[op.OperationID] = true
			if _, ok := op.Responses["401"]; !ok {
				t.Errorf("%s: 401 not documented", key)
			}
			// Every path parameter is declared.
			declared := map[string]bool{}
			for _, p := range op.Parameters {
				if p.In == "path" && p.Required {
					declared[p.Name] = true
				}
			}
			for _, m := range docParamRE.FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] {
					t.Errorf("%s: path parameter %q not declared", key, m[1])
				}
			}
		}
	}

	// Every route the server registers is in the document.
	for _, r := range admin.Routes(s.API) {
		if !documented[r] {
			t.Errorf("route %s is not in the OpenAPI document", r)
		}
		delete(documented, r)
	}
	var extra []string
	for k := range documented {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("documented but not served: %v", extra)
	}

	// Every $ref resolves.
	for _, m := range regexp.MustCompile(`"\$ref": "#/components/schemas/([^"]+)"`).FindAllStringSubmatch(string(raw), -1) {
		if _, ok := doc.Components.Schemas[m[1]]; !ok {
			t.Errorf("$ref to missing schema %s", m[1])
		}
	}
}

// TestOpenAPIRoutesAreServed sends a request to every documented operation
// and checks that the server routes it (a JSON error from a handler is
// fine; the catch-all's "no admin route" and 405 are not).
func TestOpenAPIRoutesAreServed(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	var doc openAPIDoc
	c.call("GET", "/admin/v1/openapi.json", nil, http.StatusOK, &doc)
	for path, ops := range doc.Paths {
		for method := range ops {
			sample := docParamRE.ReplaceAllString(path, "no-such-thing")
			got, raw := c.do(strings.ToUpper(method), sample, `{"unknown_field_probe":1}`)
			if got == http.StatusMethodNotAllowed || strings.Contains(string(raw), "no admin route") {
				t.Errorf("%s %s: documented but not routed: %d %s", method, path, got, raw)
			}
		}
	}
}

func TestKeysRotate(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	_, before, ok := s.Keys.Current()
	if !ok {
		t.Fatal("no signing key")
	}
	var res admin.KeyRotateResponse
	c.call("POST", "/admin/v1/keys/rotate", nil, http.StatusOK, &res)
	if res.KID == "" || res.KID == before {
		t.Fatalf("kid %q (before %q)", res.KID, before)
	}
	// Published now, signing after the overlap.
	if !strings.Contains(string(s.Keys.JWKS()), res.KID) {
		t.Error("the new key is not in the JWKS")
	}
	if _, now, _ := s.Keys.Current(); now != before {
		t.Errorf("signing with %s right away; the new key must wait for the overlap", now)
	}
}

// TestOpenAPISchemasMatchResponses checks real responses against the
// document's schemas: every member is a documented property, and every
// required property is present.
func TestOpenAPISchemasMatchResponses(t *testing.T) {
	s := admintest.New(t)
	c := newClient(t, s)
	created := c.call("POST", "/admin/v1/agents", `{"name":"bot","team":"t","owner":"o","attributes":{"a":1}}`, http.StatusCreated, nil)
	checkSchema(t, c, "CreateAgentResponse", created)
	c.call("POST", "/admin/v1/agents/bot/api-keys", nil, http.StatusCreated, nil)
	revoked := c.call("POST", "/admin/v1/agents/bot/revoke", nil, http.StatusOK, nil)
	checkSchema(t, c, "Agent", revoked)
	var a struct{ Credentials []json.RawMessage }
	_ = json.Unmarshal(revoked, &a)
	for _, cr := range a.Credentials {
		checkSchema(t, c, "Credential", cr)
	}
	checkSchema(t, c, "User", c.call("POST", "/admin/v1/users", `{"username":"u","password":"correct horse battery"}`, http.StatusCreated, nil))
	checkSchema(t, c, "VaultEntry", c.call("PUT", "/admin/v1/vault/secrets/x?agent=bot", `{"value":"v"}`, http.StatusOK, nil))
	checkSchema(t, c, "KeyRotateResponse", c.call("POST", "/admin/v1/keys/rotate", nil, http.StatusOK, nil))
	_, notFound := c.do("GET", "/admin/v1/agents/ghost", nil)
	checkSchema(t, c, "ErrorBody", notFound)
}

// checkSchema checks a response body against the OpenAPI document's
// schema of that name: every member is documented, every required one is
// present, enumerations hold.
func checkSchema(t *testing.T, c client, schema string, raw []byte) {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
				Required []string `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	c.call("GET", "/admin/v1/openapi.json", nil, http.StatusOK, &doc)
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("%s: %v", schema, err)
	}
	sc, ok := doc.Components.Schemas[schema]
	if !ok {
		t.Fatalf("no schema %s", schema)
	}
	for k, v := range obj {
		p, ok := sc.Properties[k]
		if !ok {
			t.Errorf("%s: member %q not documented", schema, k)
		}
		if s, isStr := v.(string); isStr && len(p.Enum) > 0 && !slices.Contains(p.Enum, s) {
			t.Errorf("%s.%s = %q, not in the documented enum %v", schema, k, s, p.Enum)
		}
	}
	for _, r := range sc.Required {
		if _, ok := obj[r]; !ok {
			t.Errorf("%s: required member %q missing", schema, r)
		}
	}
}

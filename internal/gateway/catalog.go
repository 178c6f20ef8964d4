package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/yosida95/uritemplate/v3"

	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/policy"
	"gatehouse/internal/upstream"
)

// catalogTTL bounds how long a cached list is trusted for routing when the
// upstream sends no list_changed notifications.
const catalogTTL = 5 * time.Minute

// maxCatalogPages bounds the pages fetched to build one catalog.
const maxCatalogPages = 100

// catalogList is an upstream's list as far as routing needs it: the names
// (tools, prompts) or URIs (resources) it contains, or its URI templates.
type catalogList struct {
	keys   map[string]struct{}
	params map[string][]paramHeader // tools/list: x-mcp-header annotations by tool
	// annotations are the tools' MCP annotations, for policy (tools/list).
	annotations map[string]policy.Annotations
	templates   []*uritemplate.Template
	fetched     time.Time
	// tools holds the verdicts on tools whose definitions are held back or
	// flagged (drift.go), by upstream name.
	tools map[string]toolVerdict
	defs  map[string][32]byte // the checked definitions, by tool
}

func (e *entry) invalidateCatalog() {
	e.catMu.Lock()
	clear(e.catalog)
	e.catMu.Unlock()
}

// listKey says which member of a list item identifies it.
var listKey = map[string]struct{ items, key string }{
	"tools/list":               {"tools", "name"},
	"prompts/list":             {"prompts", "name"},
	"resources/list":           {"resources", "uri"},
	"resources/templates/list": {"resourceTemplates", "uriTemplate"},
}

// catalogFor returns the cached list for method, fetching every page with
// client c when it is missing or stale.
func (e *entry) catalogFor(ctx context.Context, c *upstream.Client, method string) (*catalogList, error) {
	e.catMu.Lock()
	cl := e.catalog[method]
	e.catMu.Unlock()
	if cl != nil && time.Since(cl.fetched) < catalogTTL {
		return cl, nil
	}
	spec := listKey[method]
	cl = &catalogList{keys: map[string]struct{}{}, fetched: time.Now()}
	snap := e.g.snap.Load()
	checkTools := method == "tools/list" && toolsChecked(snap)
	cursor := ""
	for page := 0; page < maxCatalogPages; page++ {
		params := []byte(`{}`)
		if cursor != "" {
			params = []byte(`{"cursor":` + string(jsonrpc.Quote(cursor)) + `}`)
		}
		resp, _, err := c.Call(ctx, upstream.Request{Method: method, Params: params})
		if err != nil {
			return nil, err
		}
		if resp.Kind == jsonrpc.KindError {
			e := jsonrpc.ParseErrorObject(resp.Error)
			return nil, fmt.Errorf("%s: %s", method, e.Message)
		}
		var res struct {
			NextCursor string `json:"nextCursor"`
		}
		items, _ := jsonrpc.Get(resp.Result, spec.items)
		_ = json.Unmarshal(resp.Result, &res)
		_ = jsonrpc.Elements(items, func(s, end int) bool {
			item := items[s:end]
			if v, ok := jsonrpc.Get(item, spec.key); ok {
				if k, ok := jsonrpc.String(v); ok {
					cl.keys[k] = struct{}{}
					if method == "tools/list" {
						if cl.annotations == nil {
							cl.annotations = map[string]policy.Annotations{}
						}
						cl.annotations[k] = policy.AnnotationsOf(item)
						if checkTools {
							v := e.g.tools.check(ctx, e.name, item, snap)
							if cl.defs == nil {
								cl.defs = map[string][32]byte{}
							}
							cl.defs[k] = v.def
							if !v.ok() {
								if cl.tools == nil {
									cl.tools = map[string]toolVerdict{}
								}
								cl.tools[k] = v
							}
						}
						if ph := paramHeadersOf(item); len(ph) > 0 {
							if cl.params == nil {
								cl.params = map[string][]paramHeader{}
							}
							cl.params[k] = ph
						}
					}
					if method == "resources/templates/list" {
						if t, err := uritemplate.New(k); err == nil {
							cl.templates = append(cl.templates, t)
						}
					}
				}
			}
			return true
		})
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
	}
	e.catMu.Lock()
	e.catalog[method] = cl
	e.catMu.Unlock()
	return cl, nil
}

// has reports whether the list contains key.
func (cl *catalogList) has(key string) bool {
	_, ok := cl.keys[key]
	return ok
}

// matchesTemplate reports whether uri matches one of the templates.
func (cl *catalogList) matchesTemplate(uri string) bool {
	for _, t := range cl.templates {
		if t.Match(uri) != nil {
			return true
		}
	}
	return false
}

package gateway

import (
	"context"
	"encoding/json"
	"sync"

	"gatehouse/internal/inspect"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/policy"
)

// capabilityOf names the server capability a list method needs.
var capabilityOf = map[string]string{
	"tools/list":               "tools",
	"prompts/list":             "prompts",
	"resources/list":           "resources",
	"resources/templates/list": "resources",
}

// list serves tools/list, prompts/list, resources/list and
// resources/templates/list. A transparent server forwards the request; any
// other fans it out to the members in parallel, maps names, and merges the
// pages in member order. The gateway cursor records each member's own
// cursor. A member that fails is left out with a warning (fail open),
// unless every member failed.
func (x *exchange) list(ctx context.Context) {
	snap := x.g.snap.Load()
	checkTools := x.m.Method == "tools/list" && toolsChecked(snap)
	if x.vs.transparent && x.vs.policy == nil {
		if checkTools {
			x.forwardCheckedTools(ctx, x.vs.members[0], snap)
			return
		}
		x.forward(ctx, x.vs.members[0], nil, "")
		return
	}
	var pin *policy.Input // per-caller filtering (nil: no policy)
	if x.vs.policy != nil {
		pin = x.listInput(ctx)
	}
	spec := listKey[x.m.Method]
	members := x.vs.members
	cursors := map[int]string{}
	if cur, ok := x.paramString("cursor"); ok && cur != "" {
		var err error
		if cursors, err = decodeCursor(cur, len(members)); err != nil {
			x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "invalid cursor"))
			return
		}
	} else {
		for i := range members {
			cursors[i] = ""
		}
	}

	type page struct {
		resp *jsonrpc.Message
		err  error
	}
	pages := make([]page, len(members))
	var wg sync.WaitGroup
	for i, mb := range members {
		cur, want := cursors[i]
		if !want {
			continue
		}
		if ir := mb.e.initResult(); ir != nil && !ir.Has(capabilityOf[x.m.Method]) {
			continue
		}
		params, err := pageParams(x.m.Params, cur)
		if err != nil {
			x.fail(jsonrpc.NewError(jsonrpc.CodeInvalidParams, "malformed params"))
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := x.call(ctx, mb, params, "")
			pages[i] = page{resp, err}
		}()
	}
	wg.Wait()

	out := make([]byte, 0, 1024)
	out = append(out, '{')
	out = append(out, jsonrpc.Quote(spec.items)...)
	out = append(out, ":["...)
	first := true
	seen := map[string]string{} // client-visible name -> upstream
	next := map[int]string{}
	failed, answered := 0, 0
	var lastErr error
	minTTL, private, anyTTL := int64(-1), false, false
	for i, mb := range members {
		p := pages[i]
		if p.resp == nil && p.err == nil {
			continue // not asked
		}
		if p.err != nil || p.resp.Kind == jsonrpc.KindError {
			failed++
			if p.err != nil {
				lastErr = p.err
			} else {
				lastErr = jsonrpc.ParseErrorObject(p.resp.Error)
			}
			x.g.log.Warn("list left out an upstream", "server", x.vs.Name, "method", x.m.Method, "upstream", mb.e.name, "error", lastErr)
			continue
		}
		answered++
		res := p.resp.Result
		var meta struct {
			NextCursor string  `json:"nextCursor"`
			TTL        *int64  `json:"ttlMs"`
			Scope      *string `json:"cacheScope"`
		}
		_ = json.Unmarshal(res, &meta)
		if meta.NextCursor != "" {
			next[i] = meta.NextCursor
		}
		if meta.TTL != nil {
			anyTTL = true
			if minTTL < 0 || *meta.TTL < minTTL {
				minTTL = *meta.TTL
			}
		}
		if meta.Scope != nil && *meta.Scope == "private" {
			private = true
		}
		items, _ := jsonrpc.Get(res, spec.items)
		_ = jsonrpc.Elements(items, func(s, e int) bool {
			item, ok := x.mapItem(mb, items[s:e], seen, pin)
			if !ok {
				return true
			}
			if checkTools {
				v := x.g.tools.check(ctx, mb.e.name, items[s:e], snap)
				if raw, ok := jsonrpc.Get(items[s:e], "name"); ok {
					if up, ok := jsonrpc.String(raw); ok {
						mb.e.sawToolDef(up, v.def)
					}
				}
				if !v.ok() {
					x.noteHook(inspect.ActionFlag, v.findings...)
					if v.hide {
						return true
					}
				}
			}
			if !first {
				out = append(out, ',')
			}
			first = false
			out = append(out, item...)
			return true
		})
	}
	if answered == 0 && failed > 0 {
		x.fail(lastErr)
		return
	}
	out = append(out, ']')
	if c := encodeCursor(next); c != "" {
		out = append(out, `,"nextCursor":`...)
		out = append(out, jsonrpc.Quote(c)...)
	}
	if x.modern {
		if !anyTTL {
			minTTL = 0
		}
		scope := `"public"`
		if private || x.s == nil {
			// Lists may be filtered per caller once policies apply; never
			// let shared caches reuse them.
			scope = `"private"`
		}
		out = append(out, `,"ttlMs":`...)
		out = append(out, []byte(jsonNumber(minTTL))...)
		out = append(out, `,"cacheScope":`...)
		out = append(out, scope...)
	}
	out = append(out, '}')
	x.result(out)
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// pageParams returns the request params for one member's page: the
// client's params (its _meta included) with the member's own cursor.
func pageParams(params []byte, cursor string) ([]byte, error) {
	if params == nil {
		params = []byte(`{}`)
	}
	if cursor == "" {
		return jsonrpc.Delete(params, "cursor")
	}
	return jsonrpc.Set(params, "cursor", jsonrpc.Quote(cursor))
}

// mapItem applies the member's filters and renames to one list item. Items
// whose client-visible name was already taken by an earlier member are
// dropped with a warning naming both.
func (x *exchange) mapItem(mb *member, item []byte, seen map[string]string, pin *policy.Input) ([]byte, bool) {
	switch x.m.Method {
	case "tools/list", "prompts/list":
	default:
		// Resources keep their URIs.
		if pin != nil {
			key := "uri"
			if x.m.Method == "resources/templates/list" {
				key = "uriTemplate"
			}
			raw, _ := jsonrpc.Get(item, key)
			uri, _ := jsonrpc.String(raw)
			if !x.allowedInList(pin, mb, uri, uri, item) {
				return nil, false
			}
		}
		return item, true
	}
	tool := x.m.Method == "tools/list"
	raw, ok := jsonrpc.Get(item, "name")
	if !ok {
		return nil, false
	}
	up, ok := jsonrpc.String(raw)
	if !ok {
		return nil, false
	}
	v, ok := mb.virtualName(up, tool)
	if !ok {
		return nil, false
	}
	if pin != nil && !x.allowedInList(pin, mb, up, v, item) {
		return nil, false
	}
	if other, dup := seen[v]; dup {
		x.g.log.Warn("name collision: keeping the first", "server", x.vs.Name, "name", v, "kept", other, "dropped", mb.e.name+"/"+up)
		return nil, false
	}
	seen[v] = mb.e.name + "/" + up
	out := item
	var err error
	if v != up {
		if out, err = jsonrpc.Set(out, "name", jsonrpc.Quote(v)); err != nil {
			return nil, false
		}
	}
	if tool {
		if d, ok := mb.description[up]; ok {
			if out, err = jsonrpc.Set(out, "description", jsonrpc.Quote(d)); err != nil {
				return nil, false
			}
		}
	}
	return out, true
}

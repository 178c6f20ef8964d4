package gateway

import (
	"encoding/json"
	"strings"

	"gatehouse/internal/jsonrpc"
)

// ServerInfo is how the gateway introduces itself when a virtual server
// merges several upstreams.
const serverVersion = "0.1.0"

// initializeResult builds the answer to initialize. A transparent server
// returns its upstream's result unchanged except for the protocol version;
// others merge the members' capabilities and instructions.
func (s *Session) initializeResult(vs *VirtualServer) []byte {
	if vs.transparent {
		if ir := vs.members[0].e.initResult(); ir != nil {
			res, err := jsonrpc.Set(ir.Raw, "protocolVersion", jsonrpc.Quote(s.version))
			if err == nil {
				if vs.instructions != nil {
					res, _ = jsonrpc.Set(res, "instructions", jsonrpc.Quote(*vs.instructions))
				}
				return res
			}
		}
	}
	caps, instructions := mergeCapabilities(vs)
	if vs.instructions != nil {
		instructions = *vs.instructions
	}
	res := map[string]any{
		"protocolVersion": s.version,
		"capabilities":    caps,
		"serverInfo":      map[string]string{"name": "gatehouse/" + vs.Name, "version": serverVersion},
	}
	if instructions != "" {
		res["instructions"] = instructions
	}
	b, _ := json.Marshal(res)
	return b
}

// mergeCapabilities unions the members' server capabilities. tools,
// prompts and resources always announce listChanged, because the gateway
// notifies clients when an upstream comes or goes or the configuration
// changes. When no member is known yet, all three are announced.
func mergeCapabilities(vs *VirtualServer) (map[string]any, string) {
	caps := map[string]any{}
	var instr []string
	known := false
	subscribe := false
	for _, mb := range vs.members {
		ir := mb.e.initResult()
		if ir == nil {
			continue
		}
		known = true
		for name, raw := range ir.Capabilities {
			switch name {
			case "tools", "prompts":
				caps[name] = map[string]any{"listChanged": true}
			case "resources":
				var r struct {
					Subscribe bool `json:"subscribe"`
				}
				_ = json.Unmarshal(raw, &r)
				subscribe = subscribe || r.Subscribe
				caps[name] = map[string]any{"listChanged": true}
			case "logging", "completions":
				caps[name] = map[string]any{}
			case "experimental":
				var ex map[string]json.RawMessage
				if json.Unmarshal(raw, &ex) == nil {
					merged, _ := caps[name].(map[string]json.RawMessage)
					if merged == nil {
						merged = map[string]json.RawMessage{}
					}
					for k, v := range ex {
						if _, dup := merged[k]; !dup {
							merged[k] = v
						}
					}
					caps[name] = merged
				}
			}
		}
		if ir.Instructions != "" {
			instr = append(instr, "## "+mb.e.name+"\n"+ir.Instructions)
		}
	}
	if subscribe {
		caps["resources"] = map[string]any{"listChanged": true, "subscribe": true}
	}
	if !known {
		for _, k := range []string{"tools", "prompts", "resources"} {
			caps[k] = map[string]any{"listChanged": true}
		}
	}
	return caps, strings.Join(instr, "\n\n")
}

// cacheableMethods return results that the 2026-07-28 revision requires to
// carry ttlMs and cacheScope.
var cacheableMethods = map[string]bool{
	"tools/list": true, "prompts/list": true, "resources/list": true,
	"resources/templates/list": true, "resources/read": true, "server/discover": true,
}

// completeResult adds what the 2026-07-28 revision requires of every
// result that an upstream of an older revision leaves out: resultType, and
// ttlMs/cacheScope on cacheable results. It returns result itself when
// nothing is missing.
func completeResult(method string, result []byte) []byte {
	if len(result) == 0 || result[0] != '{' {
		return result
	}
	out := result
	if _, ok := jsonrpc.Get(out, "resultType"); !ok {
		out, _ = jsonrpc.Set(out, "resultType", []byte(`"complete"`))
	}
	if cacheableMethods[method] {
		if _, ok := jsonrpc.Get(out, "ttlMs"); !ok {
			out, _ = jsonrpc.Set(out, "ttlMs", []byte(`0`))
		}
		if _, ok := jsonrpc.Get(out, "cacheScope"); !ok {
			out, _ = jsonrpc.Set(out, "cacheScope", []byte(`"private"`))
		}
	}
	return out
}

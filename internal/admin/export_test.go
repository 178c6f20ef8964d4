package admin

import "strings"

// Routes lists the routes a registers on its mux, as "METHOD /path" in the
// OpenAPI document's spelling.
func Routes(a *API) []string {
	var out []string
	for _, rt := range a.routes {
		out = append(out, rt.method+" "+strings.ReplaceAll(rt.path, "...}", "}"))
	}
	return out
}

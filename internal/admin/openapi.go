package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The OpenAPI document is generated from the route table and the wire
// types, once, when the API is built: a route cannot be served without
// being documented, and a schema cannot disagree with the JSON the
// handlers write.

// schemaOverride lets a type describe itself where reflection cannot (a
// free-form JWK, the document itself, enumerations).
type schemaOverride interface {
	openAPISchema() map[string]any
}

// openAPIDoc stands for the document in the route table.
type openAPIDoc struct{}

func (openAPIDoc) openAPISchema() map[string]any {
	return map[string]any{"type": "object", "description": "An OpenAPI 3.1 document."}
}

func (ErrorDetail) openAPISchema() map[string]any {
	return map[string]any{
		"type":     "object",
		"required": []string{"code", "message"},
		"properties": map[string]any{
			"code":    map[string]any{"type": "string", "enum": []string{codeNotFound, codeConflict, codeInvalid, codeUnauthorized, codeInternal}},
			"message": map[string]any{"type": "string", "description": "For the operator; never holds a secret."},
		},
	}
}

var pathParamRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// openAPIDocument builds the document for the API's routes.
func (a *API) openAPIDocument() ([]byte, error) {
	g := &schemaGen{components: map[string]any{}, seen: map[reflect.Type]string{}}
	errorRef := g.ref(reflect.TypeOf(ErrorBody{}), false)
	paths := map[string]map[string]any{}
	for _, rt := range a.routes {
		p := rt.docPath()
		op := map[string]any{
			"operationId": operationID(rt.method, p),
			"summary":     rt.summary,
			"responses":   responses(g, rt, errorRef),
		}
		if rt.description != "" {
			op["description"] = rt.description
		}
		var params []any
		for _, m := range pathParamRE.FindAllStringSubmatch(p, -1) {
			params = append(params, map[string]any{
				"name": m[1], "in": "path", "required": true,
				"description": rt.pathDocs[m[1]], "schema": map[string]any{"type": "string"},
			})
		}
		for _, q := range rt.query {
			params = append(params, map[string]any{
				"name": q.name, "in": "query", "required": false,
				"description": q.description, "schema": map[string]any{"type": "string"},
			})
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.request != nil {
			op["requestBody"] = map[string]any{
				"required": !rt.requestOptional,
				"content": map[string]any{"application/json": map[string]any{
					"schema": g.schema(reflect.TypeOf(rt.request), true),
				}},
			}
		}
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		method := strings.ToLower(rt.method)
		if _, dup := paths[p][method]; dup {
			return nil, fmt.Errorf("route %s %s listed twice", rt.method, p)
		}
		paths[p][method] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Gatehouse admin API",
			"version": "1",
			"description": "Manages agents and their credentials, local users, the vault, signing keys and least-privilege policy (time-bounded grants, approvals of held calls, explanations of decisions), the audit trail and tool pins (approved tool definitions, changed ones waiting for review) of a Gatehouse gateway. " +
				"Every request needs the admin token (Authorization: Bearer …), a credential separate from agents' credentials. " +
				"Request bodies are JSON of at most 64 KiB; unknown fields are refused. Secrets are returned once, when created.",
		},
		"security": []any{map[string]any{"adminToken": []any{}}},
		"paths":    paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"adminToken": map[string]any{
				"type": "http", "scheme": "bearer",
				"description": "The admin token from the gateway's configuration (admin.token).",
			}},
			"schemas": g.components,
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

func responses(g *schemaGen, rt route, errorRef map[string]any) map[string]any {
	ok := map[string]any{"description": http.StatusText(rt.status)}
	if rt.response != nil {
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.response), false)}}
	}
	out := map[string]any{strconv.Itoa(rt.status): ok}
	for _, s := range append([]int{http.StatusUnauthorized, http.StatusInternalServerError}, rt.errors...) {
		out[strconv.Itoa(s)] = map[string]any{
			"description": http.StatusText(s),
			"content":     map[string]any{"application/json": map[string]any{"schema": errorRef}},
		}
	}
	return out
}

// operationID derives a stable id: "POST /admin/v1/agents/{name}/rotate"
// is "postAgentsNameRotate".
func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, seg := range strings.Split(strings.TrimPrefix(path, "/admin/v1/"), "/") {
		seg = strings.Trim(seg, "{}")
		for _, word := range strings.FieldsFunc(seg, func(r rune) bool { return r == '-' || r == '.' || r == '_' }) {
			b.WriteString(strings.ToUpper(word[:1]) + word[1:])
		}
	}
	return b.String()
}

// schemaGen derives JSON Schemas (draft 2020-12, as OpenAPI 3.1 uses) from
// Go types, following encoding/json's rules for the fields it meets. A
// field tagged enum:"a,b" lists its values.
type schemaGen struct {
	components map[string]any
	seen       map[reflect.Type]string
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage(nil))
)

func (g *schemaGen) schema(t reflect.Type, closed bool) map[string]any {
	if t.Kind() != reflect.Pointer {
		if o, ok := reflect.Zero(t).Interface().(schemaOverride); ok {
			return o.openAPISchema()
		}
	}
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case rawType:
		// Only agent attributes are raw JSON, and they are an object.
		return map[string]any{"type": "object"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem(), closed)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem(), closed)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem(), closed)}
	case reflect.Struct:
		return g.ref(t, closed)
	}
	panic(fmt.Sprintf("admin: no JSON Schema for Go type %s", t))
}

// ref registers a struct as a component and returns a reference to it.
func (g *schemaGen) ref(t reflect.Type, closed bool) map[string]any {
	if name, ok := g.seen[t]; ok {
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	name := t.Name()
	g.seen[t] = name
	props := map[string]any{}
	required := []string{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		jname, opts, _ := strings.Cut(tag, ",")
		if jname == "" {
			jname = f.Name
		}
		ps := g.schema(f.Type, closed)
		if enum := f.Tag.Get("enum"); enum != "" {
			ps["enum"] = strings.Split(enum, ",")
		}
		props[jname] = ps
		if !strings.Contains(opts, "omitempty") {
			required = append(required, jname)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "required": required}
	if closed {
		// Request bodies: unknown fields are refused.
		s["additionalProperties"] = false
	}
	g.components[name] = s
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

package policy

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/internal/jsonrpc"
)

// Caller is who makes a request, as policy sees it.
type Caller struct {
	Kind       string // "agent", "user", or "" (anonymous: authentication is off)
	ID         string // identity ID: "agent:agt_…", "user:alice"
	AgentID    string
	AgentName  string
	Team       string
	Owner      string
	Attributes map[string]any
	// User is the human: the user calling, or the person driving the agent.
	User   string
	Groups []string // the human's groups
	// Grants are bundles the agent holds through time-bounded grants.
	Grants []string

	once  sync.Once
	agent map[string]any
	user  map[string]any
	scope atomic.Pointer[callerScope] // the scope under the last policy asked
}

func (c *Caller) key() string {
	var b strings.Builder
	b.WriteString(c.Kind)
	b.WriteByte(0)
	b.WriteString(c.ID)
	b.WriteByte(0)
	b.WriteString(c.AgentName)
	b.WriteByte(0)
	b.WriteString(c.Team)
	b.WriteByte(0)
	b.WriteString(c.User)
	for _, g := range c.Groups {
		b.WriteByte(1)
		b.WriteString(g)
	}
	for _, g := range c.Grants {
		b.WriteByte(2)
		b.WriteString(g)
	}
	return b.String()
}

func (c *Caller) build() {
	c.once.Do(func() {
		attrs := c.Attributes
		if attrs == nil {
			attrs = map[string]any{}
		}
		c.agent = map[string]any{"id": c.AgentID, "name": c.AgentName, "team": c.Team, "owner": c.Owner, "attributes": attrs}
		groups := c.Groups
		if groups == nil {
			groups = []string{}
		}
		c.user = map[string]any{"name": c.User, "groups": groups}
	})
}

func (c *Caller) agentValue() map[string]any { c.build(); return c.agent }
func (c *Caller) userValue() map[string]any  { c.build(); return c.user }

// Annotations are the MCP tool annotations policy reads.
type Annotations struct {
	ReadOnly    *bool  `json:"readOnlyHint,omitempty"`
	Destructive *bool  `json:"destructiveHint,omitempty"`
	Idempotent  *bool  `json:"idempotentHint,omitempty"`
	OpenWorld   *bool  `json:"openWorldHint,omitempty"`
	Title       string `json:"title,omitempty"`
}

// Target is what a request is about.
type Target struct {
	Kind     string // KindTool, KindPrompt, KindResource
	Server   string // the virtual server
	Upstream string
	// Name is the tool or prompt name as the upstream knows it, or the
	// resource URI.
	Name string
	// Visible is the name the client sees (after prefixes and renames).
	Visible     string
	Annotations Annotations

	// raw is a list item whose annotations have not been read yet.
	raw []byte
}

// SetListItem points the target at a tools/list item: its annotations are
// read from it only if a rule needs them.
func (t *Target) SetListItem(item []byte) {
	t.Annotations = Annotations{}
	t.raw = item
}

// toolFacts are a target's labels and class after operator facts.
type toolFacts struct {
	labels []string

	fo                    *factOverrides
	t                     *Target
	classDone             bool
	readOnly, destructive bool
}

func (t *Target) value(f *toolFacts) map[string]any {
	f.class()
	ann := map[string]any{}
	a := t.Annotations
	if a.ReadOnly != nil {
		ann["readOnlyHint"] = *a.ReadOnly
	}
	if a.Destructive != nil {
		ann["destructiveHint"] = *a.Destructive
	}
	if a.Idempotent != nil {
		ann["idempotentHint"] = *a.Idempotent
	}
	if a.OpenWorld != nil {
		ann["openWorldHint"] = *a.OpenWorld
	}
	if a.Title != "" {
		ann["title"] = a.Title
	}
	labels := f.labels
	if labels == nil {
		labels = []string{}
	}
	return map[string]any{"kind": t.Kind, "name": t.Name, "server": t.Server, "upstream": t.Upstream,
		"visible_name": t.Visible, "annotations": ann, "labels": labels, "read_only": f.readOnly, "destructive": f.destructive}
}

// Request describes the request being decided.
type Request struct {
	Time   time.Time
	Source string // client IP address
	Method string // e.g. tools/call
}

// Session is what the gateway knows of the caller's session so far.
type Session struct {
	ID     string
	Labels []string // data labels of the tools called so far, sorted
	Calls  int      // tools/call requests so far
}

// HasLabel reports whether the session has read data labelled l.
func (s Session) HasLabel(l string) bool { return slices.Contains(s.Labels, l) }

// Input is one decision's input.
type Input struct {
	Caller  *Caller
	Target  *Target
	Args    json.RawMessage // tools/call arguments; unused when List is set
	Request Request
	Session Session
	// List asks whether the target may appear in a list: rules whose
	// conditions read the arguments are assumed to match for allows (the
	// caller may call it with some arguments) and ignored for denies.
	List bool

	facts toolFacts
	act   activation
	// memo keeps, across the items of one list, the results of conditions
	// that read neither tool nor args (the same for every item).
	memo map[*condition]memoResult
}

type memoResult struct {
	ok  bool
	err error
}

// AnnotationsOf reads a tools/list item's annotations in place (decoding
// each item's annotations with encoding/json cost more than deciding it).
func AnnotationsOf(item []byte) Annotations {
	var a Annotations
	raw, ok := jsonrpc.Get(item, "annotations")
	if !ok || len(raw) == 0 || raw[0] != '{' {
		return a
	}
	a.ReadOnly = hint(raw, "readOnlyHint")
	a.Destructive = hint(raw, "destructiveHint")
	a.Idempotent = hint(raw, "idempotentHint")
	a.OpenWorld = hint(raw, "openWorldHint")
	if t, ok := jsonrpc.Get(raw, "title"); ok {
		a.Title, _ = jsonrpc.String(t)
	}
	return a
}

var (
	hintTrue  = true
	hintFalse = false
)

func hint(obj []byte, key string) *bool {
	v, ok := jsonrpc.Get(obj, key)
	if !ok {
		return nil
	}
	switch string(v) {
	case "true":
		return &hintTrue
	case "false":
		return &hintFalse
	}
	return nil
}

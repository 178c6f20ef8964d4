package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"gatehouse/internal/inspect/pin"
	"gatehouse/internal/store"
)

// The tool routes review tool-definition drift ("rug pulls"): the gateway
// pins each upstream tool's definition when it is first approved (on first
// sight with inspect.tools.pin: first_use) and records a definition that
// differs from the pin, or a new tool when new tools need approval, as
// pending. An operator reads the difference and approves the new
// definition or forgets the tool.

// Tool statuses.
const (
	ToolPinned  = "pinned"  // a pin and nothing waiting
	ToolChanged = "changed" // a pin and another definition waiting for approval
	ToolNew     = "new"     // a definition waiting for approval, no pin yet
)

// changeToolPin is the store.Change kind that tells gateways a tool's pin
// changed (approved or forgotten), so they drop their cached pins and tell
// clients their tool list changed.
const changeToolPin = "tool_pin"

// toolPathDocs describe the tool routes' path parameters.
var toolPathDocs = map[string]string{
	"upstream": "The upstream's name in the configuration.",
	"tool":     "The tool's name as the upstream lists it; escape '/' as %2F.",
}

// minHashPrefix is the fewest hex digits of a hash an approval may name.
const minHashPrefix = 8

// Tool is an upstream tool's approved (pinned) definition and the one
// waiting for approval, joined. Hashes are hex SHA-256 of the canonical
// definitions (see internal/inspect/pin).
type Tool struct {
	Upstream string `json:"upstream"`
	Tool     string `json:"tool"`
	// Status: pinned (a pin, nothing waiting), changed (a pin and another
	// definition waiting for approval) or new (waiting, no pin yet).
	Status string `json:"status" enum:"pinned,changed,new"`
	// Class is how worrying the change is, for a changed tool.
	Class      string     `json:"class,omitempty" enum:"cosmetic,review,suspicious"`
	PinnedHash string     `json:"pinned_hash,omitempty"`
	ApprovedBy string     `json:"approved_by,omitempty"` // "first-use" when pinned on first sight
	ApprovedAt *time.Time `json:"approved_at,omitempty"`
	// PendingHash, FirstSeen and LastSeen describe the definition waiting
	// for approval (changed and new tools).
	PendingHash string     `json:"pending_hash,omitempty"`
	FirstSeen   *time.Time `json:"first_seen,omitempty"`
	LastSeen    *time.Time `json:"last_seen,omitempty"`
}

// ToolDetail is a Tool with its definitions and, for a changed tool, the
// difference between them.
type ToolDetail struct {
	Upstream    string     `json:"upstream"`
	Tool        string     `json:"tool"`
	Status      string     `json:"status" enum:"pinned,changed,new"`
	Class       string     `json:"class,omitempty" enum:"cosmetic,review,suspicious"`
	PinnedHash  string     `json:"pinned_hash,omitempty"`
	ApprovedBy  string     `json:"approved_by,omitempty"`
	ApprovedAt  *time.Time `json:"approved_at,omitempty"`
	PendingHash string     `json:"pending_hash,omitempty"`
	FirstSeen   *time.Time `json:"first_seen,omitempty"`
	LastSeen    *time.Time `json:"last_seen,omitempty"`
	// PinnedDefinition and PendingDefinition are the definitions in
	// canonical form (JSON objects: the MCP Tool without _meta and icons).
	PinnedDefinition  json.RawMessage `json:"pinned_definition,omitempty"`
	PendingDefinition json.RawMessage `json:"pending_definition,omitempty"`
	// Changes lists the differences from the pinned definition to the
	// pending one, most relevant first (changed tools).
	Changes []ToolChange `json:"changes,omitempty"`
	// Diff is Changes rendered for a terminal, invisible and control
	// characters spelled out (changed tools).
	Diff string `json:"diff,omitempty"`
}

// ToolChange is one field-level difference between two definitions (a
// pin.Change).
type ToolChange struct {
	// Path locates the changed value: "description",
	// "inputSchema.properties.path.type", "annotations.readOnlyHint".
	Path string `json:"path"`
	// Kind: name, title, description, property-added, property-removed,
	// type, required-added, required-removed, annotation, schema, field,
	// unreadable.
	Kind string `json:"kind"`
	// Old and New are the values as canonical JSON; absent when absent.
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
	Class string `json:"class" enum:"cosmetic,review,suspicious"`
	Why   string `json:"why,omitempty"`
	// Lines is a line diff of a description.
	Lines []ToolChangeLine `json:"lines,omitempty"`
}

// ToolChangeLine is one line of a description's line diff.
type ToolChangeLine struct {
	Op   string `json:"op" enum:" ,-,+"` // kept, removed, added
	Text string `json:"text"`
}

// ApproveToolRequest approves the definition of a tool waiting for
// approval.
type ApproveToolRequest struct {
	// Hash is the pending definition's hash, or a prefix of it of at least
	// 8 hex digits, as read with the diff; omitted: whatever definition is
	// pending now. When the pending definition has another hash (it
	// changed again), the approval is refused.
	Hash string `json:"hash,omitempty"`
	// By names the approver, for the pin and the audit log; default
	// "admin".
	By string `json:"by,omitempty"`
}

// ToolPin is an approved tool definition.
type ToolPin struct {
	Upstream   string          `json:"upstream"`
	Tool       string          `json:"tool"`
	Hash       string          `json:"hash"`
	ApprovedBy string          `json:"approved_by"`
	ApprovedAt time.Time       `json:"approved_at"`
	Definition json.RawMessage `json:"definition"`
}

func toolPinFromStore(p store.ToolPin) ToolPin {
	return ToolPin{Upstream: p.Upstream, Tool: p.Tool, Hash: p.Hash, ApprovedBy: p.ApprovedBy, ApprovedAt: p.ApprovedAt,
		Definition: p.Canonical}
}

// toolEntry is one tool's pin and pending definition, either may be nil.
type toolEntry struct {
	upstream, tool string
	pin            *store.ToolPin
	pending        *store.PendingTool
}

// status returns the entry's status. A pending definition with the
// pinned hash is nothing to review.
func (e toolEntry) status() string {
	switch {
	case e.pin == nil:
		return ToolNew
	case e.pending != nil && e.pending.Hash != e.pin.Hash:
		return ToolChanged
	}
	return ToolPinned
}

// changes returns the differences of a changed tool and their class.
func (e toolEntry) changes() ([]pin.Change, pin.Class) {
	if e.status() != ToolChanged {
		return nil, 0
	}
	changes := pin.Diff(pinnedOf(*e.pin), pin.Pinned{Name: e.pending.Tool, Hash: e.pending.Hash, Canonical: e.pending.Canonical})
	class := pin.Classify(changes)
	if class == 0 {
		// The same canonical text under another hash: not a change that
		// can be explained, so worry (as pin.Decide does).
		class = pin.Suspicious
	}
	return changes, class
}

func pinnedOf(p store.ToolPin) pin.Pinned {
	return pin.Pinned{Name: p.Tool, Hash: p.Hash, Canonical: p.Canonical}
}

func (e toolEntry) summary(class pin.Class) Tool {
	t := Tool{Upstream: e.upstream, Tool: e.tool, Status: e.status()}
	if class != 0 {
		t.Class = class.String()
	}
	if e.pin != nil {
		at := e.pin.ApprovedAt
		t.PinnedHash, t.ApprovedBy, t.ApprovedAt = e.pin.Hash, e.pin.ApprovedBy, &at
	}
	if e.pending != nil && t.Status != ToolPinned {
		first, last := e.pending.FirstSeen, e.pending.LastSeen
		t.PendingHash, t.FirstSeen, t.LastSeen = e.pending.Hash, &first, &last
	}
	return t
}

func (e toolEntry) detail() ToolDetail {
	changes, class := e.changes()
	t := e.summary(class)
	d := ToolDetail{Upstream: t.Upstream, Tool: t.Tool, Status: t.Status, Class: t.Class, PinnedHash: t.PinnedHash,
		ApprovedBy: t.ApprovedBy, ApprovedAt: t.ApprovedAt, PendingHash: t.PendingHash, FirstSeen: t.FirstSeen, LastSeen: t.LastSeen}
	if e.pin != nil {
		d.PinnedDefinition = e.pin.Canonical
	}
	if e.pending != nil && t.Status != ToolPinned {
		d.PendingDefinition = e.pending.Canonical
	}
	if t.Status == ToolChanged {
		d.Changes = make([]ToolChange, 0, len(changes))
		for _, c := range changes {
			tc := ToolChange{Path: c.Path, Kind: string(c.Kind), Old: c.Old, New: c.New, Class: c.Class.String(), Why: c.Why}
			for _, l := range c.Lines {
				tc.Lines = append(tc.Lines, ToolChangeLine{Op: string(l.Op), Text: l.Text})
			}
			d.Changes = append(d.Changes, tc)
		}
		d.Diff = pin.Render(changes)
	}
	return d
}

func toolSubject(upstream, tool string) string {
	return fmt.Sprintf("tool %q of upstream %q", tool, upstream)
}

// toolEntries joins the pins and pending definitions of upstream's tools
// (every upstream's when ""), by upstream then tool.
func (a *API) toolEntries(ctx context.Context, upstream string) ([]toolEntry, error) {
	pins, err := a.cfg.Store.ListToolPins(ctx, upstream)
	if err != nil {
		return nil, classify(fmt.Errorf("listing tool pins: %w", err), "tool pins")
	}
	pending, err := a.cfg.Store.ListPendingTools(ctx, upstream)
	if err != nil {
		return nil, classify(fmt.Errorf("listing pending tool definitions: %w", err), "pending tools")
	}
	type key struct{ upstream, tool string }
	byKey := map[key]*toolEntry{}
	var out []*toolEntry
	entry := func(u, t string) *toolEntry {
		k := key{u, t}
		if e, ok := byKey[k]; ok {
			return e
		}
		e := &toolEntry{upstream: u, tool: t}
		byKey[k] = e
		out = append(out, e)
		return e
	}
	for i := range pins {
		entry(pins[i].Upstream, pins[i].Tool).pin = &pins[i]
	}
	for i := range pending {
		entry(pending[i].Upstream, pending[i].Tool).pending = &pending[i]
	}
	slices.SortFunc(out, func(x, y *toolEntry) int {
		if c := strings.Compare(x.upstream, y.upstream); c != 0 {
			return c
		}
		return strings.Compare(x.tool, y.tool)
	})
	list := make([]toolEntry, len(out))
	for i, e := range out {
		list[i] = *e
	}
	return list, nil
}

// lookupTool returns the entry of one tool; 404 when it has neither a pin
// nor a pending definition.
func (a *API) lookupTool(ctx context.Context, upstream, tool string) (toolEntry, error) {
	e := toolEntry{upstream: upstream, tool: tool}
	p, err := a.cfg.Store.GetToolPin(ctx, upstream, tool)
	switch {
	case err == nil:
		e.pin = &p
	case !errors.Is(err, store.ErrNotFound):
		return e, classify(fmt.Errorf("reading the pin of %s: %w", toolSubject(upstream, tool), err), toolSubject(upstream, tool))
	}
	pending, err := a.cfg.Store.ListPendingTools(ctx, upstream)
	if err != nil {
		return e, classify(fmt.Errorf("listing pending tool definitions: %w", err), "pending tools")
	}
	for i := range pending {
		if pending[i].Tool == tool {
			e.pending = &pending[i]
			break
		}
	}
	if e.pin == nil && e.pending == nil {
		return e, notFound("%s is not known: it is neither pinned nor waiting for approval (GET %stools lists the tools the gateway has seen; "+
			"a tool is pinned or recorded when an upstream lists it)", toolSubject(upstream, tool), Prefix)
	}
	return e, nil
}

func (a *API) listTools(r *http.Request) (any, error) {
	q := r.URL.Query()
	status := q.Get("status")
	switch status {
	case "", "all":
		status = ""
	case ToolPinned, ToolChanged, ToolNew:
	default:
		return nil, badRequest("status must be pinned, changed, new or all, not %q", status)
	}
	entries, err := a.toolEntries(r.Context(), q.Get("upstream"))
	if err != nil {
		return nil, err
	}
	out := make([]Tool, 0, len(entries))
	for _, e := range entries {
		if status != "" && e.status() != status {
			continue
		}
		_, class := e.changes()
		out = append(out, e.summary(class))
	}
	return out, nil
}

func (a *API) getTool(r *http.Request) (any, error) {
	e, err := a.lookupTool(r.Context(), r.PathValue("upstream"), r.PathValue("tool"))
	if err != nil {
		return nil, err
	}
	return e.detail(), nil
}

func (a *API) approveTool(r *http.Request) (any, error) {
	upstream, tool := r.PathValue("upstream"), r.PathValue("tool")
	var req ApproveToolRequest
	if err := decodeBody(r, &req, true); err != nil {
		return nil, err
	}
	want := strings.ToLower(strings.TrimSpace(req.Hash))
	if want != "" {
		if len(want) < minHashPrefix || len(want) > 64 || strings.Trim(want, "0123456789abcdef") != "" {
			return nil, badRequest("hash must be the pending definition's hash or a prefix of it of at least %d hex digits, not %q",
				minHashPrefix, req.Hash)
		}
	}
	by, err := actor(req.By)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	e, err := a.lookupTool(ctx, upstream, tool)
	if err != nil {
		return nil, err
	}
	subject := toolSubject(upstream, tool)
	if e.status() == ToolPinned {
		if want != "" && strings.HasPrefix(e.pin.Hash, want) {
			return nil, conflict("%s is already approved with that definition (hash %s, by %s at %s): nothing is waiting",
				subject, shortHash(e.pin.Hash), e.pin.ApprovedBy, e.pin.ApprovedAt.UTC().Format(time.RFC3339))
		}
		return nil, conflict("%s has no definition waiting for approval: its pinned definition (hash %s) is the current one",
			subject, shortHash(e.pin.Hash))
	}
	if want != "" {
		switch {
		case !strings.HasPrefix(e.pending.Hash, want):
			return nil, conflict("the definition of %s changed again: the one waiting now has hash %s, not %s; "+
				"look at the diff again (GET %stools/%s/%s, or gatehouse tools diff %s/%s) before approving",
				subject, shortHash(e.pending.Hash), req.Hash, Prefix, url.PathEscape(upstream), url.PathEscape(tool), upstream, tool)
		case e.pin != nil && strings.HasPrefix(e.pin.Hash, want):
			return nil, badRequest("hash %q is a prefix of both the pinned and the pending hash: give more digits", req.Hash)
		}
	}
	p, err := a.cfg.Store.ApproveTool(ctx, upstream, tool, e.pending.Hash, by, time.Now().UTC())
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, &apiError{status: http.StatusConflict, code: codeConflict, cause: err,
				msg: fmt.Sprintf("the definition of %s changed again or was approved meanwhile: look at it again (gatehouse tools diff %s/%s)",
					subject, upstream, tool)}
		}
		return nil, classify(err, subject)
	}
	a.log.Info("tool definition approved", "upstream", upstream, "tool", tool, "hash", shortHash(p.Hash), "by", by)
	a.publishToolPin(ctx, upstream, tool)
	return toolPinFromStore(p), nil
}

func (a *API) forgetTool(r *http.Request) (any, error) {
	upstream, tool := r.PathValue("upstream"), r.PathValue("tool")
	ctx := r.Context()
	if err := a.cfg.Store.DeleteToolPin(ctx, upstream, tool); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, &apiError{status: http.StatusNotFound, code: codeNotFound, cause: err,
				msg: toolSubject(upstream, tool) + " is not known: it is neither pinned nor waiting for approval"}
		}
		return nil, classify(err, toolSubject(upstream, tool))
	}
	a.log.Info("tool pin forgotten", "upstream", upstream, "tool", tool)
	a.publishToolPin(ctx, upstream, tool)
	return nil, nil
}

// publishToolPin tells every gateway using the store that the tool's pin
// changed. The change is stored already: a failure to publish is logged,
// not returned (a retry would find nothing to do).
func (a *API) publishToolPin(ctx context.Context, upstream, tool string) {
	if err := a.cfg.Store.Publish(ctx, store.Change{Kind: changeToolPin, ID: upstream + "/" + tool}); err != nil {
		a.log.Error("publishing a tool pin change: gateways may keep the old pin until they resync",
			"upstream", upstream, "tool", tool, "error", err)
	}
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

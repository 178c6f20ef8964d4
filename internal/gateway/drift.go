package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
	"gatehouse/internal/inspect"
	"gatehouse/internal/inspect/alert"
	"gatehouse/internal/inspect/pin"
	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/store"
)

// Tool definitions are checked where the gateway reads an upstream's
// tools/list (the list it serves, and the catalog it routes calls with):
//
//   - Drift: each tool's definition is pinned when first approved (on
//     first sight with pin: first_use); a definition that differs from its
//     pin is recorded as pending and quarantined (hidden, or flagged) until
//     an operator approves it (gatehouse tools diff|approve).
//   - Poisoning: the descriptions are scanned for instructions aimed at
//     the model; such a tool is flagged or hidden.
//
// A hidden tool is left out of tools/list and a call to it is refused
// with CodeToolQuarantined, which says why: unlike a tool hidden by
// policy, the caller is not the one being kept in the dark, the upstream
// is.

// CodeToolQuarantined: the tool is held back (its definition changed since
// it was approved, it waits for approval, or its description is poisoned).
const CodeToolQuarantined = -31013

// PinStore keeps approved tool definitions; store.Store implements it.
type PinStore interface {
	PinTool(ctx context.Context, p store.ToolPin) error
	GetToolPin(ctx context.Context, upstream, tool string) (store.ToolPin, error)
	ListToolPins(ctx context.Context, upstream string) ([]store.ToolPin, error)
	RecordPendingTool(ctx context.Context, p store.PendingTool) error
}

// maxToolDefs bounds the cache of checked definitions; past it the cache
// starts over (definitions are few; the bound is against a server that
// lists a new definition on every call).
const maxToolDefs = 4096

// toolGuard checks tool definitions. Its caches outlive configuration
// snapshots: pins belong to the store, not to a configuration.
type toolGuard struct {
	g  *Gateway
	st PinStore

	mu   sync.Mutex
	pins map[string]map[string]store.ToolPin // by upstream (loaded whole, once), then tool
	// pending holds the hash last recorded as pending, by upstream+"\x00"+tool,
	// so a quarantined definition is written and reported once.
	pending map[string]string
	defs    map[[32]byte]*toolDef // by SHA-256 of the listed item
}

// toolDef is what is learnt from one listed definition, whatever the pins.
type toolDef struct {
	fp  pin.Pinned
	err error // the definition cannot be pinned (not an object, duplicate keys, …)
	// poison are the injection finding types in its descriptions.
	poison []string
}

// toolVerdict says what to do with one listed tool.
type toolVerdict struct {
	hide, flag bool
	// why, for the caller and the log (empty when the tool is fine).
	why string
	// findings mark the audit record of the list or the call.
	findings []audit.Finding
	// def identifies the listed definition (SHA-256 of the item).
	def [32]byte
}

func (v toolVerdict) ok() bool { return !v.hide && !v.flag }

func newToolGuard(g *Gateway, st PinStore) *toolGuard {
	if st == nil {
		st = &memPins{pins: map[string]store.ToolPin{}}
	}
	return &toolGuard{g: g, st: st, pins: map[string]map[string]store.ToolPin{}, pending: map[string]string{}, defs: map[[32]byte]*toolDef{}}
}

// toolsChecked reports whether tool definitions are checked at all.
func toolsChecked(snap *snapshot) bool {
	c := snap.cfg.Inspect
	if c.Disabled {
		return false
	}
	return c.Tools.PinMode() != config.PinOff || (c.Tools.PoisoningMode() != "off" && snap.inspect.poisonScanner() != nil)
}

// poisonScanner returns the injection detector's tool-description scan,
// or nil when injection detection is off.
func (in *inspection) poisonScanner() func(string, []inspect.Finding) []inspect.Finding {
	if in == nil || in.engine == nil {
		return nil
	}
	for _, d := range in.engine.Detectors() {
		if s, ok := d.(interface {
			ScanToolDescription(string, []inspect.Finding) []inspect.Finding
		}); ok {
			return s.ScanToolDescription
		}
	}
	return nil
}

// check decides about one tool definition (a tools/list item) of upstream.
// It pins new tools (first_use) and records quarantined definitions.
func (tg *toolGuard) check(ctx context.Context, upstream string, item []byte, snap *snapshot) toolVerdict {
	cfg := snap.cfg.Inspect.Tools
	key := sha256.Sum256(item)
	def := tg.def(upstream, key, item, snap)
	v := toolVerdict{def: key}
	if mode := cfg.PoisoningMode(); mode != "off" && len(def.poison) > 0 {
		v.why = "its description contains instructions aimed at the model (" + strings.Join(def.poison, ", ") + ")"
		if mode == "hide" {
			v.hide = true
		} else {
			v.flag = true
		}
		v.findings = append(v.findings, audit.Finding{Category: "injection", Type: "tool-poisoning", Confidence: "high",
			Direction: string(inspect.Response), Path: "/tools/" + def.fp.Name, Action: mode})
	}
	if cfg.PinMode() == config.PinOff {
		return v
	}
	if def.err != nil {
		// Not a definition that can be pinned: it cannot be vouched for.
		tg.g.log.Warn("tool definition cannot be pinned: hidden", "upstream", upstream, "error", def.err)
		return toolVerdict{hide: true, why: "its definition cannot be checked (" + def.err.Error() + ")", def: key}
	}
	d, err := tg.decide(ctx, upstream, def.fp, cfg)
	if err != nil {
		tg.g.log.Warn("tool pins unavailable: tool hidden", "upstream", upstream, "tool", def.fp.Name, "error", err)
		return toolVerdict{hide: true, why: "its approved definition could not be read (" + err.Error() + ")", def: key}
	}
	drift := func(typ, why string) {
		action := "flag"
		if d.Hide {
			action = "hide"
			v.hide = true
		} else {
			v.flag = true
		}
		if v.why != "" {
			v.why += "; "
		}
		v.why += why
		v.findings = append(v.findings, audit.Finding{Category: "tool", Type: typ, Confidence: "high",
			Direction: string(inspect.Response), Path: "/tools/" + def.fp.Name, Action: action})
	}
	switch d.Status {
	case pin.StatusChanged:
		drift("tool-drift", fmt.Sprintf("its definition changed since it was approved (%s change); an operator must review it: gatehouse tools diff %s/%s",
			d.Class, upstream, def.fp.Name))
	case pin.StatusNew: // approval mode: new tools wait
		d.Hide = true
		drift("tool-new", fmt.Sprintf("it is new and waits for an operator's approval: gatehouse tools diff %s/%s", upstream, def.fp.Name))
	}
	return v
}

// def returns the cached facts about a listed definition.
func (tg *toolGuard) def(upstream string, key [32]byte, item []byte, snap *snapshot) *toolDef {
	tg.mu.Lock()
	d := tg.defs[key]
	tg.mu.Unlock()
	if d != nil {
		return d
	}
	d = &toolDef{}
	d.fp, d.err = pin.Fingerprint(item)
	if scan := snap.inspect.poisonScanner(); scan != nil {
		var seen map[string]bool
		for _, f := range scan(toolText(item), nil) {
			if !seen[f.Type] {
				if seen == nil {
					seen = map[string]bool{}
				}
				seen[f.Type] = true
				d.poison = append(d.poison, f.Type)
			}
		}
	}
	if len(d.poison) > 0 && snap.cfg.Inspect.Tools.PoisoningMode() != "off" {
		tg.g.raiseAlert(alert.Alert{Kind: alert.KindToolPoisoning, Upstream: upstream, Tool: d.fp.Name,
			Action: snap.cfg.Inspect.Tools.PoisoningMode(), Details: map[string]string{"findings": strings.Join(d.poison, ",")}})
	}
	tg.mu.Lock()
	if len(tg.defs) >= maxToolDefs {
		clear(tg.defs)
	}
	tg.defs[key] = d
	tg.mu.Unlock()
	return d
}

// toolText is what a model reads of a tool definition: its title and
// description and every description and title in its schemas, one per
// line.
func toolText(item []byte) string {
	var v any
	if json.Unmarshal(item, &v) != nil {
		return ""
	}
	var b strings.Builder
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > 64 {
			return
		}
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				if s, ok := x.(string); ok && (k == "description" || k == "title") {
					b.WriteString(s)
					b.WriteByte('\n')
					continue
				}
				if k != "_meta" && k != "icons" {
					walk(x, depth+1)
				}
			}
		case []any:
			for _, x := range t {
				walk(x, depth+1)
			}
		}
	}
	walk(v, 0)
	return b.String()
}

// decide compares fp with upstream's pin, pinning it when it is new and
// the mode trusts first use, and recording it as pending when it is
// quarantined.
func (tg *toolGuard) decide(ctx context.Context, upstream string, fp pin.Pinned, cfg config.InspectTools) (pin.Decision, error) {
	pinned, err := tg.pinOf(ctx, upstream, fp.Name)
	if err != nil {
		return pin.Decision{}, err
	}
	d := pin.Decide(pinned, fp, cfg.QuarantineMode())
	if d.Status == pin.StatusNew && cfg.PinMode() == config.PinFirstUse {
		p := store.ToolPin{Upstream: upstream, Tool: fp.Name, Hash: fp.Hash, Canonical: fp.Canonical, ApprovedBy: "first-use", ApprovedAt: time.Now().UTC()}
		switch err := tg.st.PinTool(ctx, p); {
		case err == nil:
			tg.setPin(p)
			tg.g.log.Info("tool pinned on first use", "upstream", upstream, "tool", fp.Name, "hash", fp.Hash[:12])
			return pin.Decision{Status: pin.StatusSame, CurrentHash: fp.Hash, PinnedHash: fp.Hash}, nil
		case errors.Is(err, store.ErrConflict):
			// Another replica pinned it first: compare with its pin.
			p, err := tg.st.GetToolPin(ctx, upstream, fp.Name)
			if err != nil {
				return pin.Decision{}, err
			}
			tg.setPin(p)
			d = pin.Decide(pinnedOf(p), fp, cfg.QuarantineMode())
		default:
			return pin.Decision{}, err
		}
	}
	if d.Status != pin.StatusSame {
		tg.recordPending(ctx, upstream, fp, d)
	}
	return d, nil
}

func pinnedOf(p store.ToolPin) pin.Pinned {
	return pin.Pinned{Name: p.Tool, Hash: p.Hash, Canonical: p.Canonical}
}

// pinOf returns the pin of upstream's tool (the zero Pinned when none),
// loading the upstream's pins on first use.
func (tg *toolGuard) pinOf(ctx context.Context, upstream, tool string) (pin.Pinned, error) {
	tg.mu.Lock()
	m, ok := tg.pins[upstream]
	tg.mu.Unlock()
	if !ok {
		list, err := tg.st.ListToolPins(ctx, upstream)
		if err != nil {
			return pin.Pinned{}, fmt.Errorf("reading the pins of %s: %w", upstream, err)
		}
		m = make(map[string]store.ToolPin, len(list))
		for _, p := range list {
			m[p.Tool] = p
		}
		tg.mu.Lock()
		if cur, ok := tg.pins[upstream]; ok {
			m = cur // loaded concurrently: keep the one with later pins
		} else {
			tg.pins[upstream] = m
		}
		tg.mu.Unlock()
	}
	tg.mu.Lock()
	p, ok := m[tool]
	tg.mu.Unlock()
	if !ok {
		return pin.Pinned{}, nil
	}
	return pinnedOf(p), nil
}

func (tg *toolGuard) setPin(p store.ToolPin) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if m, ok := tg.pins[p.Upstream]; ok {
		m[p.Tool] = p
	}
}

// recordPending stores a quarantined definition for the operator, once
// per definition, and reports it.
func (tg *toolGuard) recordPending(ctx context.Context, upstream string, fp pin.Pinned, d pin.Decision) {
	key := upstream + "\x00" + fp.Name
	tg.mu.Lock()
	done := tg.pending[key] == fp.Hash
	tg.mu.Unlock()
	if done {
		return
	}
	now := time.Now().UTC()
	if err := tg.st.RecordPendingTool(ctx, store.PendingTool{Upstream: upstream, Tool: fp.Name, Hash: fp.Hash, Canonical: fp.Canonical, FirstSeen: now, LastSeen: now}); err != nil {
		tg.g.log.Warn("recording a quarantined tool definition", "upstream", upstream, "tool", fp.Name, "error", err)
		return // tried again on the next sight
	}
	tg.mu.Lock()
	tg.pending[key] = fp.Hash
	tg.mu.Unlock()
	tg.countQuarantined(upstream)
	action := "flag"
	if d.Hide || d.Status == pin.StatusNew {
		action = "hide"
	}
	details := map[string]string{"status": string(d.Status), "current": short(d.CurrentHash),
		"review": "gatehouse tools diff " + upstream + "/" + fp.Name}
	if d.Status == pin.StatusChanged {
		details["class"], details["pinned"] = d.Class.String(), short(d.PinnedHash)
	}
	tg.g.raiseAlert(alert.Alert{Kind: alert.KindToolDrift, Upstream: upstream, Tool: fp.Name, Action: action, Details: details})
}

// countQuarantined sets the gauge of upstream's tools held for review
// (as far as this process has seen).
func (tg *toolGuard) countQuarantined(upstream string) {
	prefix := upstream + "\x00"
	n := 0
	tg.mu.Lock()
	for k := range tg.pending {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	tg.mu.Unlock()
	tg.g.metrics().SetToolsQuarantined(upstream, n)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// forget drops what is cached of upstream's tool (its pin changed in the
// store: approved or forgotten), or of everything when upstream is "".
func (tg *toolGuard) forget(upstream, tool string) {
	tg.mu.Lock()
	ups := map[string]bool{upstream: true}
	if upstream == "" {
		clear(tg.pins)
		ups = map[string]bool{}
		for k := range tg.pending {
			up, _, _ := strings.Cut(k, "\x00")
			ups[up] = true
		}
		clear(tg.pending)
	} else {
		delete(tg.pins, upstream)
		delete(tg.pending, upstream+"\x00"+tool)
	}
	tg.mu.Unlock()
	for up := range ups {
		tg.countQuarantined(up)
	}
}

// ToolPinChanged is told that the pin of upstream's tool changed in the
// store (approved, forgotten; on this replica or another): cached pins
// and catalogs are dropped and the sessions of the virtual servers using
// that upstream are told their tool list changed. An empty upstream means
// everything may have changed.
func (g *Gateway) ToolPinChanged(upstream, tool string) {
	g.tools.forget(upstream, tool)
	snap := g.snap.Load()
	for name, vs := range snap.servers {
		uses := false
		for _, mb := range vs.members {
			if upstream == "" || mb.e.name == upstream {
				mb.e.invalidateCatalog()
				uses = true
			}
		}
		if !uses {
			continue
		}
		for _, sess := range g.sessionsOf(name) {
			_ = sess.out.Send(jsonrpc.Notification("notifications/tools/list_changed", nil))
		}
		g.notifyListeners(name, []string{"tools"})
	}
}

// toolCheck returns the verdict on the tool up of member mb for a call, from
// the member's catalog (nil verdict: the tool is fine or unchecked).
func (x *exchange) toolCheck(ctx context.Context, mb *member, up string) *toolVerdict {
	snap := x.g.snap.Load()
	if !toolsChecked(snap) {
		return nil
	}
	c, err := x.clientFor(ctx, mb.e)
	if err != nil {
		return nil // the call will report the upstream as unavailable
	}
	cl, err := mb.e.catalogFor(ctx, c, "tools/list")
	if err != nil {
		return nil
	}
	// A tool missing from the catalog is not refused here: an upstream may
	// list different tools to different sessions (by their capabilities),
	// and the catalog is one session's view.
	if v, ok := cl.tools[up]; ok {
		return &v
	}
	return nil
}

// sawToolDef drops the catalog when a tools/list served to a client shows
// another definition of tool up than the catalog holds: calls are checked
// against the catalog, which must not vouch for a definition clients no
// longer see (the upstream's list_changed may still be on its way).
func (e *entry) sawToolDef(up string, def [32]byte) {
	e.catMu.Lock()
	defer e.catMu.Unlock()
	if cl := e.catalog["tools/list"]; cl != nil {
		if old, ok := cl.defs[up]; ok && old != def {
			delete(e.catalog, "tools/list")
		}
	}
}

// forwardCheckedTools serves tools/list of a transparent server: the
// upstream's result as it is, less the tools held back.
func (x *exchange) forwardCheckedTools(ctx context.Context, mb *member, snap *snapshot) {
	resp, err := x.call(ctx, mb, nil, "")
	if err != nil {
		x.fail(err)
		return
	}
	items, ok := jsonrpc.Get(resp.Result, "tools")
	if resp.Kind != jsonrpc.KindResult || !ok {
		x.relay(resp)
		return
	}
	out := make([]byte, 0, len(items))
	out = append(out, '[')
	dropped := false
	_ = jsonrpc.Elements(items, func(s, e int) bool {
		item := items[s:e]
		v := x.g.tools.check(ctx, mb.e.name, item, snap)
		if raw, ok := jsonrpc.Get(item, "name"); ok {
			if up, ok := jsonrpc.String(raw); ok {
				mb.e.sawToolDef(up, v.def)
			}
		}
		if !v.ok() {
			x.noteHook(inspect.ActionFlag, v.findings...)
			if v.hide {
				dropped = true
				return true
			}
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, item...)
		return true
	})
	if !dropped {
		x.relay(resp)
		return
	}
	out = append(out, ']')
	res, err := jsonrpc.Set(resp.Result, "tools", out)
	if err != nil {
		x.fail(jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse could not rewrite the tool list"))
		return
	}
	m, err := jsonrpc.Parse(jsonrpc.ResultResponse(resp.ID, res))
	if err != nil {
		x.fail(jsonrpc.NewError(jsonrpc.CodeInternalError, "gatehouse could not rewrite the tool list"))
		return
	}
	x.relay(m)
}

// quarantinedError refuses a call to a held-back tool.
func quarantinedError(name string, v *toolVerdict) *jsonrpc.Error {
	return jsonrpc.NewError(CodeToolQuarantined, fmt.Sprintf("gatehouse holds the tool %s back: %s", name, v.why))
}

// memPins keeps pins in memory when the gateway runs without a store
// (first_use only: nothing could approve a pending definition).
type memPins struct {
	mu   sync.Mutex
	pins map[string]store.ToolPin
}

func (m *memPins) PinTool(_ context.Context, p store.ToolPin) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := p.Upstream + "\x00" + p.Tool
	if _, ok := m.pins[k]; ok {
		return store.ErrConflict
	}
	m.pins[k] = p
	return nil
}

func (m *memPins) GetToolPin(_ context.Context, upstream, tool string) (store.ToolPin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pins[upstream+"\x00"+tool]
	if !ok {
		return p, store.ErrNotFound
	}
	return p, nil
}

func (m *memPins) ListToolPins(_ context.Context, upstream string) ([]store.ToolPin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.ToolPin
	for _, p := range m.pins {
		if p.Upstream == upstream {
			out = append(out, p)
		}
	}
	return out, nil
}

func (m *memPins) RecordPendingTool(context.Context, store.PendingTool) error { return nil }

package inspect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"gatehouse/internal/jsonrpc"
)

// Direction is which way a payload travels.
type Direction string

// Directions.
const (
	Request  Direction = "request"  // arguments and requests going to an upstream
	Response Direction = "response" // results and contents coming back to an agent
)

// Action is what happens to a payload with a finding, in increasing order
// of severity: the strongest action over a payload's findings applies.
type Action int8

// Actions.
const (
	ActionNone   Action = iota
	ActionFlag          // allowed; the audit record is marked for review
	ActionAlert         // allowed, flagged, and operators are alerted
	ActionRedact        // the finding is replaced by a typed placeholder
	ActionBlock         // the call fails with an error naming the finding type
)

var actionNames = [...]string{"none", "flag", "alert", "redact", "block"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", int8(a))
}

// ParseAction reads an action name.
func ParseAction(s string) (Action, error) {
	for i, n := range actionNames {
		if n == s {
			return Action(i), nil
		}
	}
	return 0, fmt.Errorf("action %q: want block, redact, alert, flag or none", s)
}

// MarshalText writes the action's name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Rule maps findings to an action. Empty fields match everything.
type Rule struct {
	Category      Category
	Types         []string // finding types, glob patterns ("aws-*")
	MinConfidence Confidence
	Direction     Direction
	Action        Action
}

func (r *Rule) matches(f *Finding, dir Direction) bool {
	if r.Category != "" && r.Category != f.Category {
		return false
	}
	if r.Direction != "" && r.Direction != dir {
		return false
	}
	if f.Confidence < r.MinConfidence {
		return false
	}
	if len(r.Types) == 0 {
		return true
	}
	for _, t := range r.Types {
		if ok, _ := path.Match(t, f.Type); ok {
			return true
		}
	}
	return false
}

// Rules are tried in order; the first that matches a finding decides its
// action. A finding no rule matches is flagged.
type Rules []Rule

// DefaultRules: high-confidence secrets block in both directions, personal
// data in results is redacted, everything else (injection, lower
// confidence secrets, personal data sent by agents) is flagged.
var DefaultRules = Rules{
	{Category: CategorySecret, MinConfidence: High, Action: ActionBlock},
	{Category: CategoryPII, Direction: Response, Action: ActionRedact},
	{Action: ActionFlag},
}

// ActionFor returns the action for one finding.
func (rs Rules) ActionFor(f *Finding, dir Direction) Action {
	for i := range rs {
		if rs[i].matches(f, dir) {
			return rs[i].Action
		}
	}
	return ActionFlag
}

// Engine runs detectors over MCP payloads. It is immutable and safe for
// concurrent use.
type Engine struct {
	detectors []Detector
	bufs      sync.Pool // *scratch
}

// NewEngine returns an engine over the detectors.
func NewEngine(detectors ...Detector) *Engine {
	e := &Engine{detectors: detectors}
	e.bufs.New = func() any { return new(scratch) }
	return e
}

// Detectors returns the engine's detectors.
func (e *Engine) Detectors() []Detector { return e.detectors }

// ScanText runs every detector over text; findings are sorted by offset.
func (e *Engine) ScanText(text string, dst []Finding) []Finding {
	n := len(dst)
	for _, d := range e.detectors {
		dst = d.Scan(text, dst)
	}
	sortFindings(dst[n:])
	return dst
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Start != fs[j].Start {
			return fs[i].Start < fs[j].Start
		}
		return fs[i].End > fs[j].End
	})
}

// Located is a finding in a JSON payload: the offsets are within the
// decoded string value at Path (a JSON Pointer), and Action is what the
// rules decided for it.
type Located struct {
	Finding
	Path   string `json:"path"`
	Action Action `json:"action"`
	str    int    // index of its string in the scratch
}

// Verdict is the outcome of inspecting one payload.
type Verdict struct {
	Findings []Located
	// Action is the strongest action over the findings.
	Action Action
	// Blocking is the first finding whose action is block (Action is
	// ActionBlock).
	Blocking *Located
	// Redacted is the payload with every finding whose action is redact
	// replaced by a placeholder ("[redacted:email]"); nil when nothing was
	// redacted or the payload is blocked.
	Redacted json.RawMessage
}

// Types lists the distinct finding types, for messages and records.
func (v *Verdict) Types() []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range v.Findings {
		k := string(f.Category) + ":" + f.Type
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// scratch is reused across inspections: the joined text and its map back
// to the payload's strings.
type scratch struct {
	text     []byte
	strs     []jsonString
	findings []Finding
	// During a walk: the payload and the sensitive-name test.
	payload      []byte
	sensitive    func(string) bool
	anySensitive bool // some value is under a sensitive name
}

// jsonString is one string value of the payload: where its raw form is,
// and where its decoded form sits in the joined text.
type jsonString struct {
	rawStart, rawEnd int // the quoted string in the payload
	textStart        int // its decoded value in scratch.text
	textEnd          int
	sensitive        bool // under a field name that is always masked
}

// Inspect scans the string values of a JSON payload (all of them, joined,
// in one pass of each detector) and applies rules. An invalid payload is
// scanned as one string.
func (e *Engine) Inspect(payload []byte, dir Direction, rules Rules) Verdict {
	if len(e.detectors) == 0 || len(payload) == 0 {
		return Verdict{}
	}
	s := e.bufs.Get().(*scratch)
	defer e.bufs.Put(s)
	payload = s.load(payload, nil)
	e.scan(s)
	if len(s.findings) == 0 {
		return Verdict{}
	}
	var v Verdict
	redact := false
	for _, f := range s.findings {
		l, ok := s.locate(f)
		if !ok {
			continue
		}
		l.Action = rules.ActionFor(&f, dir)
		l.Path = pathOf(payload, l.str)
		if l.Action > v.Action {
			v.Action = l.Action
		}
		if l.Action == ActionRedact {
			redact = true
		}
		v.Findings = append(v.Findings, l)
	}
	for i := range v.Findings {
		if v.Findings[i].Action == ActionBlock {
			v.Blocking = &v.Findings[i]
			break
		}
	}
	if redact && v.Action != ActionBlock {
		v.Redacted = redactPayload(payload, s, v.Findings, func(l *Located) bool { return l.Action == ActionRedact }, "redacted")
	}
	return v
}

// Mask returns payload with every finding, and every value under a
// sensitive field name, replaced by a typed placeholder ("[masked:email]",
// "[masked:secret]"), for audit records. It returns payload itself when
// nothing was masked. With scan false the detectors are not run (the
// caller inspected payload already and found nothing): only sensitive
// fields are masked.
func (e *Engine) Mask(payload []byte, sensitive func(key string) bool, scan bool) []byte {
	if len(payload) == 0 {
		return payload
	}
	s := e.bufs.Get().(*scratch)
	defer e.bufs.Put(s)
	payload = s.load(payload, sensitive)
	if scan {
		e.scan(s)
	}
	if len(s.findings) == 0 && !s.anySensitive {
		return payload
	}
	var located []Located
	for _, f := range s.findings {
		if l, ok := s.locate(f); ok && !s.strs[l.str].sensitive {
			located = append(located, l)
		}
	}
	return redactPayload(payload, s, located, func(*Located) bool { return true }, "masked")
}

// load resets s and collects the strings of payload, which it returns; a
// payload that is not JSON is taken as one string (and returned quoted).
func (s *scratch) load(payload []byte, sensitive func(string) bool) []byte {
	s.text, s.strs, s.findings, s.anySensitive = s.text[:0], s.strs[:0], s.findings[:0], false
	if !collectStrings(payload, s, sensitive) {
		payload, _ = json.Marshal(string(payload))
		s.text, s.strs, s.anySensitive = s.text[:0], s.strs[:0], false
		collectStrings(payload, s, nil)
	}
	return payload
}

// scan runs the detectors over the collected text; findings end up sorted.
func (e *Engine) scan(s *scratch) {
	if len(s.text) == 0 {
		return
	}
	text := unsafeString(s.text)
	for _, d := range e.detectors {
		s.findings = d.Scan(text, s.findings)
	}
	sortFindings(s.findings)
}

// locate places a finding of the joined text in its string: offsets
// become relative to the string's decoded value. A finding that starts on
// a separator belongs to no string.
func (s *scratch) locate(f Finding) (Located, bool) {
	i := sort.Search(len(s.strs), func(i int) bool { return s.strs[i].textEnd > f.Start })
	if i == len(s.strs) || f.Start < s.strs[i].textStart {
		return Located{}, false
	}
	js := &s.strs[i]
	f.End = min(f.End, js.textEnd) - js.textStart
	f.Start -= js.textStart
	return Located{Finding: f, str: i}, true
}

// redactPayload rewrites the strings of payload that hold findings keep
// selects (and the sensitive ones), replacing each finding's span with
// "[<word>:<type>]".
func redactPayload(payload []byte, s *scratch, fs []Located, keep func(*Located) bool, word string) []byte {
	out := make([]byte, 0, len(payload))
	last := 0
	fi := 0
	for i := range s.strs {
		js := &s.strs[i]
		var spans []Located
		for ; fi < len(fs) && fs[fi].str == i; fi++ { // fs are in string order
			if keep(&fs[fi]) {
				spans = append(spans, fs[fi])
			}
		}
		if !js.sensitive && len(spans) == 0 {
			continue
		}
		var repl string
		if js.sensitive {
			repl = "[" + word + ":secret]"
		} else {
			val := string(s.text[js.textStart:js.textEnd])
			var b strings.Builder
			at := 0
			for _, sp := range spans {
				if sp.Start < at {
					if sp.End > at {
						at = sp.End // overlaps the previous one: extend it
					}
					continue
				}
				b.WriteString(val[at:sp.Start])
				b.WriteString("[" + word + ":" + sp.Type + "]")
				at = sp.End
			}
			b.WriteString(val[at:])
			repl = b.String()
		}
		out = append(out, payload[last:js.rawStart]...)
		out = append(out, jsonrpc.Quote(repl)...)
		last = js.rawEnd
	}
	return append(out, payload[last:]...)
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// pointer renders path parts as a JSON Pointer (RFC 6901).
func pointer(parts []string) string {
	if len(parts) == 0 {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(pointerEscaper.Replace(p))
	}
	return b.String()
}

// pathOf returns the JSON Pointer of the n-th string value of payload
// (walking it again: only payloads with findings need paths).
func pathOf(payload []byte, n int) string {
	var parts []string
	var found string
	count := 0
	var rec func(b []byte) bool
	rec = func(b []byte) bool {
		v := bytes.TrimSpace(b)
		if len(v) == 0 {
			return true
		}
		switch v[0] {
		case '"':
			if count == n {
				found = pointer(parts)
				return false
			}
			count++
		case '{':
			cont := true
			_ = jsonrpc.Members(v, func(m jsonrpc.Member) bool {
				parts = append(parts, memberName(m))
				cont = rec(v[m.Start:m.End])
				parts = parts[:len(parts)-1]
				return cont
			})
			return cont
		case '[':
			cont := true
			k := 0
			_ = jsonrpc.Elements(v, func(a, z int) bool {
				parts = append(parts, strconv.Itoa(k))
				k++
				cont = rec(v[a:z])
				parts = parts[:len(parts)-1]
				return cont
			})
			return cont
		}
		return true
	}
	rec(payload)
	return found
}

func memberName(m jsonrpc.Member) string {
	if !m.Escaped {
		return string(m.Name)
	}
	name, _ := jsonrpc.String([]byte(`"` + string(m.Name) + `"`))
	return name
}

// collectStrings appends the decoded string values of payload to s.text
// (each followed by '\n') and their positions to s.strs, in one pass. It
// reports false when payload is not valid JSON. sensitive, when set, names
// the members whose values are masked whole (numbers and booleans
// included).
func collectStrings(payload []byte, s *scratch, sensitive func(string) bool) bool {
	s.payload, s.sensitive = payload, sensitive
	err := jsonrpc.WalkValues(payload, s)
	s.payload, s.sensitive = nil, nil
	return err == nil
}

// Mark implements jsonrpc.ValueVisitor: sensitive field names.
func (s *scratch) Mark(name []byte, escaped bool) bool {
	if s.sensitive == nil {
		return false
	}
	n := string(name)
	if escaped {
		n, _ = jsonrpc.String([]byte(`"` + n + `"`))
	}
	return s.sensitive(n)
}

// String implements jsonrpc.ValueVisitor: a string value joins the text.
func (s *scratch) String(start, end int, escaped, marked bool) {
	at := len(s.text)
	if !escaped {
		s.text = append(s.text, s.payload[start+1:end-1]...) // no escapes: as is
	} else {
		val, _ := jsonrpc.String(s.payload[start:end]) // validated by the walk
		s.text = append(s.text, val...)
	}
	s.strs = append(s.strs, jsonString{rawStart: start, rawEnd: end, textStart: at, textEnd: len(s.text), sensitive: marked})
	s.text = append(s.text, '\n')
	s.anySensitive = s.anySensitive || marked
}

// Scalar implements jsonrpc.ValueVisitor: a number or boolean under a
// sensitive name is masked like a string.
func (s *scratch) Scalar(start, end int) {
	at := len(s.text)
	s.text = append(s.text, s.payload[start:end]...)
	s.strs = append(s.strs, jsonString{rawStart: start, rawEnd: end, textStart: at, textEnd: len(s.text), sensitive: true})
	s.text = append(s.text, '\n')
	s.anySensitive = true
}

// unsafeString views b as a string without copying: the detectors do not
// keep the text, and b is not written while they run.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

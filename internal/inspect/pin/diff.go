package pin

import (
	"fmt"
	"regexp"
	"slices"
)

// Class says how worrying a change is. Classes are ordered: a change set
// is as worrying as its worst change ([Classify]).
type Class int8

// Change classes.
const (
	// Cosmetic changes only what people read in a UI (titles), or spells a
	// value the way it already meant (an annotation set to its default).
	Cosmetic Class = iota + 1
	// Review changes behaviour or shape in a way that is not a known attack
	// pattern (a parameter removed, a type changed, an enum edited): an
	// operator should still read it before approving.
	Review
	// Suspicious matches how rug pulls are done: text the model reads was
	// rewritten (a description anywhere), the agent is asked for new data
	// (a new input parameter, a newly required one), or the tool's declared
	// risk moved (readOnlyHint, destructiveHint, openWorldHint). A hint moving
	// the safe way (now "read-only") is suspicious too: a policy that
	// trusts hints would start waving the tool through.
	Suspicious
)

func (c Class) String() string {
	switch c {
	case Cosmetic:
		return "cosmetic"
	case Review:
		return "review"
	case Suspicious:
		return "suspicious"
	}
	return fmt.Sprintf("class(%d)", int8(c))
}

// MarshalText writes the class as its name.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Kind names what sort of change a Change is.
type Kind string

// Change kinds.
const (
	KindName            Kind = "name"             // the tool's name
	KindTitle           Kind = "title"            // a title (tool, annotation or schema)
	KindDescription     Kind = "description"      // a description (tool or schema); Lines holds the line diff
	KindPropertyAdded   Kind = "property-added"   // a schema property (parameter) appeared
	KindPropertyRemoved Kind = "property-removed" // a schema property went away
	KindType            Kind = "type"             // a schema's "type" changed
	KindRequiredAdded   Kind = "required-added"   // a property became required
	KindRequiredRemoved Kind = "required-removed" // a property is no longer required
	KindAnnotation      Kind = "annotation"       // an annotations member
	KindSchema          Kind = "schema"           // any other schema keyword (enum, default, items, ...)
	KindField           Kind = "field"            // a top-level member this package has no special reading for
	KindUnreadable      Kind = "unreadable"       // a Pinned whose Canonical does not parse
)

// Change is one field-level difference between two definitions.
type Change struct {
	// Path locates the changed value: "description",
	// "inputSchema.properties.path.type", "annotations.readOnlyHint".
	// Property names that are not plain identifiers are quoted:
	// `inputSchema.properties["a.b"]`.
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// Old and New are the values as canonical JSON; "" when absent.
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
	Class Class  `json:"class"`
	Why   string `json:"why,omitempty"` // why the class, when not obvious from Kind
	// Lines is a line diff of the old and new text, for descriptions.
	Lines []Line `json:"lines,omitempty"`
}

// Classify returns the worst class among changes, 0 when there are none.
func Classify(changes []Change) Class {
	var worst Class
	for _, c := range changes {
		worst = max(worst, c.Class)
	}
	return worst
}

// topOrder is the order top-level members are reported in; members not
// listed follow, sorted.
var topOrder = []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"}

// Diff lists the differences between an old and a new definition, most
// relevant members first (name, title, description, inputSchema,
// outputSchema, annotations, then the rest by key), and each member's
// changes in key order. Equal definitions give nil.
func Diff(old, new Pinned) []Change {
	if old.Hash != "" && old.Hash == new.Hash {
		return nil
	}
	o, errO := parseObject(old.Canonical)
	n, errN := parseObject(new.Canonical)
	if errO != nil || errN != nil {
		// Not from Fingerprint (a damaged store?): say so rather than guess.
		return []Change{{Kind: KindUnreadable, Class: Suspicious, Why: "a definition could not be read; compare the stored texts by hand"}}
	}
	var d differ
	for _, k := range memberOrder(o, n) {
		ov, oOK := o.get(k)
		nv, nOK := n.get(k)
		if oOK == nOK && equal(ov, nv) {
			continue
		}
		switch k {
		case "name":
			d.value(k, KindName, ov, oOK, nv, nOK, Review, "the tool was renamed")
		case "title":
			d.value(k, KindTitle, ov, oOK, nv, nOK, Cosmetic, "")
		case "description":
			d.text(k, ov, oOK, nv, nOK)
		case "inputSchema", "outputSchema":
			os, ok1 := ov.(object)
			ns, ok2 := nv.(object)
			if ok1 && ok2 {
				d.schema(k, os, ns, k == "inputSchema")
			} else {
				d.value(k, KindSchema, ov, oOK, nv, nOK, Review, "")
			}
		case "annotations":
			d.annotations(ov, oOK, nv, nOK)
		default:
			d.value(k, KindField, ov, oOK, nv, nOK, Review, "")
		}
	}
	return d.changes
}

func parseObject(raw []byte) (object, error) {
	v, err := parse(raw)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(object)
	if !ok {
		return nil, ErrNotObject
	}
	return obj, nil
}

// memberOrder lists the keys of o and n in reporting order.
func memberOrder(o, n object) []string {
	var rest []string
	for _, obj := range []object{o, n} {
		for _, m := range obj {
			if !slices.Contains(topOrder, m.key) && !slices.Contains(rest, m.key) {
				rest = append(rest, m.key)
			}
		}
	}
	slices.Sort(rest)
	return append(slices.Clone(topOrder), rest...)
}

type differ struct{ changes []Change }

func (d *differ) add(c Change) { d.changes = append(d.changes, c) }

// value records a change of a whole value.
func (d *differ) value(path string, kind Kind, ov any, oOK bool, nv any, nOK bool, class Class, why string) {
	d.add(Change{Path: path, Kind: kind, Old: jsonText(ov, oOK), New: jsonText(nv, nOK), Class: class, Why: why})
}

// text records a changed description, with its line diff.
func (d *differ) text(path string, ov any, oOK bool, nv any, nOK bool) {
	c := Change{Path: path, Kind: KindDescription, Old: jsonText(ov, oOK), New: jsonText(nv, nOK), Class: Suspicious,
		Why: "text the model reads was rewritten"}
	os, ok1 := ov.(string)
	ns, ok2 := nv.(string)
	if (ok1 || !oOK) && (ok2 || !nOK) {
		c.Lines = diffLines(os, ns)
	}
	d.add(c)
}

// schemaMaps are JSON Schema keywords whose value maps names to schemas.
var schemaMaps = []string{"$defs", "definitions", "patternProperties", "dependentSchemas"}

// subschemas are keywords whose value is one schema.
var subschemas = []string{"items", "additionalProperties", "additionalItems", "contains", "not", "if", "then", "else",
	"propertyNames", "unevaluatedItems", "unevaluatedProperties"}

// schemaLists are keywords whose value is a list of schemas.
var schemaLists = []string{"anyOf", "oneOf", "allOf", "prefixItems"}

// schema compares two JSON Schemas. input says whether they describe the
// tool's arguments, where new and newly required parameters are the
// suspicious kind: they ask the agent for data it did not send before.
func (d *differ) schema(path string, o, n object, input bool) {
	for _, k := range unionKeys(o, n) {
		ov, oOK := o.get(k)
		nv, nOK := n.get(k)
		if oOK == nOK && equal(ov, nv) {
			continue
		}
		p := path + "." + k
		os, oObj := ov.(object)
		ns, nObj := nv.(object)
		switch {
		case k == "properties" && oObj && nObj:
			d.properties(p, os, ns, input)
		case k == "properties" && (oObj || nObj) && (!oOK || !nOK):
			// The whole properties keyword appeared or went away: report
			// each property, so an added one is not hidden in a blob.
			d.properties(p, os, ns, input)
		case k == "required":
			d.required(p, ov, oOK, nv, nOK, input)
		case k == "type":
			d.value(p, KindType, ov, oOK, nv, nOK, Review, "")
		case k == "description":
			d.text(p, ov, oOK, nv, nOK)
		case k == "title":
			d.value(p, KindTitle, ov, oOK, nv, nOK, Cosmetic, "")
		case slices.Contains(subschemas, k) && oObj && nObj:
			d.schema(p, os, ns, input)
		case slices.Contains(schemaMaps, k) && oObj && nObj:
			d.schemaMap(p, os, ns, input)
		case slices.Contains(schemaLists, k):
			oa, ok1 := ov.([]any)
			na, ok2 := nv.([]any)
			if ok1 && ok2 && len(oa) == len(na) && d.schemaList(p, oa, na, input) {
				break
			}
			d.value(p, KindSchema, ov, oOK, nv, nOK, Review, "")
		default:
			d.value(p, KindSchema, ov, oOK, nv, nOK, Review, "")
		}
	}
}

// properties compares two "properties" maps; either may be nil (absent).
func (d *differ) properties(path string, o, n object, input bool) {
	for _, name := range unionKeys(o, n) {
		ov, oOK := o.get(name)
		nv, nOK := n.get(name)
		p := path + pathElem(name)
		switch {
		case !oOK:
			class, why := Review, "a new field in the output"
			if input {
				class, why = Suspicious, "a new parameter: the agent will be asked for data it did not send before"
			}
			d.add(Change{Path: p, Kind: KindPropertyAdded, New: jsonText(nv, true), Class: class, Why: why})
		case !nOK:
			d.add(Change{Path: p, Kind: KindPropertyRemoved, Old: jsonText(ov, true), Class: Review})
		case equal(ov, nv):
		default:
			os, ok1 := ov.(object)
			ns, ok2 := nv.(object)
			if ok1 && ok2 {
				d.schema(p, os, ns, input)
			} else {
				d.value(p, KindSchema, ov, true, nv, true, Review, "")
			}
		}
	}
}

// schemaMap compares two maps of named schemas ($defs and the like).
func (d *differ) schemaMap(path string, o, n object, input bool) {
	for _, name := range unionKeys(o, n) {
		ov, oOK := o.get(name)
		nv, nOK := n.get(name)
		if oOK == nOK && equal(ov, nv) {
			continue
		}
		p := path + pathElem(name)
		os, ok1 := ov.(object)
		ns, ok2 := nv.(object)
		if ok1 && ok2 {
			d.schema(p, os, ns, input)
			continue
		}
		d.value(p, KindSchema, ov, oOK, nv, nOK, Review, "")
	}
}

// schemaList compares lists of schemas of the same length element by
// element; it reports false, having recorded nothing, when an element is
// not a schema.
func (d *differ) schemaList(path string, o, n []any, input bool) bool {
	for i := range o {
		_, ok1 := o[i].(object)
		_, ok2 := n[i].(object)
		if !ok1 || !ok2 {
			return false
		}
	}
	for i := range o {
		if !equal(o[i], n[i]) {
			d.schema(fmt.Sprintf("%s[%d]", path, i), o[i].(object), n[i].(object), input)
		}
	}
	return true
}

// required compares two "required" lists as sets of names.
func (d *differ) required(path string, ov any, oOK bool, nv any, nOK bool, input bool) {
	os, ok1 := stringList(ov, oOK)
	ns, ok2 := stringList(nv, nOK)
	if !ok1 || !ok2 {
		d.value(path, KindSchema, ov, oOK, nv, nOK, Review, "")
		return
	}
	before := len(d.changes)
	for _, name := range ns {
		if !slices.Contains(os, name) {
			class, why := Review, ""
			if input {
				class, why = Suspicious, "the agent must now send this parameter"
			}
			d.add(Change{Path: path, Kind: KindRequiredAdded, New: jsonText(name, true), Class: class, Why: why})
		}
	}
	for _, name := range os {
		if !slices.Contains(ns, name) {
			d.add(Change{Path: path, Kind: KindRequiredRemoved, Old: jsonText(name, true), Class: Review})
		}
	}
	if len(d.changes) == before {
		// Same names, another order or repeated: harmless.
		d.value(path, KindSchema, ov, oOK, nv, nOK, Cosmetic, "same names")
	}
}

// stringList reads a list of strings; an absent list is empty.
func stringList(v any, ok bool) ([]string, bool) {
	if !ok {
		return nil, true
	}
	arr, isArr := v.([]any)
	if !isArr {
		return nil, false
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, isStr := e.(string)
		if !isStr {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// hint describes one boolean annotation: its default (MCP's ToolAnnotations)
// and what each direction of change means.
type hint struct {
	def                   bool
	toTrue, toFalse       Class
	whyToTrue, whyToFalse string
}

var hints = map[string]hint{
	"readOnlyHint": {def: false,
		toTrue: Suspicious, whyToTrue: "now claims to be read-only: policies that trust the hint would relax",
		toFalse: Suspicious, whyToFalse: "no longer read-only: it may now modify its environment"},
	"destructiveHint": {def: true,
		toTrue: Suspicious, whyToTrue: "may now perform destructive updates",
		toFalse: Suspicious, whyToFalse: "now claims to be non-destructive: policies that trust the hint would relax"},
	"openWorldHint": {def: true,
		toTrue: Suspicious, whyToTrue: "now reaches systems outside its own domain",
		toFalse: Review, whyToFalse: "now claims a closed world"},
	"idempotentHint": {def: false,
		toTrue: Review, whyToTrue: "now claims repeated calls have no further effect",
		toFalse: Review, whyToFalse: "repeated calls may now have further effects"},
}

// annotations compares the annotations members.
func (d *differ) annotations(ov any, oOK bool, nv any, nOK bool) {
	o, ok1 := ov.(object)
	n, ok2 := nv.(object)
	if (oOK && !ok1) || (nOK && !ok2) {
		d.value("annotations", KindAnnotation, ov, oOK, nv, nOK, Review, "")
		return
	}
	for _, k := range unionKeys(o, n) {
		av, aOK := o.get(k)
		bv, bOK := n.get(k)
		if aOK == bOK && equal(av, bv) {
			continue
		}
		p := "annotations" + pathElem(k)
		if k == "title" {
			d.value(p, KindAnnotation, av, aOK, bv, bOK, Cosmetic, "")
			continue
		}
		h, known := hints[k]
		a, okA := boolOr(av, aOK, h.def)
		b, okB := boolOr(bv, bOK, h.def)
		switch {
		case !known || !okA || !okB:
			d.value(p, KindAnnotation, av, aOK, bv, bOK, Review, "")
		case a == b:
			d.value(p, KindAnnotation, av, aOK, bv, bOK, Cosmetic, "same meaning: absent means "+fmt.Sprint(h.def))
		case b:
			d.value(p, KindAnnotation, av, aOK, bv, bOK, h.toTrue, h.whyToTrue)
		default:
			d.value(p, KindAnnotation, av, aOK, bv, bOK, h.toFalse, h.whyToFalse)
		}
	}
}

// boolOr reads a boolean annotation, def when absent; ok is false for a
// value that is not a boolean.
func boolOr(v any, present, def bool) (val, ok bool) {
	if !present {
		return def, true
	}
	b, ok := v.(bool)
	return b, ok
}

func unionKeys(o, n object) []string {
	keys := make([]string, 0, len(o)+len(n))
	for _, m := range o {
		keys = append(keys, m.key)
	}
	for _, m := range n {
		keys = append(keys, m.key)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func equal(a, b any) bool {
	return string(appendCanonical(nil, a)) == string(appendCanonical(nil, b))
}

func jsonText(v any, present bool) string {
	if !present {
		return ""
	}
	return string(appendCanonical(nil, v))
}

var plainName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_\-]*$`)

// pathElem writes a member name as a path element.
func pathElem(name string) string {
	if plainName.MatchString(name) {
		return "." + name
	}
	return "[" + string(appendString(nil, name)) + "]"
}

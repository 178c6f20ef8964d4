package guardrail

import (
	"encoding/json"
	"strings"
	"testing"
)

// The provider answers are untrusted input: these targets check that the
// parsers never panic and that what they return is well formed.

func FuzzParseWebhookResponse(f *testing.F) {
	f.Add([]byte(`{"action":"allow"}`))
	f.Add([]byte(`{"action":"deny","reason":"r","findings":[{"category":"pii","type":"email","start":0,"end":3,"confidence":"high"}]}`))
	f.Add([]byte(`{"action":"mutate","json":{"a":[1,"b"]}}`))
	f.Add([]byte(`{"action":"mutate","text":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseWebhookResponse(b)
		if err != nil {
			return
		}
		if v.Action != Allow && v.Action != Deny && v.Action != Mutate {
			t.Fatalf("action %q accepted", v.Action)
		}
		if v.JSON != nil && !json.Valid(v.JSON) {
			t.Fatalf("invalid mutate JSON %q accepted", v.JSON)
		}
	})
}

func FuzzParseDLPInspect(f *testing.F) {
	f.Add([]byte(`{"result":{"findings":[{"infoType":{"name":"EMAIL_ADDRESS"},"likelihood":"LIKELY","location":{"byteRange":{"start":"0","end":"10"}}}]}}`))
	f.Add([]byte(`{"result":{"findings":[{"infoType":{"name":"X"},"likelihood":"VERY_LIKELY","location":{"byteRange":{"end":4}}}]}}`))
	f.Add([]byte(`{"result":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, types, err := parseDLPInspect(b, "POSSIBLE")
		if err != nil {
			return
		}
		for _, fd := range fs {
			if fd.Start < 0 || fd.End < fd.Start {
				t.Fatalf("bad finding %+v", fd)
			}
		}
		if len(types) > 8 {
			t.Fatalf("%d types", len(types))
		}
		_, _ = parseDLPDeidentify(b)
	})
}

func FuzzParseNightfall(f *testing.F) {
	f.Add([]byte(`{"findings":[[{"finding":"s","detector":{"name":"API key"},"confidence":"LIKELY","location":{"byteRange":{"start":0,"end":10}}}]],"redactedPayload":["x"]}`))
	f.Add([]byte(`{"findings":[[]]}`))
	f.Add([]byte(`{"findings":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := parseNightfall(b, "LIKELY")
		if err != nil {
			return
		}
		for _, fd := range res.findings {
			if fd.Start < 0 || fd.End < fd.Start {
				t.Fatalf("bad finding %+v", fd)
			}
		}
		for _, d := range res.detectors {
			if strings.ContainsAny(d, "\n\r\"<>") {
				t.Fatalf("detector name %q not cleaned", d)
			}
		}
	})
}

func FuzzTextOf(f *testing.F) {
	f.Add([]byte(`{"a":{"b":["x",{"c":"y"}],"d":1,"e":"z"}}`))
	f.Add([]byte(`["a",["b"],{"k":"v"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := TextOf(b)
		if json.Valid(b) {
			// Every string value is in the text; keys are not required.
			var v any
			if json.Unmarshal(b, &v) == nil {
				walkStrings(v, func(x string) {
					if !strings.Contains(s, x) {
						t.Fatalf("TextOf(%s) = %q misses %q", b, s, x)
					}
				})
			}
		}
	})
}

func walkStrings(v any, fn func(string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case []any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	case map[string]any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	}
}

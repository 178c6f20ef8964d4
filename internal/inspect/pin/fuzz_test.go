package pin

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzFingerprint: Fingerprint never panics; what it accepts has a
// canonical form that is valid JSON and a fixed point (fingerprinting it
// again gives the same text and hash); the same definition written with
// keys in another order, other whitespace or other string escapes (as
// encoding/json writes it, with HTML escaping) has the same hash; Diff of
// a definition with itself is empty and Diff and Render of it against
// another do not panic.
func FuzzFingerprint(f *testing.F) {
	for _, s := range []string{
		readFile,
		`{"name":"t"}`,
		`{"name":"t","_meta":{"a":1},"icons":[]}`,
		`{"name":"t","description":"\u00e9\ud83d\ude00\u2028<>&\"\\\/\b\f\n\r\t\u0000"}`,
		`{"name":"t","x":[1.0,-0,1e-7,1E+400,null,true,false,{},[]]}`,
		`{"name":"t","inputSchema":{"anyOf":[{"type":"string"}],"$defs":{"a.b":{}},"required":["a","a"]}}`,
		`{"name":"t","d":1,"\u0064":2}`,
		`{"name":"t"} x`,
		"{\"name\":\"\xff\"}",
		`[1,2]`,
	} {
		f.Add([]byte(s))
	}
	other := mustFingerprint(f, readFile)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Fingerprint(data)
		if err != nil {
			return
		}
		if !json.Valid(p.Canonical) {
			t.Fatalf("canonical form is not valid JSON: %s", p.Canonical)
		}
		again, err := Fingerprint(p.Canonical)
		if err != nil {
			t.Fatalf("fingerprinting the canonical form %s: %v", p.Canonical, err)
		}
		if again.Hash != p.Hash || !bytes.Equal(again.Canonical, p.Canonical) || again.Name != p.Name {
			t.Fatalf("canonical form is not a fixed point:\n%s\n%s", p.Canonical, again.Canonical)
		}

		v, err := parse(p.Canonical)
		if err != nil {
			t.Fatal(err)
		}
		scrambled := appendScrambled(nil, v, 0)
		if s, err := Fingerprint(scrambled); err != nil || s.Hash != p.Hash {
			t.Fatalf("reordered, respaced %s: hash differs (%v)\n%s\n%s", scrambled, err, s.Canonical, p.Canonical)
		}

		// encoding/json's own spelling: sorted keys, HTML-escaped strings.
		var generic any
		dec := json.NewDecoder(bytes.NewReader(p.Canonical))
		dec.UseNumber()
		if err := dec.Decode(&generic); err != nil {
			t.Fatalf("encoding/json cannot read the canonical form: %v", err)
		}
		stdlib, err := json.Marshal(generic)
		if err != nil {
			return // a number encoding/json refuses to write (json.Number checks)
		}
		if s, err := Fingerprint(stdlib); err != nil || s.Hash != p.Hash {
			t.Fatalf("encoding/json's spelling %s: hash differs (%v)", stdlib, err)
		}

		if d := Diff(p, again); d != nil {
			t.Fatalf("Diff with itself: %v", d)
		}
		_ = Render(Diff(other, p))
		_ = Render(Diff(p, other))
	})
}

// appendScrambled writes v as JSON with object keys in reverse order,
// whitespace around every token and every non-ASCII or escapable string
// character written as a \u escape: another spelling of the same value.
func appendScrambled(b []byte, v any, depth int) []byte {
	ws := []string{" ", "\n", "\t", "\r\n  "}[depth%4]
	switch v := v.(type) {
	case object:
		b = append(b, '{')
		for i := len(v) - 1; i >= 0; i-- {
			b = append(b, ws...)
			b = appendEscaped(b, v[i].key)
			b = append(b, ws...)
			b = append(b, ':')
			b = appendScrambled(b, v[i].val, depth+1)
			if i > 0 {
				b = append(b, ',')
			}
		}
		return append(b, ws+"}"...)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendScrambled(b, e, depth+1)
		}
		return append(b, ws+"]"...)
	case string:
		return append(append(b, ws...), appendEscaped(nil, v)...)
	}
	return append(append(b, ws...), appendCanonical(nil, v)...)
}

func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b = append(b, byte(r))
		case r > 0xffff:
			r -= 0x10000
			hi, lo := 0xd800+(r>>10), 0xdc00+(r&0x3ff)
			b = append(b, '\\', 'u', hex[hi>>12], hex[hi>>8&0xf], hex[hi>>4&0xf], hex[hi&0xf])
			b = append(b, '\\', 'u', hex[lo>>12], hex[lo>>8&0xf], hex[lo>>4&0xf], hex[lo&0xf])
		default:
			b = append(b, '\\', 'u', hex[r>>12], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		}
	}
	return append(b, '"')
}

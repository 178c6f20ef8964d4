package jsonrpc

import (
	"bytes"
	"testing"
)

// recorder collects what WalkValues reports; it marks members named
// "secret".
type recorder struct {
	b       []byte
	strings []string
	marked  []string
	badSpan bool // a reported span did not decode as a string
}

func (r *recorder) Mark(name []byte, _ bool) bool { return string(name) == "secret" }
func (r *recorder) String(start, end int, _, marked bool) {
	s, ok := String(r.b[start:end])
	r.badSpan = r.badSpan || !ok
	r.strings = append(r.strings, s)
	if marked {
		r.marked = append(r.marked, s)
	}
}
func (r *recorder) Scalar(start, end int) { r.marked = append(r.marked, string(r.b[start:end])) }

func TestWalkValues(t *testing.T) {
	for _, c := range []struct {
		in              string
		strings, marked []string
		bad             bool
	}{
		{in: `"a"`, strings: []string{"a"}},
		{in: ` {"k":"v","n":1,"a":["x",{"y":"z"}],"e":{},"l":[]} `, strings: []string{"v", "x", "z"}},
		{in: `{"secret":{"p":"s","n":12,"t":true,"z":null,"a":["q"]},"open":"o"}`, strings: []string{"s", "q", "o"}, marked: []string{"s", "12", "true", "q"}},
		{in: `{"secret":"x","secret":7}`, strings: []string{"x"}, marked: []string{"x", "7"}},
		{in: `[1,2,"\u00e9\n"]`, strings: []string{"é\n"}},
		{in: `{"a":1,}`, bad: true},
		{in: `{"a" 1}`, bad: true},
		{in: `[1 2]`, bad: true},
		{in: `"a" "b"`, bad: true},
		{in: `{"a":[}`, bad: true},
		{in: ``, bad: true},
	} {
		r := &recorder{b: []byte(c.in)}
		err := WalkValues(r.b, r)
		if (err != nil) != c.bad {
			t.Errorf("%s: err = %v", c.in, err)
			continue
		}
		if c.bad {
			continue
		}
		if !equal(r.strings, c.strings) || !equal(r.marked, c.marked) {
			t.Errorf("%s: strings %q marked %q, want %q %q", c.in, r.strings, r.marked, c.strings, c.marked)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzWalkValues: WalkValues accepts exactly what Valid accepts, and every
// string span it reports is a JSON string.
func FuzzWalkValues(f *testing.F) {
	for _, s := range []string{`{"a":["b",1,{"secret":[true,"c"]}]}`, `"x"`, `[]`, `{"a":}`, `[1,`, `{"\u0061":"\"q\""}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &recorder{b: b}
		err := WalkValues(b, r)
		if (err == nil) != Valid(b) {
			t.Fatalf("WalkValues err %v, Valid %v", err, Valid(b))
		}
		if err == nil && (r.badSpan || bytes.Count(b, []byte(`"`)) < 2*len(r.strings)) {
			t.Fatalf("%d strings reported in %q, a span that is not a string: %v", len(r.strings), b, r.badSpan)
		}
	})
}

package jsonrpc

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		kind    Kind
		method  string
		id      string
		wantErr string
	}{
		{"request", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`, KindRequest, "tools/call", "1", ""},
		{"string_id", ` {"id":"a-1","method":"ping","jsonrpc":"2.0"} `, KindRequest, "ping", `"a-1"`, ""},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, KindNotification, "notifications/initialized", "", ""},
		{"result", `{"jsonrpc":"2.0","id":7,"result":{}}`, KindResult, "", "7", ""},
		{"error", `{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"m"}}`, KindError, "", "7", ""},
		{"error_null_id", `{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"m"}}`, KindError, "", "null", ""},
		{"escaped_method", `{"jsonrpc":"2.0","id":1,"method":"tools\/call"}`, KindRequest, "tools/call", "1", ""},
		{"unknown_members_kept", `{"jsonrpc":"2.0","id":1,"method":"x","extra":{"a":[1,2]}}`, KindRequest, "x", "1", ""},
		{"bad_version", `{"jsonrpc":"1.0","id":1,"method":"x"}`, 0, "", "", "2.0"},
		{"missing_version", `{"id":1,"method":"x"}`, 0, "", "", "2.0"},
		{"float_id", `{"jsonrpc":"2.0","id":1.5,"method":"x"}`, 0, "", "", "id must"},
		{"null_id_request", `{"jsonrpc":"2.0","id":null,"method":"x"}`, 0, "", "", "id must"},
		{"object_id", `{"jsonrpc":"2.0","id":{},"method":"x"}`, 0, "", "", "id must"},
		{"number_method", `{"jsonrpc":"2.0","id":1,"method":5}`, 0, "", "", "method"},
		{"scalar_params", `{"jsonrpc":"2.0","id":1,"method":"x","params":3}`, 0, "", "", "params"},
		{"both", `{"jsonrpc":"2.0","id":1,"result":{},"error":{}}`, 0, "", "", "both"},
		{"no_shape", `{"jsonrpc":"2.0","id":1}`, 0, "", "", "not a request"},
		{"result_without_id", `{"jsonrpc":"2.0","result":{}}`, 0, "", "", "not a request"},
		{"array", `[1]`, 0, "", "", "not a JSON object"},
		{"truncated", `{"jsonrpc":"2.0","id":1,"method":"x"`, 0, "", "", "invalid JSON"},
		{"trailing", `{"jsonrpc":"2.0","id":1,"method":"x"} x`, 0, "", "", "trailing"},

		{"empty", ``, 0, "", "", "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if m.Kind != tt.kind || m.Method != tt.method || string(m.ID) != tt.id {
				t.Fatalf("got kind=%v method=%q id=%s", m.Kind, m.Method, m.ID)
			}
		})
	}
}

func TestWithIDKeepsEverythingElse(t *testing.T) {
	in := `{"jsonrpc":"2.0", "id" : "abc" ,"method":"tools/call","params":{"name":"t","_meta":{"x":1}},"zz":true}`
	m, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	got := string(m.WithID([]byte("42")))
	want := `{"jsonrpc":"2.0", "id" : 42 ,"method":"tools/call","params":{"name":"t","_meta":{"x":1}},"zz":true}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestSetDelete(t *testing.T) {
	tests := []struct {
		name, obj, key, val, set, del string
	}{
		{"replace", `{"a":1,"b":2}`, "a", `"x"`, `{"a":"x","b":2}`, `{"b":2}`},
		{"replace_last", `{"a":1,"b":2}`, "b", `[]`, `{"a":1,"b":[]}`, `{"a":1}`},
		{"append", `{"a":1}`, "c", `3`, `{"a":1,"c":3}`, `{"a":1}`},
		{"empty", `{ }`, "c", `3`, `{"c":3 }`, `{ }`},
		{"only", `{"c":1}`, "c", `2`, `{"c":2}`, `{}`},
		{"middle", `{"a":1, "c":{"d":1}, "e":5}`, "c", `0`, `{"a":1, "c":0, "e":5}`, `{"a":1, "e":5}`},
		{"escaped_name", `{"n\u0061me":"x"}`, "name", `"y"`, `{"n\u0061me":"y"}`, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Set([]byte(tt.obj), tt.key, []byte(tt.val))
			if err != nil || string(got) != tt.set {
				t.Fatalf("Set = %s, %v; want %s", got, err, tt.set)
			}
			got, err = Delete([]byte(tt.obj), tt.key)
			if err != nil || string(got) != tt.del {
				t.Fatalf("Delete = %s, %v; want %s", got, err, tt.del)
			}
			if !json.Valid(got) {
				t.Fatalf("Delete produced invalid JSON %s", got)
			}
		})
	}
}

func TestGetAndString(t *testing.T) {
	obj := []byte(`{"name":"a\"b","arguments":{"q":[1,{"x":null}]},"n":-1.5e3}`)
	v, ok := Get(obj, "arguments")
	if !ok || string(v) != `{"q":[1,{"x":null}]}` {
		t.Fatalf("Get arguments = %s %v", v, ok)
	}
	v, _ = Get(obj, "name")
	if s, ok := String(v); !ok || s != `a"b` {
		t.Fatalf("String = %q %v", s, ok)
	}
	if _, ok := Get(obj, "missing"); ok {
		t.Fatal("Get missing found something")
	}
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`{}`, `[]`, `""`, `0`, `-0`, `01`, `1.`, `.5`, `1e`, `1e+5`, `"\u00e9"`, `"\ud800"`, `"\x"`,
		`[1,]`, `{"a":1,}`, `{"a" 1}`, `[[[[]]]]`, `{"a":[{"b":{}}]}`, `tru`, `nul`, "\"a\tb\"", `  true  `,
	} {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", s, got, want)
		}
	}
}

func TestDepthLimit(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	if Valid([]byte(deep)) {
		t.Fatal("accepted nesting beyond MaxDepth")
	}
	ok := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	if !Valid([]byte(ok)) {
		t.Fatal("rejected modest nesting")
	}
}

func TestErrorResponse(t *testing.T) {
	e := NewError(CodeInvalidParams, `bad "name"`).WithData(map[string]string{"k": "v"})
	got := string(ErrorResponse([]byte(`"x"`), e))
	want := `{"jsonrpc":"2.0","id":"x","error":{"code":-32602,"message":"bad \"name\"","data":{"k":"v"}}}`
	if got != want {
		t.Fatalf("got %s", got)
	}
	if m, err := Parse([]byte(got)); err != nil || m.Kind != KindError {
		t.Fatalf("round trip: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}`,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}`,
		`{"jsonrpc":"2.0","id":"s","result":{"content":[{"type":"text","text":"hi"}]}}`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
		`{"n\u0061me":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if Valid(b) != json.Valid(b) {
			t.Fatalf("Valid disagrees with encoding/json on %q", b)
		}
		m, err := Parse(b)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("Parse accepted invalid JSON %q", b)
		}
		if m.ID != nil {
			out := m.WithID([]byte(`"gw-1"`))
			m2, err := Parse(out)
			if err != nil || string(m2.ID) != `"gw-1"` || m2.Kind != m.Kind || m2.Method != m.Method {
				t.Fatalf("WithID broke the message: %q -> %q (%v)", b, out, err)
			}
		}
		if m.Params != nil && m.Params[0] == '{' {
			out, err := Set(m.Params, "name", []byte(`"z"`))
			if err != nil || !json.Valid(out) {
				t.Fatalf("Set produced invalid JSON from %q: %q %v", m.Params, out, err)
			}
			if v, ok := Get(out, "name"); !ok || string(v) != `"z"` {
				t.Fatalf("Set then Get = %q %v", v, ok)
			}
			out, err = Delete(m.Params, "name")
			if err != nil || !json.Valid(out) {
				t.Fatalf("Delete produced invalid JSON from %q: %q %v", m.Params, out, err)
			}
		}
	})
}

func BenchmarkParseToolsCall(b *testing.B) {
	msg := []byte(`{"jsonrpc":"2.0","id":12345,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello world, this is a typical short argument"},"_meta":{"progressToken":"abc"}}}`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var m Message
	for b.Loop() {
		if err := m.parse(msg); err != nil {
			b.Fatal(err)
		}
		_ = m.WithID([]byte("99"))
	}
}

func TestRewrite(t *testing.T) {
	tests := []struct{ in, id, params, want string }{
		{`{"jsonrpc":"2.0","id":"a","method":"m","params":{"x":1}}`, `7`, `{"y":2}`, `{"jsonrpc":"2.0","id":7,"method":"m","params":{"y":2}}`},
		{`{"params":{"x":1},"jsonrpc":"2.0","method":"m","id":"a"}`, `7`, `{"y":2}`, `{"params":{"y":2},"jsonrpc":"2.0","method":"m","id":7}`},
		{`{"jsonrpc":"2.0","id":"a","method":"m"}`, `7`, `{"y":2}`, `{"jsonrpc":"2.0","id":7,"method":"m","params":{"y":2}}`},
		{`{"jsonrpc":"2.0","id":"a","method":"m","params":{}}`, `7`, ``, `{"jsonrpc":"2.0","id":7,"method":"m","params":{}}`},
		{`{"jsonrpc":"2.0","method":"m","params":{}}`, ``, `[1]`, `{"jsonrpc":"2.0","method":"m","params":[1]}`},
	}
	for _, tt := range tests {
		m, err := Parse([]byte(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		var id, params []byte
		if tt.id != "" {
			id = []byte(tt.id)
		}
		if tt.params != "" {
			params = []byte(tt.params)
		}
		if got := string(Rewrite(m, id, params)); got != tt.want {
			t.Errorf("Rewrite(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

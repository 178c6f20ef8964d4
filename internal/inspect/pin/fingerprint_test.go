package pin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const readFile = `{
  "name": "read_file",
  "title": "Read file",
  "description": "Reads a file.\nOnly paths under /data.",
  "inputSchema": {"type": "object", "properties": {"path": {"type": "string", "description": "File path"}}, "required": ["path"]},
  "annotations": {"readOnlyHint": true}
}`

func mustFingerprint(tb testing.TB, tool string) Pinned {
	tb.Helper()
	p, err := Fingerprint(json.RawMessage(tool))
	if err != nil {
		tb.Fatalf("Fingerprint(%s): %v", tool, err)
	}
	return p
}

func TestFingerprintCanonical(t *testing.T) {
	tests := []struct {
		name, tool, want string
	}{
		{"sorted_keys_no_space", `{ "name" : "t", "description":"d", "annotations": {"z":1, "a":[1, 2]} }`,
			`{"annotations":{"a":[1,2],"z":1},"description":"d","name":"t"}`},
		{"numbers_as_written", `{"name":"t","x":[1.0,1e5,-0,1E+2,12345678901234567890123]}`,
			`{"name":"t","x":[1.0,1e5,-0,1E+2,12345678901234567890123]}`},
		{"strings_reescaped", `{"name":"t","d":"\u00e9\/\u003c\u0001\t\"\\\u2028"}`,
			"{\"d\":\"é/<\\u0001\\t\\\"\\\\\u2028\",\"name\":\"t\"}"},
		{"invalid_utf8", "{\"name\":\"t\",\"d\":\"a\xffb\"}", "{\"d\":\"a\uFFFDb\",\"name\":\"t\"}"},
		{"lone_surrogate", `{"name":"t","d":"\ud800"}`, "{\"d\":\"\uFFFD\",\"name\":\"t\"}"},
		{"meta_and_icons_left_out", `{"name":"t","_meta":{"v":2},"icons":[{"src":"x.png"}],"inputSchema":{"_meta":1}}`,
			`{"inputSchema":{"_meta":1},"name":"t"}`},
		{"unknown_member_kept", `{"name":"t","execution":{"taskSupport":"optional"}}`,
			`{"execution":{"taskSupport":"optional"},"name":"t"}`},
		{"empty_containers", `{"name":"t","a":{},"b":[],"c":null,"d":false,"e":true}`,
			`{"a":{},"b":[],"c":null,"d":false,"e":true,"name":"t"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustFingerprint(t, tt.tool)
			if string(p.Canonical) != tt.want {
				t.Errorf("canonical:\n got %s\nwant %s", p.Canonical, tt.want)
			}
			sum := sha256.Sum256([]byte(tt.want))
			if p.Hash != hex.EncodeToString(sum[:]) {
				t.Errorf("hash %s is not the SHA-256 of the canonical form", p.Hash)
			}
			if p.Name != "t" {
				t.Errorf("name %q", p.Name)
			}
		})
	}
}

func TestFingerprintSameAndDifferent(t *testing.T) {
	base := mustFingerprint(t, readFile)
	tests := []struct {
		name string
		tool string
		same bool
	}{
		{"reordered_and_reformatted", `{"annotations":{"readOnlyHint":true},"inputSchema":{"required":["path"],"properties":{"path":{"description":"File path","type":"string"}},"type":"object"},"description":"Reads a file.\nOnly paths under /data.","title":"Read file","name":"read_file"}`, true},
		{"escaped_differently", strings.Replace(readFile, `"Read file"`, `"Read\u0020fil\u0065"`, 1), true},
		{"meta_added", strings.Replace(readFile, `"name"`, `"_meta": {"rev": 7}, "icons": [], "name"`, 1), true},
		{"description_changed", strings.Replace(readFile, "/data", "/", 1), false},
		{"title_changed", strings.Replace(readFile, "Read file", "Read a file", 1), false},
		{"number_spelling", strings.Replace(readFile, `"type": "object"`, `"type": "object", "maxProperties": 1.0`, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustFingerprint(t, tt.tool)
			if (p.Hash == base.Hash) != tt.same {
				t.Errorf("same hash = %v, want %v\n%s\n%s", p.Hash == base.Hash, tt.same, base.Canonical, p.Canonical)
			}
		})
	}
}

func TestFingerprintErrors(t *testing.T) {
	tests := []struct {
		name, tool string
		want       error
	}{
		{"array", `[{"name":"t"}]`, ErrNotObject},
		{"string", `"t"`, ErrNotObject},
		{"no_name", `{"description":"d"}`, ErrNoName},
		{"empty_name", `{"name":""}`, ErrNoName},
		{"name_not_string", `{"name":1}`, ErrNoName},
		{"duplicate_key", `{"name":"t","description":"safe","description":"evil"}`, ErrDuplicateKey},
		{"nested_duplicate", `{"name":"t","inputSchema":{"a":1,"a":1}}`, ErrDuplicateKey},
		{"duplicate_by_escape", `{"name":"t","d":1,"\u0064":2}`, ErrDuplicateKey},
		{"too_deep", `{"name":"t","x":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`, ErrTooDeep},
		{"trailing_data", `{"name":"t"} {}`, nil},
		{"truncated", `{"name":"t"`, nil},
		{"empty", ``, nil},
		{"bad_json", `{"name":'t'}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Fingerprint(json.RawMessage(tt.tool))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

// BenchmarkFingerprint is one pin of a typical tool definition (tools/list
// fingerprints every listed tool).
func BenchmarkFingerprint(b *testing.B) {
	tool := json.RawMessage(readFile)
	b.ReportAllocs()
	b.SetBytes(int64(len(tool)))
	for b.Loop() {
		if _, err := Fingerprint(tool); err != nil {
			b.Fatal(err)
		}
	}
}

package inspect_test

import (
	"encoding/json"
	"strings"
	"testing"

	"gatehouse/internal/inspect"
	"gatehouse/internal/inspect/injection"
	"gatehouse/internal/inspect/pii"
	"gatehouse/internal/inspect/secrets"
)

func newEngine(t testing.TB) *inspect.Engine {
	t.Helper()
	s, err := secrets.New(secrets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pii.New(pii.Options{})
	if err != nil {
		t.Fatal(err)
	}
	i, err := injection.New(injection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return inspect.NewEngine(s, p, i)
}

// A key shaped like a GitHub personal access token (random body).
const ghToken = "ghp_8Kq2Lm4Np6Rs8Tv0Wx2Yz4Ab6Cd8Ef0Gh2Ij4"

func TestInspectActions(t *testing.T) {
	e := newEngine(t)
	for _, c := range []struct {
		name     string
		payload  string
		dir      inspect.Direction
		action   inspect.Action
		redacted string // the redacted payload, when redacting
		path     string
	}{
		{"clean", `{"query":"open invoices for ACME","limit":10}`, inspect.Request, inspect.ActionNone, "", ""},
		{"secret in arguments blocks", `{"note":"use token ` + ghToken + ` please"}`, inspect.Request, inspect.ActionBlock, "", "/note"},
		{"secret in results blocks", `{"content":[{"type":"text","text":"GITHUB_TOKEN=` + ghToken + `"}]}`, inspect.Response, inspect.ActionBlock, "", "/content/0/text"},
		{"email in results is redacted", `{"content":[{"type":"text","text":"Contact: jane.doe@example.org, thanks"}]}`, inspect.Response, inspect.ActionRedact,
			`{"content":[{"type":"text","text":"Contact: [redacted:email], thanks"}]}`, "/content/0/text"},
		{"email in arguments is flagged", `{"to":"jane.doe@example.org"}`, inspect.Request, inspect.ActionFlag, "", "/to"},
		{"escaped strings", `{"a":"line\nmail: jane.doe@example.org \u00e9"}`, inspect.Response, inspect.ActionRedact,
			`{"a":"line\nmail: [redacted:email] é"}`, "/a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := e.Inspect([]byte(c.payload), c.dir, inspect.DefaultRules)
			if v.Action != c.action {
				t.Fatalf("action %v, want %v (findings %+v)", v.Action, c.action, v.Findings)
			}
			if c.redacted != "" && !sameJSON(v.Redacted, []byte(c.redacted)) {
				t.Errorf("redacted\n got %s\nwant %s", v.Redacted, c.redacted)
			}
			if c.redacted == "" && v.Redacted != nil {
				t.Errorf("redacted %s, want nothing", v.Redacted)
			}
			if c.path != "" && (len(v.Findings) == 0 || v.Findings[0].Path != c.path) {
				t.Errorf("findings %+v, want one at %s", v.Findings, c.path)
			}
			if c.action == inspect.ActionBlock && v.Blocking == nil {
				t.Error("blocked without a blocking finding")
			}
			for _, f := range v.Findings {
				if f.Start < 0 || f.End <= f.Start {
					t.Errorf("bad span %+v", f)
				}
			}
		})
	}
}

func TestMask(t *testing.T) {
	e := newEngine(t)
	sensitive := func(k string) bool { return k == "password" || k == "pin" }
	in := `{"user":"bob","password":"hunter2","pin":1234,"note":"mail jane.doe@example.org","nested":[{"token":"` + ghToken + `"}]}`
	out := string(e.Mask([]byte(in), sensitive, true))
	for _, leak := range []string{"hunter2", "1234", "jane.doe", ghToken} {
		if strings.Contains(out, leak) {
			t.Errorf("masked output %s still holds %q", out, leak)
		}
	}
	if !json.Valid([]byte(out)) || !strings.Contains(out, `"user":"bob"`) || !strings.Contains(out, "[masked:email]") {
		t.Errorf("masked output %s", out)
	}
	clean := `{"a": 1, "b": "nothing here"}`
	if got := e.Mask([]byte(clean), sensitive, true); string(got) != clean {
		t.Errorf("a clean payload changed: %s", got)
	}
	// Not JSON: masked as one string.
	if got := string(e.Mask([]byte("token "+ghToken), nil, true)); strings.Contains(got, ghToken) {
		t.Errorf("non-JSON payload leaked: %s", got)
	}
}

// typicalResult is a ~1 KB tools/call result with no findings.
func typicalResult() []byte {
	var b strings.Builder
	b.WriteString(`{"content":[{"type":"text","text":"`)
	for i := 0; b.Len() < 900; i++ {
		b.WriteString(`Invoice INV-2026-00` + string(rune('0'+i%10)) + ` for ACME Corp is open; amount 1250.00 EUR, due in 30 days. `)
	}
	b.WriteString(`"}],"structuredContent":{"status":"open","items":3,"region":"eu-west"},"isError":false}`)
	return []byte(b.String())
}

func BenchmarkInspect1KB(b *testing.B) {
	e := newEngine(b)
	p := typicalResult()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		e.Inspect(p, inspect.Response, inspect.DefaultRules)
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

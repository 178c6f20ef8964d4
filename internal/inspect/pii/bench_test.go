package pii

import (
	"fmt"
	"strings"
	"testing"

	"gatehouse/internal/inspect"
)

// crmResult is a ~4 KB JSON tool result: a page of CRM contacts, some with
// an email and a phone number, the rest ids, timestamps and free text.
func crmResult() string {
	var b strings.Builder
	b.WriteString(`{"object":"list","has_more":true,"data":[`)
	companies := []string{"Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries"}
	for i := 0; len(b.String()) < 3900; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"cnt_%08x","name":"Contact %d","company":%q,"title":"Procurement lead","stage":"qualified",`, 0x5a3c1f00+i*7919, i, companies[i%len(companies)])
		if i%3 == 0 {
			fmt.Fprintf(&b, `"email":"contact%d@%s.example.com","phone":"+1 415-555-01%02d",`, i, strings.ToLower(strings.Fields(companies[i%len(companies)])[0]), i%100)
		}
		fmt.Fprintf(&b, `"owner_id":"usr_%d","created_at":"2024-0%d-1%dT09:%02d:00Z","deal_value":%d.50,"notes":"Asked about volume pricing for Q%d; follow up after the security review."}`,
			1000+i, 1+i%9, i%10, i%60, 12000+i*350, 1+i%4)
	}
	b.WriteString(`],"request_id":"req_7f3a9c2e1b"}`)
	return b.String()
}

// plainText is ~64 KB of prose, logs and JSON with ids, hashes, versions
// and timestamps, and no personal data.
func plainText() string {
	parts := []string{
		"The gateway forwards each tool call to its upstream server after the policy engine has decided, and records the decision with its reason in the audit log. ",
		"2024-05-14T10:22:31.123Z INFO upstream=github-mcp tool=search_issues status=200 latency_ms=184 bytes=5123 request_id=3f2a9c1e-7b4d-4e8a-9f10-2c6d8e4b1a77\n",
		`{"sha":"9fceb02d0ae598e95dc970b74767f19372d61af8","version":"1.24.3","count":42,"items":[{"id":1187,"state":"open","labels":["bug","p2"]}]}` + "\n",
		"Release notes for v2.3.1: fixed a race in the session cache, raised the default body limit to 4 MiB and removed the deprecated --insecure flag. ",
		"func (s *Server) Handle(ctx context.Context, req *Request) (*Response, error) { return s.next.Handle(ctx, req) }\n",
	}
	var b strings.Builder
	for i := 0; b.Len() < 64<<10; i++ {
		b.WriteString(parts[i%len(parts)])
	}
	return b.String()
}

func benchmarkScan(b *testing.B, text string) {
	d := newDetector(b, Options{})
	dst := make([]inspect.Finding, 0, 64)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dst = d.Scan(text, dst[:0])
	}
	b.ReportMetric(float64(len(dst)), "findings")
}

func BenchmarkScanCRMResult(b *testing.B) { benchmarkScan(b, crmResult()) }
func BenchmarkScanPlainText(b *testing.B) { benchmarkScan(b, plainText()) }

func TestBenchmarkInputs(t *testing.T) {
	d := newDetector(t, Options{})
	if fs := d.Scan(plainText(), nil); len(fs) != 0 {
		t.Errorf("plain text has findings: %v", found(plainText(), fs))
	}
	crm := crmResult()
	fs := d.Scan(crm, nil)
	if len(fs) == 0 {
		t.Fatal("no findings in the CRM result")
	}
	for _, f := range fs {
		if f.Type != TypeEmail && f.Type != TypePhone {
			t.Errorf("unexpected finding %s %q", f.Type, crm[f.Start:f.End])
		}
	}
}

package injection

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"gatehouse/internal/inspect"
)

// typicalToolResult is a ~4 KB JSON tool result with no attack: a page of
// issues from a tracker, as an MCP server would return it.
func typicalToolResult() string {
	type issue struct {
		Number    int      `json:"number"`
		Title     string   `json:"title"`
		State     string   `json:"state"`
		User      string   `json:"user"`
		Labels    []string `json:"labels"`
		Comments  int      `json:"comments"`
		CreatedAt string   `json:"created_at"`
		URL       string   `json:"html_url"`
		Body      string   `json:"body"`
	}
	titles := []string{"Crash when config file is empty", "Add retry with backoff to the upstream client",
		"Docs: clarify TLS settings", "Memory grows under sustained load", "Support Windows paths in the file tool",
		"Flaky test in session store", "Upgrade Go to the latest patch release", "Metrics endpoint returns 500 on HEAD"}
	bodies := []string{
		"Steps to reproduce:\n1. Create an empty config.yaml\n2. Run `tool serve`\n\nExpected a helpful error, got a nil map panic in config.Load.",
		"When the upstream returns 503 we fail the request at once. We should retry twice with jittered backoff, and respect Retry-After when present.",
		"The page does not say whether client certificates are verified against the system pool or only the configured CA bundle.",
		"After 6 hours at 2k rps the RSS reaches 3 GB. pprof shows most of it in the response buffer pool; buffers are never returned.",
	}
	var issues []issue
	for i := 0; ; i++ {
		issues = append(issues, issue{
			Number: 4400 + i, Title: titles[i%len(titles)], State: []string{"open", "closed"}[i%2], User: fmt.Sprintf("dev%d", i*7%31),
			Labels: []string{"bug", "needs-triage"}[:1+i%2], Comments: i * 3 % 11, CreatedAt: fmt.Sprintf("2024-06-%02dT10:%02d:00Z", 1+i%28, i%60),
			URL: fmt.Sprintf("https://github.com/acme/gateway/issues/%d", 4400+i), Body: bodies[i%len(bodies)],
		})
		b, _ := json.Marshal(map[string]any{"total_count": 212, "items": issues})
		if len(b) >= 4096 {
			return string(b)
		}
	}
}

// markdownDocs is ~64 KB of documentation pages with headings, code,
// links and images.
func markdownDocs() string {
	page := `# Configuring the gateway

The gateway reads its configuration from ` + "`gatehouse.yaml`" + `. See [the reference](https://docs.example.com/reference/config) for every field,
and the [examples directory](https://github.com/acme/gateway/tree/main/examples) for complete files.

![Architecture diagram](https://docs.example.com/images/architecture.png)

## Upstreams

Each upstream names a server and how to reach it. Before you start, make sure the server is reachable from the gateway host.

` + "```yaml" + `
upstreams:
  - name: files
    url: https://files.internal.example/mcp
    timeout: 30s
` + "```" + `

Important: timeouts apply per request, not per session. Retries are off by default; turn them on for idempotent tools only.

## Policies

Policies decide which agent may call which tool. Rules are evaluated in order and the first match wins; a deny rule
always beats an allow rule at the same level. Read the [policy guide](https://docs.example.com/guides/policy?tab=yaml#rules)
before writing your own, and test them with ` + "`gatehouse policy test`" + `.

| Field | Meaning |
|---|---|
| agents | who the rule applies to |
| tools | which tools it covers |
| effect | allow or deny |

[![Build](https://github.com/acme/gateway/actions/workflows/ci.yml/badge.svg?branch=main)](https://github.com/acme/gateway/actions)

## Troubleshooting

If the gateway logs "upstream unavailable", check the URL and the TLS settings. The system prompt of your agent is not
changed by the gateway; only tool results and descriptions are inspected. Previous versions ignored the ` + "`timeout`" + ` field
for SSE upstreams; upgrade to 1.4 or later.

`
	var sb strings.Builder
	for i := 0; sb.Len() < 64<<10; i++ {
		sb.WriteString(strings.ReplaceAll(page, "1.4", fmt.Sprintf("1.%d", 4+i)))
	}
	return sb.String()
}

func benchmarkScan(b *testing.B, text string) {
	d, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	if f := d.Scan(text, nil); len(f) != 0 {
		b.Fatalf("benchmark text has findings: %+v", f)
	}
	dst := make([]inspect.Finding, 0, 8)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dst = d.Scan(text, dst[:0])
	}
}

func BenchmarkScanToolResult4K(b *testing.B) { benchmarkScan(b, typicalToolResult()) }
func BenchmarkScanMarkdown64K(b *testing.B)  { benchmarkScan(b, markdownDocs()) }

func BenchmarkScanToolDescription(b *testing.B) {
	d, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	desc := "Reads the contents of a file at the given path. Do not use for binary files; use read_binary instead. Paths must be absolute; hidden files are skipped unless include_hidden is true."
	b.SetBytes(int64(len(desc)))
	b.ReportAllocs()
	for b.Loop() {
		d.ScanToolDescription(desc, nil)
	}
}

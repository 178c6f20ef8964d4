package sinks

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		typ      string
		settings map[string]any
		err      string
	}{
		{"file", map[string]any{"path": filepath.Join(dir, "a.jsonl"), "max_bytes": 1 << 20, "max_files": 3}, ""},
		{"webhook", map[string]any{"url": "https://siem.example/hook", "secret": "s3cr3t-value-long-enough", "timeout": "5s"}, ""},
		{"splunk_hec", map[string]any{"url": "https://splunk.example:8088", "token": "00000000-0000-0000-0000-000000000000"}, ""},
		{"kafka", map[string]any{"brokers": []any{"127.0.0.1:9092"}, "topic": "audit", "tls": map[string]any{"ca_file": "x"}}, ""},
		{"file", map[string]any{"path": "x", "bogus": 1}, `unknown field "bogus"`},
		{"webhook", map[string]any{"url": "https://x", "timeout": 5}, "duration"},
		{"file", map[string]any{"path": "x", "max_files": 2.5}, "settings.max_files: want a whole number"},
		{"file", map[string]any{"path": "x", "max_bytes": uint64(1 << 63)}, "settings.max_bytes: want a whole number"},
		{"splunk_hec", map[string]any{"url": "https://x", "max_batch_bytes": 1e30}, "settings.max_batch_bytes: want a whole number"},
		{"nope", nil, "unknown sink type"},
	}
	for _, c := range cases {
		s, err := Build("s1", c.typ, c.settings)
		switch {
		case c.err == "" && err != nil:
			// Constructors may still refuse (e.g. a CA file that does not
			// exist): only decoding problems matter here.
			if strings.Contains(err.Error(), "settings") {
				t.Errorf("%s: %v", c.typ, err)
			}
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: got %v, want %q", c.typ, err, c.err)
		case err == nil && s.Name() != "s1":
			t.Errorf("%s: name %q", c.typ, s.Name())
		}
		if err == nil {
			s.Close()
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("a secret in an error: %v", err)
		}
	}
	if got := snake("DCRImmutableID"); got != "dcr_immutable_id" {
		t.Errorf("snake: %s", got)
	}
}

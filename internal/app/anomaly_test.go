package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAnomalyState: with anomaly detection on, the baselines file lives
// beside the SQLite store; a corrupt one is logged and ignored at start,
// and it is written again (mode 0600) at shutdown.
func TestAnomalyState(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "data", "anomaly-baselines.json")
	if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gatehouse.yaml")
	cfg := configA + "store: {path: " + filepath.Join(dir, "data", "gatehouse.db") + "}\ninspect: {anomaly: {enabled: true}}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: path, Listen: "127.0.0.1:0", LogOutput: logs, Ready: ready})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(logs.String(), "anomaly baselines not restored") {
		t.Errorf("a corrupt baselines file is not reported:\n%s", logs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("baselines file after shutdown: %v, %v", fi, err)
	}
	b, _ := os.ReadFile(state)
	var snap struct {
		Version int    `json:"version"`
		Window  string `json:"window"`
	}
	if err := json.Unmarshal(b, &snap); err != nil || snap.Version != 1 || snap.Window != "1m0s" {
		t.Errorf("baselines file %s: %v", b, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "data", ".*.tmp")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

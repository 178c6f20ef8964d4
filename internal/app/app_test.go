package app

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for the app's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const configA = `
identity: {auth: "off"}
admin: {disabled: true}
upstreams:
  web: {url: "http://127.0.0.1:9/mcp"}
servers:
  alpha: {upstreams: [{upstream: web}]}
`

const configB = configA + `  beta: {upstreams: [{upstream: web}]}
`

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReload covers the reload paths: a file change applies a valid new
// configuration, an invalid one is rejected with its errors while the
// running one stays, and SIGHUP reloads too.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(configA), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: path, Listen: "127.0.0.1:0", LogOutput: logs, Ready: ready})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	}()
	base := "http://" + addr
	// GET without a session on an existing server is 405; on a missing one 404.
	if got := status(base + "/mcp/alpha"); got != http.StatusMethodNotAllowed {
		t.Fatalf("alpha: status %d", got)
	}
	if got := status(base + "/mcp/beta"); got != http.StatusNotFound {
		t.Fatalf("beta before reload: status %d", got)
	}

	// A valid change is picked up from the file.
	if err := os.WriteFile(path, []byte(configB), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "beta to appear", func() bool { return status(base+"/mcp/beta") == http.StatusMethodNotAllowed })

	// An invalid file is rejected; the running configuration stays.
	if err := os.WriteFile(path, []byte(configB+"  gamma: {upstreams: [{upstream: nope}]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rejection to be logged", func() bool {
		return strings.Contains(logs.String(), "configuration rejected") && strings.Contains(logs.String(), `unknown upstream \"nope\"`)
	})
	if got := status(base + "/mcp/beta"); got != http.StatusMethodNotAllowed {
		t.Fatalf("beta after a rejected reload: status %d", got)
	}

	// SIGHUP reloads (back to A, which drops beta).
	if err := os.WriteFile(path+".tmp", []byte(configA), 0o600); err != nil {
		t.Fatal(err)
	}
	// Replace atomically, as config managers do.
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "beta to disappear", func() bool { return status(base+"/mcp/beta") == http.StatusNotFound })
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("servers: {}\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), Options{ConfigPath: path, Listen: "127.0.0.1:0", LogOutput: &syncBuffer{}})
	if err == nil || !strings.Contains(err.Error(), `bad.yaml:2:1: bogus: unknown field "bogus"`) {
		t.Fatalf("err = %v", err)
	}
}

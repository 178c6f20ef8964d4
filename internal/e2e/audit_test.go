package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"gatehouse/internal/audit"
	"gatehouse/internal/store"
	"gatehouse/internal/store/sqlite"
)

// TestAuditKill9 proves that a call the gateway answered has its audit
// record, even when the gateway is killed (SIGKILL) under load: it counts
// the answered calls on the client side and finds each one's record after
// a restart, in a chain that verifies.
func TestAuditKill9(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	tail := sqliteTail(dir) + "audit: {queue_dir: " + strconv.Quote(filepath.Join(dir, "audit-queue")) + "}\n"
	if err := os.WriteFile(cfgPath, []byte(rolesConfig(t, dir, "1m", tail)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startReplicaLogging(t, cfgPath, nil, filepath.Join(dir, "first.log"))
	base := "http://" + r.addr
	token := agentToken(t, base, "support-bot")

	// Load: sessions posting messages with unique texts until the gateway
	// dies. A text is "answered" when its call returned a result.
	var mu sync.Mutex
	answered := map[string]bool{}
	var wg sync.WaitGroup
	for s := 0; s < 6; s++ {
		cs := connectAs(t, base, token, v20251125, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				text := fmt.Sprintf("kill9-s%d-n%d", s, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "chat_post_message",
					Arguments: map[string]any{"channel": "#support", "text": text}})
				cancel()
				if err != nil || res.IsError {
					return // the gateway is gone
				}
				mu.Lock()
				answered[text] = true
				mu.Unlock()
			}
		}()
	}
	// Kill once enough calls were answered (counted, not timed).
	eventually(t, "200 answered calls", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(answered) < 200 {
			return errNotYet
		}
		return nil
	})
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	mu.Lock()
	n := len(answered)
	mu.Unlock()
	t.Logf("%d calls answered before SIGKILL", n)

	// The restarted gateway commits what the dead one queued.
	startReplicaLogging(t, cfgPath, nil, filepath.Join(dir, "second.log"))
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var recorded map[string]bool
	var rows []store.AuditRow
	eventually(t, "a record of every answered call", func() error {
		recorded = map[string]bool{}
		rows = rows[:0]
		after := int64(0)
		for {
			page, err := st.ListAudit(context.Background(), store.AuditFilter{AfterSeq: after, Limit: 5000})
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			rows = append(rows, page...)
			after = page[len(page)-1].Seq
		}
		for _, rw := range rows {
			var rec audit.Record
			if json.Unmarshal(rw.Data, &rec) != nil || rec.Action != "tools/call" || rec.Outcome.Status != audit.OutcomeAllowed {
				continue
			}
			if rec.Target.Tool != "chat_post_message" || rec.Actor.AgentName != "support-bot" || rec.Target.Upstream != "chat" {
				return fmt.Errorf("record %d does not say who called what: %s", rec.Seq, rw.Data)
			}
			var args struct {
				Text string `json:"text"`
			}
			_ = json.Unmarshal(rec.Args, &args)
			recorded[args.Text] = true
		}
		mu.Lock()
		defer mu.Unlock()
		for text := range answered {
			if !recorded[text] {
				return fmt.Errorf("no record of answered call %q (%d of %d recorded)", text, len(recorded), len(answered))
			}
		}
		return nil
	})
	v := &audit.Verifier{}
	v.Start(0, "")
	for _, rw := range rows {
		if p := v.Add(rw.Data); p != nil {
			t.Fatalf("the chain does not verify: %v", p)
		}
	}
	t.Logf("%d answered calls, %d recorded; %d records in a chain that verifies", n, len(recorded), v.Records)
}

// TestAuditSinks: a gateway with a file sink and a webhook sink whose
// receiver is down at first (it answers 503 to its first requests). Every
// answered call's record reaches both, in sequence order, and the webhook's
// copies carry a valid signature.
func TestAuditSinks(t *testing.T) {
	dir := t.TempDir()
	const secret = "webhook-secret-0123456789"
	var mu sync.Mutex
	var hooked []audit.Record
	refusals := 3
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(r.Header.Get("X-Gatehouse-Timestamp") + "." + string(body)))
		if r.Header.Get("X-Gatehouse-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if refusals > 0 {
			refusals--
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var b struct {
			Records []audit.Record `json:"records"`
		}
		_ = json.Unmarshal(body, &b)
		hooked = append(hooked, b.Records...)
	}))
	defer hook.Close()
	file := filepath.Join(dir, "audit.jsonl")
	tail := sqliteTail(dir) + fmt.Sprintf(`audit:
  queue_dir: %s
  sinks:
    - {name: archive, type: file, settings: {path: %s}}
    - {name: siem, type: webhook, settings: {url: %s, secret: %s, timeout: 2s}}
`, strconv.Quote(filepath.Join(dir, "audit-queue")), strconv.Quote(file), strconv.Quote(hook.URL), strconv.Quote(secret))
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(rolesConfig(t, dir, "1m", tail)), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startRolesApp(t, dir, cfgPath)
	cs := connectAs(t, g.base, agentToken(t, g.base, "support-bot"), v20251125, nil)
	const calls = 40
	for i := 0; i < calls; i++ {
		callText(t, cs, "chat_post_message", map[string]any{"channel": "#support", "text": fmt.Sprintf("sink-%d", i)})
	}
	want := func(recs []audit.Record) error {
		n := 0
		for i, r := range recs {
			if i > 0 && r.Seq <= recs[i-1].Seq {
				return fmt.Errorf("out of order: seq %d after %d", r.Seq, recs[i-1].Seq)
			}
			if r.Action == "tools/call" {
				n++
			}
		}
		if n < calls {
			return errNotYet
		}
		return nil
	}
	// An admin change, a policy event, a token issued and a refused
	// credential are records too.
	mustAdmin(t, g.base, "POST", "/admin/v1/grants", map[string]any{"agent": "eng-bot", "bundle": "billing-escalation", "for": "1h", "reason": "INC-7"}, http.StatusCreated, nil)
	if status, _ := httpJSON(t, "POST", g.base+"/mcp/work", "not-a-valid-token", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping"}); status != http.StatusUnauthorized {
		t.Fatalf("a bad token got %d", status)
	}
	eventually(t, "every record in the file sink", func() error {
		b, err := os.ReadFile(file)
		if err != nil {
			return errNotYet
		}
		var recs []audit.Record
		kinds := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var r audit.Record
			if json.Unmarshal([]byte(line), &r) == nil {
				recs = append(recs, r)
				kinds[r.Kind+" "+r.Action] = true
			}
		}
		if !kinds["admin POST /admin/v1/grants"] || !kinds["policy grant.created"] || !kinds["admin POST /admin/v1/agents/{name}/rotate"] ||
			!kinds["auth token.issued"] || !kinds["auth auth.refused"] {
			return errNotYet
		}
		return want(recs)
	})
	eventually(t, "every record at the webhook, after its outage", func() error {
		mu.Lock()
		defer mu.Unlock()
		return want(hooked)
	})
}

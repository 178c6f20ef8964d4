package sinks

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/config"
	"gatehouse/internal/store/sqlite"
)

// TestSinkDownForAMinute: a webhook receiver refuses every batch for a
// whole minute while the gateway goes on recording, then comes back; the
// trail (with its default backoff, up to a minute between tries) delivers
// every record, in order, at least once.
func TestSinkDownForAMinute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	q, err := audit.OpenQueue(filepath.Join(dir, "queue"), audit.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	const secret = "outage-test-secret-0123456789"
	var mu sync.Mutex
	down := true
	refused := 0
	var got []audit.Record
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			refused++
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var b struct {
			Records []audit.Record `json:"records"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = append(got, b.Records...)
	}))
	defer recv.Close()
	sink, err := NewWebhook(WebhookConfig{Name: "siem", URL: recv.URL, Secret: config.Secret(secret), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	tr := audit.New(audit.Options{Queue: q, Store: st, Replica: "outage", Key: key, KeyID: "k1", Sinks: []audit.Sink{sink}})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { tr.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()

	// A minute of traffic with the receiver down: ten records a second.
	var ids []string
	outage := time.Now().Add(time.Minute)
	for time.Now().Before(outage) {
		r := audit.Record{Kind: audit.KindMCPRequest, Action: "tools/call", Outcome: audit.Outcome{Status: audit.OutcomeAllowed},
			Target: audit.Target{Server: "work", Tool: "crm_get_invoice"}}
		r.ID = audit.NewID(time.Now())
		if err := tr.Log(r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	down = false
	if refused < 5 {
		t.Errorf("the receiver refused only %d batches in a minute: the sink did not retry", refused)
	}
	mu.Unlock()

	// Back up: everything arrives (the next try is at most a minute away).
	deadline := time.Now().Add(3 * time.Minute)
	for {
		mu.Lock()
		seen := map[string]bool{}
		for _, r := range got {
			seen[r.ID] = true
		}
		n := len(seen)
		mu.Unlock()
		if n == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the outage %d of %d records arrived", n, len(ids))
		}
		time.Sleep(200 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq && got[i].ID != got[i-1].ID {
			t.Fatalf("records out of order: seq %d after %d", got[i].Seq, got[i-1].Seq)
		}
	}
	t.Logf("%d records recorded during a one-minute outage, %d batches refused, all delivered after it", len(ids), refused)
}

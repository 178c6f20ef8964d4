package policy

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestHistory(t *testing.T) {
	h := NewHistory(0) // default idle time
	if s := h.Session("agent:a"); s.Calls != 0 || s.Labels != nil {
		t.Fatalf("empty history: %+v", s)
	}
	h.Note("agent:a", []string{"x", "b"}, true)
	h.Note("agent:a", []string{"c"}, false) // failed calls count, their labels do not
	h.Note("agent:a", []string{"b", "a"}, true)
	s := h.Session("agent:a")
	if s.Calls != 3 || !slices.Equal(s.Labels, []string{"a", "b", "x"}) {
		t.Fatalf("history %+v", s)
	}
	s.Labels[0] = "changed"
	if got := h.Session("agent:a"); got.Labels[0] != "a" {
		t.Fatal("Session shares its labels")
	}
	if s := h.Session("agent:b"); s.Calls != 0 {
		t.Fatalf("other caller: %+v", s)
	}
	// The history feeds workflow rules like a session's.
	p := mustPolicy(t, `
policy:
  tools:
    - {upstream: crm, tools: [get_invoice], labels: [customer_financial]}
    - {upstream: chat, tools: [post_message], labels: [communications]}
  bundles:
    b: {members: {everyone: true}, allow: [{name: all}]}
  workflows:
    - {name: fin-comms, after: [customer_financial], calls: [communications], action: deny}
`)
	h.Note("agent:bot", p.Decide(&Input{Caller: supportBot(), Target: tt("crm", "get_invoice")}, false).Labels, true)
	if d := p.Decide(&Input{Caller: supportBot(), Target: tt("chat", "post_message"), Session: h.Session("agent:bot")}, false); d.Effect != Deny || d.Rule != "fin-comms" {
		t.Fatalf("workflow over the history: %+v", d)
	}
}

func TestHistoryIdle(t *testing.T) {
	h := NewHistory(time.Millisecond)
	h.Note("k", []string{"x"}, true)
	time.Sleep(20 * time.Millisecond)
	if s := h.Session("k"); s.Calls != 0 || len(s.Labels) != 0 {
		t.Fatalf("after idle time: %+v", s)
	}
	h.Note("k", nil, true)
	if s := h.Session("k"); s.Calls != 1 || len(s.Labels) != 0 {
		t.Fatalf("restarted: %+v", s)
	}
	// Sweeping forgets idle callers.
	time.Sleep(20 * time.Millisecond)
	h.Note("other", nil, true)
	h.mu.Lock()
	_, kept := h.entries["k"]
	h.mu.Unlock()
	if kept {
		t.Fatal("idle caller kept after a sweep")
	}
}

func TestHistoryConcurrent(t *testing.T) {
	h := NewHistory(time.Hour)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				key := fmt.Sprintf("c%d", j%5)
				h.Note(key, []string{fmt.Sprintf("l%d", i)}, true)
				_ = h.Session(key)
			}
		}()
	}
	wg.Wait()
	total := 0
	for j := range 5 {
		s := h.Session(fmt.Sprintf("c%d", j))
		total += s.Calls
		if len(s.Labels) != 8 || !slices.IsSorted(s.Labels) {
			t.Errorf("c%d labels %q", j, s.Labels)
		}
	}
	if total != 1600 {
		t.Errorf("%d calls, want 1600", total)
	}
}

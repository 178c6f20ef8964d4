package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/config"
	"gatehouse/internal/webhooksig"
)

const testSecret = config.Secret("0123456789abcdef0123456789abcdef")

// receiver is a webhook that checks signatures and keeps what it got.
type receiver struct {
	t   *testing.T
	srv *httptest.Server
	// status answers the nth request (0-based); nil: 200.
	status func(n int) int
	// hold, when set, is waited on before answering (released by closing
	// it, or by the request's context ending).
	hold chan struct{}
	got  chan struct{} // one send per request received, before answering

	mu       sync.Mutex
	requests int
	alerts   []Alert
	badSig   int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, got: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := r.requests
	r.requests++
	if err := webhooksig.Verify([]byte(testSecret), req.Header.Get(webhooksig.TimestampHeader), req.Header.Get(webhooksig.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		r.badSig++
	}
	r.mu.Unlock()
	r.got <- struct{}{}
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-req.Context().Done():
			return
		}
	}
	code := http.StatusOK
	if r.status != nil {
		code = r.status(n)
	}
	if code == http.StatusOK {
		var b struct {
			Alerts []Alert `json:"alerts"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			r.t.Errorf("receiver: %v: %s", err, body)
		}
		r.mu.Lock()
		r.alerts = append(r.alerts, b.Alerts...)
		r.mu.Unlock()
	}
	w.WriteHeader(code)
}

func (r *receiver) snapshot() (requests, badSig int, alerts []Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, r.badSig, append([]Alert(nil), r.alerts...)
}

// drops counts OnDrop calls by reason.
type drops struct {
	mu sync.Mutex
	m  map[string]int
}

func (d *drops) add(reason string, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]int{}
	}
	d.m[reason] += n
}

func (d *drops) get(reason string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[reason]
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newNotifier(t *testing.T, o Options) (*Notifier, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	o.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.MinBackoff == 0 {
		o.MinBackoff = time.Millisecond
	}
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = n.Close(ctx)
	})
	return n, lb
}

func closeWait(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func findingAlert(tool string) Alert {
	return Alert{Kind: KindFinding, Server: "work", Upstream: "crm", Method: "tools/call", Tool: tool, Agent: "triage-bot", Team: "support",
		Direction: "response", Action: "alert", Findings: []Finding{{Category: "pii", Type: "email", Confidence: "high", Action: "alert"}}}
}

// TestDeliverSigned: alerts are logged, batched, signed and all delivered
// by Close.
func TestDeliverSigned(t *testing.T) {
	r := newReceiver(t)
	var seen []Alert
	var mu sync.Mutex
	n, lb := newNotifier(t, Options{Webhook: WebhookConfig{URL: r.srv.URL + "/hook?token=s3cr3t-in-url", Secret: testSecret},
		OnAlert: func(a Alert) { mu.Lock(); seen = append(seen, a); mu.Unlock() }})
	for _, tool := range []string{"a", "b", "c"} {
		n.Notify(findingAlert(tool))
	}
	n.Notify(Alert{Kind: KindAnomaly, Agent: "triage-bot", Anomaly: &Anomaly{Metric: "calls", Value: 500, Baseline: 5, Factor: 10, Threshold: 50}})
	closeWait(t, n)
	_, badSig, alerts := r.snapshot()
	if badSig != 0 {
		t.Errorf("%d requests with a bad signature", badSig)
	}
	if len(alerts) != 4 || n.Delivered() != 4 || n.Dropped() != 0 {
		t.Fatalf("delivered %d alerts (counted %d, dropped %d), want 4: %+v", len(alerts), n.Delivered(), n.Dropped(), alerts)
	}
	ids := map[string]bool{}
	for i, a := range alerts {
		if !strings.HasPrefix(a.ID, "alr_") || ids[a.ID] || a.Time.IsZero() || a.Summary == "" {
			t.Errorf("alert %d: id %q time %v summary %q", i, a.ID, a.Time, a.Summary)
		}
		ids[a.ID] = true
	}
	if a := alerts[0]; a.Kind != KindFinding || a.Tool != "a" || len(a.Findings) != 1 || a.Findings[0].Type != "email" {
		t.Errorf("first alert: %+v", a)
	}
	if a := alerts[3]; a.Kind != KindAnomaly || a.Anomaly == nil || a.Anomaly.Metric != "calls" || !strings.Contains(a.Summary, "calls 500") {
		t.Errorf("anomaly alert: %+v", a)
	}
	mu.Lock()
	if len(seen) != 4 {
		t.Errorf("OnAlert saw %d alerts, want 4", len(seen))
	}
	mu.Unlock()
	log := lb.String()
	if strings.Count(log, `msg="inspection alert"`) != 3 || strings.Count(log, `msg="anomaly alert"`) != 1 {
		t.Errorf("each alert is logged at warn (%d, %d):\n%s", strings.Count(log, `msg="inspection alert"`), strings.Count(log, `msg="anomaly alert"`), log)
	}
	if strings.Contains(log, "s3cr3t-in-url") || strings.Contains(log, string(testSecret)) {
		t.Errorf("the log holds the webhook's URL or secret:\n%s", log)
	}
}

// TestRetryAfter503: a batch the webhook refuses with 503 is sent again,
// freshly signed, and delivered once.
func TestRetryAfter503(t *testing.T) {
	r := newReceiver(t)
	r.status = func(n int) int {
		if n < 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	var d drops
	n, _ := newNotifier(t, Options{Webhook: WebhookConfig{URL: r.srv.URL, Secret: testSecret}, OnDrop: d.add})
	n.Notify(findingAlert("a"))
	closeWait(t, n)
	requests, badSig, alerts := r.snapshot()
	if requests != 3 || badSig != 0 || len(alerts) != 1 || n.Delivered() != 1 || n.Dropped() != 0 {
		t.Fatalf("requests %d (bad signatures %d), alerts %d, delivered %d, dropped %d; want 3, 0, 1, 1, 0", requests, badSig, len(alerts), n.Delivered(), n.Dropped())
	}
}

// TestGiveUp: a refusal (4xx) is not retried; a webhook failing every
// attempt has the batch dropped after MaxAttempts. Both are counted.
func TestGiveUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		attempts int
	}{
		{"refused", http.StatusForbidden, 1},
		{"failing", http.StatusBadGateway, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t)
			r.status = func(int) int { return tc.status }
			var d drops
			n, lb := newNotifier(t, Options{Webhook: WebhookConfig{URL: r.srv.URL, Secret: testSecret}, MaxAttempts: 3, OnDrop: d.add})
			n.Notify(findingAlert("a"))
			n.Notify(findingAlert("b"))
			closeWait(t, n)
			requests, _, _ := r.snapshot()
			// The two alerts may go in one batch or two.
			if requests != tc.attempts && requests != 2*tc.attempts {
				t.Errorf("%d requests, want %d per batch", requests, tc.attempts)
			}
			if d.get(DropUndeliverable) != 2 || n.Dropped() != 2 || n.Delivered() != 0 {
				t.Errorf("dropped %d (undeliverable %d), delivered %d; want 2, 2, 0", n.Dropped(), d.get(DropUndeliverable), n.Delivered())
			}
			if !strings.Contains(lb.String(), "batch dropped") {
				t.Errorf("the drop is not logged:\n%s", lb.String())
			}
		})
	}
}

// TestQueueFull: while the webhook is stuck, alerts beyond the queue's
// size are dropped and counted, and Notify does not block.
func TestQueueFull(t *testing.T) {
	r := newReceiver(t)
	r.hold = make(chan struct{})
	var d drops
	n, lb := newNotifier(t, Options{Webhook: WebhookConfig{URL: r.srv.URL, Secret: testSecret}, QueueSize: 2, BatchSize: 1, OnDrop: d.add})
	n.Notify(findingAlert("first"))
	<-r.got // the sender holds "first" and waits on the receiver
	for _, tool := range []string{"q1", "q2", "over1", "over2"} {
		n.Notify(findingAlert(tool))
	}
	if n.Dropped() != 2 || d.get(DropQueueFull) != 2 {
		t.Fatalf("dropped %d (queue_full %d), want 2", n.Dropped(), d.get(DropQueueFull))
	}
	if !strings.Contains(lb.String(), "alert queue full") {
		t.Errorf("a full queue is not logged:\n%s", lb.String())
	}
	close(r.hold)
	closeWait(t, n)
	_, _, alerts := r.snapshot()
	var tools []string
	for _, a := range alerts {
		tools = append(tools, a.Tool)
	}
	if strings.Join(tools, ",") != "first,q1,q2" || n.Delivered() != 3 {
		t.Errorf("delivered %v (%d), want first,q1,q2", tools, n.Delivered())
	}
	// Alerts raised after Close are logged and counted, not queued.
	n.Notify(findingAlert("late"))
	if d.get(DropShutdown) != 1 {
		t.Errorf("an alert after Close: shutdown drops %d, want 1", d.get(DropShutdown))
	}
}

// TestCloseGivesUp: Close with an ended context abandons a stuck delivery
// and counts what it drops.
func TestCloseGivesUp(t *testing.T) {
	r := newReceiver(t)
	r.hold = make(chan struct{})
	t.Cleanup(func() { close(r.hold) })
	var d drops
	n, _ := newNotifier(t, Options{Webhook: WebhookConfig{URL: r.srv.URL, Secret: testSecret}, BatchSize: 1, OnDrop: d.add})
	n.Notify(findingAlert("stuck"))
	<-r.got
	n.Notify(findingAlert("queued"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Close(ctx); err == nil {
		t.Fatal("Close with an ended context: no error")
	}
	if d.get(DropShutdown) != 2 || n.Delivered() != 0 {
		t.Errorf("shutdown drops %d, delivered %d; want 2, 0", d.get(DropShutdown), n.Delivered())
	}
}

// TestLogOnly: without a webhook alerts are logged and nothing is queued.
func TestLogOnly(t *testing.T) {
	var d drops
	n, lb := newNotifier(t, Options{OnDrop: d.add, QueueSize: 1})
	for range 5 {
		n.Notify(findingAlert("a"))
	}
	closeWait(t, n)
	if n.Dropped() != 0 || strings.Count(lb.String(), "inspection alert") != 5 {
		t.Errorf("dropped %d; log:\n%s", n.Dropped(), lb.String())
	}
}

// TestConfigure: a webhook is checked, and can be set after start.
func TestConfigure(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    WebhookConfig
		ok   bool
	}{
		{"none", WebhookConfig{}, true},
		{"good", WebhookConfig{URL: "https://alerts.example/hook", Secret: testSecret}, true},
		{"relative", WebhookConfig{URL: "/hook", Secret: testSecret}, false},
		{"ftp", WebhookConfig{URL: "ftp://alerts.example/", Secret: testSecret}, false},
		{"short secret", WebhookConfig{URL: "https://alerts.example/hook", Secret: "short"}, false},
		{"secret without url", WebhookConfig{Secret: testSecret}, false},
		{"negative timeout", WebhookConfig{URL: "https://alerts.example/hook", Secret: testSecret, Timeout: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckWebhook(tc.w)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckWebhook: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && (strings.Contains(err.Error(), tc.w.URL) && tc.w.URL != "" || strings.Contains(err.Error(), string(testSecret))) {
				t.Errorf("the error repeats the configuration: %v", err)
			}
		})
	}
	r := newReceiver(t)
	n, _ := newNotifier(t, Options{})
	n.Notify(findingAlert("before")) // log only
	if err := n.Configure(WebhookConfig{URL: r.srv.URL, Secret: testSecret}); err != nil {
		t.Fatal(err)
	}
	before := n.hook.Load()
	if err := n.Configure(WebhookConfig{URL: r.srv.URL, Secret: testSecret, Timeout: DefaultTimeout}); err != nil || n.hook.Load() != before {
		t.Errorf("configuring the same webhook again replaced it (err %v)", err)
	}
	n.Notify(findingAlert("after"))
	closeWait(t, n)
	if _, _, alerts := r.snapshot(); len(alerts) != 1 || alerts[0].Tool != "after" {
		t.Errorf("got %+v, want the alert raised after Configure", alerts)
	}
}

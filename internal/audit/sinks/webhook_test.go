package sinks_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/audit/sinks"
	"gatehouse/internal/config"
)

const stWebhookSecret = "0123456789abcdef-webhook-secret"

// stWebhookReceiver verifies signatures as a receiver would (HMAC over
// "<timestamp>.<body>", constant-time compare, 5-minute window) and keeps
// the records of the batches it accepted.
type stWebhookReceiver struct {
	secret []byte
	fail   func(n int) int // status to answer call n (from 1) with, 0 for normal handling

	mu      sync.Mutex
	calls   int
	records []audit.Record
	raw     [][]byte
}

func (rc *stWebhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls++
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	ts := r.Header.Get("X-Gatehouse-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		http.Error(w, "stale timestamp", http.StatusUnauthorized)
		return
	}
	m := hmac.New(sha256.New, rc.secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(r.Header.Get("X-Gatehouse-Signature")), []byte(want)) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rc.fail != nil {
		if st := rc.fail(rc.calls); st != 0 {
			w.WriteHeader(st)
			return
		}
	}
	var payload struct {
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	for _, raw := range payload.Records {
		var rec audit.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			http.Error(w, "bad record", http.StatusBadRequest)
			return
		}
		rc.records = append(rc.records, rec)
		rc.raw = append(rc.raw, raw)
	}
	w.WriteHeader(http.StatusNoContent)
}

// state returns the calls so far and the records accepted.
func (rc *stWebhookReceiver) state() (int, []audit.Record, [][]byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.calls, append([]audit.Record(nil), rc.records...), append([][]byte(nil), rc.raw...)
}

func newSTWebhook(t *testing.T, url, secret string, timeout time.Duration) *sinks.Webhook {
	t.Helper()
	s, err := sinks.NewWebhook(sinks.WebhookConfig{URL: url, Secret: config.Secret(secret), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestWebhookDeliversSignedBatches(t *testing.T) {
	rc := &stWebhookReceiver{secret: []byte(stWebhookSecret)}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := newSTWebhook(t, srv.URL+"/audit", stWebhookSecret, 0)
	recs := stRecords(7)
	ctx := context.Background()
	if err := s.Send(ctx, recs[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, recs[3:]); err != nil {
		t.Fatal(err)
	}
	calls, got, raw := rc.state()
	if calls != 2 || len(got) != len(recs) {
		t.Fatalf("%d calls, %d records", calls, len(got))
	}
	for i := range recs {
		want, _ := json.Marshal(recs[i])
		if !bytes.Equal(raw[i], want) {
			t.Errorf("record %d is not the canonical JSON:\n got %s\nwant %s", i, raw[i], want)
		}
		if got[i].ID != recs[i].ID || !got[i].Time.Equal(recs[i].Time) {
			t.Errorf("record %d = %s, want %s", i, got[i].ID, recs[i].ID)
		}
	}
}

func TestWebhookFailures(t *testing.T) {
	recs := stRecords(2)
	tests := []struct {
		name    string
		secret  string // the sink's; the receiver checks stWebhookSecret
		status  int
		want    string
		wantNot string
	}{
		{"wrong secret", "another-secret-of-enough-length", 0, "client error", "another-secret"},
		{"server error", stWebhookSecret, http.StatusBadGateway, "status 502 (server error)", stWebhookSecret},
		{"throttled", stWebhookSecret, http.StatusTooManyRequests, "status 429 (throttled)", stWebhookSecret},
		{"gone", stWebhookSecret, http.StatusGone, "status 410 (client error", stWebhookSecret},
		{"redirect", stWebhookSecret, http.StatusFound, "status 302 (redirect", stWebhookSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &stWebhookReceiver{secret: []byte(stWebhookSecret)}
			if tt.status != 0 {
				rc.fail = func(n int) int {
					if n == 1 {
						return tt.status
					}
					return 0
				}
			}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			s := newSTWebhook(t, srv.URL+"/hook?token=url-credential", tt.secret, 0)
			err := s.Send(context.Background(), recs)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			for _, secret := range []string{tt.wantNot, "url-credential"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals %q", err, secret)
				}
			}
			if _, got, _ := rc.state(); len(got) != 0 {
				t.Errorf("receiver kept %d records", len(got))
			}
			if tt.status == 0 {
				return
			}
			// The caller resends the whole batch: it arrives.
			if err := s.Send(context.Background(), recs); err != nil {
				t.Fatalf("resend: %v", err)
			}
			if _, got, _ := rc.state(); len(got) != len(recs) {
				t.Errorf("after resend %d records", len(got))
			}
		})
	}
}

func TestWebhookEmptyBatchAndDownReceiver(t *testing.T) {
	rc := &stWebhookReceiver{secret: []byte(stWebhookSecret)}
	srv := httptest.NewServer(rc)
	s := newSTWebhook(t, srv.URL, stWebhookSecret, time.Second)
	if err := s.Send(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if calls, _, _ := rc.state(); calls != 0 {
		t.Errorf("empty batch made %d calls", calls)
	}
	srv.Close()
	start := time.Now()
	if err := s.Send(context.Background(), stRecords(1)); err == nil {
		t.Error("Send to a closed receiver succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send took %v", d)
	}
}

func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s := newSTWebhook(t, srv.URL, stWebhookSecret, 200*time.Millisecond)
	start := time.Now()
	err := s.Send(context.Background(), stRecords(1))
	if err == nil {
		t.Fatal("Send to a hanging receiver succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send returned after %v, timeout is 200ms", d)
	}
	// A cancelled context ends a Send too.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	s2 := newSTWebhook(t, srv.URL, stWebhookSecret, time.Minute)
	start = time.Now()
	if err := s2.Send(ctx, stRecords(1)); err == nil {
		t.Fatal("Send with an expiring context succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send returned after %v, context deadline 50ms", d)
	}
}

func TestWebhookConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  sinks.WebhookConfig
		want string
	}{
		{"no url", sinks.WebhookConfig{Secret: stWebhookSecret}, "url is required"},
		{"relative url", sinks.WebhookConfig{URL: "/hook", Secret: stWebhookSecret}, "absolute http or https URL"},
		{"ftp url", sinks.WebhookConfig{URL: "ftp://x/y?key=hidden-in-url", Secret: stWebhookSecret}, "absolute http or https URL"},
		{"no secret", sinks.WebhookConfig{URL: "https://x"}, "secret must be at least 16 bytes"},
		{"short secret", sinks.WebhookConfig{URL: "https://x", Secret: "short-secret"}, "secret must be at least 16 bytes"},
		{"negative timeout", sinks.WebhookConfig{URL: "https://x", Secret: stWebhookSecret, Timeout: -1}, "timeout"},
		{"missing ca file", sinks.WebhookConfig{URL: "https://x", Secret: stWebhookSecret, CAFile: "/nonexistent/ca.pem"}, "ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sinks.NewWebhook(tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `audit sink "webhook" (webhook)`) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			for _, secret := range []string{stWebhookSecret, "short-secret", "hidden-in-url"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals a secret", err)
				}
			}
		})
	}
}

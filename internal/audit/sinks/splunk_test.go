package sinks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/audit/sinks"
)

const stHECToken = "11111111-2222-3333-4444-555555555555"

// stHEC is a Splunk HTTP Event Collector: it checks the path, the token
// and each event's documented format, answers as HEC does, and keeps the
// events of accepted requests, deduplicated on metadata.uid as a search
// would.
type stHEC struct {
	t          *testing.T
	sourceType string
	index      string
	// answer, when set, overrides the answer to request n (from 1).
	answer func(n int) (status int, body string)

	mu       sync.Mutex
	requests int
	sizes    []int
	events   []map[string]any
	seen     map[string]bool
	dups     int
}

var stHECTime = regexp.MustCompile(`^"time":[0-9]+\.[0-9]{3},`)

func (h *stHEC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	body, _ := io.ReadAll(r.Body)
	hecError := func(status, code int, text string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"text":%q,"code":%d}`, text, code)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/services/collector/event" {
		hecError(http.StatusNotFound, 404, "The requested URL was not found on this server.")
		return
	}
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		hecError(http.StatusUnauthorized, 2, "Token is required")
		return
	case auth != "Splunk "+stHECToken:
		hecError(http.StatusForbidden, 4, "Invalid token")
		return
	}
	if h.answer != nil {
		if st, b := h.answer(h.requests); st != 0 {
			w.WriteHeader(st)
			io.WriteString(w, b)
			return
		}
	}
	h.sizes = append(h.sizes, len(body))
	// Concatenated events: decode one after the other, and check the raw
	// time member (epoch seconds with milliseconds).
	dec := json.NewDecoder(bytes.NewReader(body))
	var batch []map[string]any
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			hecError(http.StatusBadRequest, 6, "Invalid data format")
			return
		}
		if !stHECTime.Match(raw[1:]) {
			h.t.Errorf("event does not start with a millisecond time: %.60s", raw)
		}
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			hecError(http.StatusBadRequest, 6, "Invalid data format")
			return
		}
		if _, ok := ev["event"].(map[string]any); !ok {
			hecError(http.StatusBadRequest, 12, "Event field is required")
			return
		}
		if ev["source"] != "gatehouse" || ev["sourcetype"] != h.sourceType {
			h.t.Errorf("source/sourcetype = %v/%v", ev["source"], ev["sourcetype"])
		}
		if idx, ok := ev["index"]; h.index == "" && ok || h.index != "" && idx != h.index {
			h.t.Errorf("index = %v, want %q", idx, h.index)
		}
		batch = append(batch, ev)
	}
	for _, ev := range batch {
		uid, _ := stGet(ev, "event.metadata.uid").(string)
		if h.seen[uid] {
			h.dups++
			continue
		}
		h.seen[uid] = true
		h.events = append(h.events, ev)
	}
	io.WriteString(w, `{"text":"Success","code":0}`)
}

func (h *stHEC) state() (requests int, events []map[string]any, dups int, sizes []int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests, append([]map[string]any(nil), h.events...), h.dups, append([]int(nil), h.sizes...)
}

func newSTHEC(t *testing.T) (*stHEC, *httptest.Server) {
	h := &stHEC{t: t, sourceType: "gatehouse:audit", seen: map[string]bool{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func newSTSplunk(t *testing.T, cfg sinks.SplunkConfig) *sinks.Splunk {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = stHECToken
	}
	s, err := sinks.NewSplunk(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSplunkEventFormat(t *testing.T) {
	h, srv := newSTHEC(t)
	h.sourceType, h.index = "mcp:audit", "security"
	s := newSTSplunk(t, sinks.SplunkConfig{URL: srv.URL + "/", Host: "fallback-host", SourceType: "mcp:audit", Index: "security"})
	recs := stRecords(3)
	recs[2].Replica = ""
	if err := s.Send(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	_, events, _, _ := h.state()
	if len(events) != 3 {
		t.Fatalf("%d events", len(events))
	}
	for i, ev := range events {
		r := recs[i]
		wantTime := float64(r.Time.UnixMilli()) / 1000
		if got := ev["time"].(float64); got < wantTime-0.0005 || got > wantTime+0.0005 {
			t.Errorf("time %v, want %v", got, wantTime)
		}
		wantHost := "gw-1"
		if i == 2 {
			wantHost = "fallback-host"
		}
		if ev["host"] != wantHost {
			t.Errorf("host %v, want %v", ev["host"], wantHost)
		}
		// The event is the OCSF form of the record.
		want := stRoundTrip(t, sinks.OCSF(r))
		if got := ev["event"]; !reflect.DeepEqual(got, any(want)) {
			t.Errorf("event %d:\n got %v\nwant %v", i, got, want)
		}
		for path, w := range map[string]any{
			"event.class_uid": 6003.0, "event.metadata.uid": r.ID, "event.api.operation": "tools/call",
			"event.metadata.sequence": float64(r.Seq),
		} {
			if got := stGet(ev, path); got != w {
				t.Errorf("%s = %v, want %v", path, got, w)
			}
		}
	}
}

// A failing call fails the Send; the caller resends the whole batch and
// the receiver ends up with every record, in order (duplicates of a
// partly delivered batch are dropped on metadata.uid).
func TestSplunkRetrySemantics(t *testing.T) {
	h, srv := newSTHEC(t)
	h.answer = func(n int) (int, string) {
		switch n {
		case 2:
			return http.StatusServiceUnavailable, `{"text":"Server is busy","code":9}`
		case 4:
			return http.StatusOK, `{"text":"Internal server error","code":8}`
		case 5:
			return http.StatusOK, `not json`
		}
		return 0, ""
	}
	// Small requests: each batch of 4 takes two calls.
	one := len(stRoundTripBytes(t, sinks.OCSF(stRecords(1)[0])))
	s := newSTSplunk(t, sinks.SplunkConfig{URL: srv.URL, MaxBatchBytes: 2*one + 600})
	recs := stRecords(12)
	ctx := context.Background()
	var errs []string
	for i := 0; i < len(recs); {
		batch := recs[i:min(i+4, len(recs))]
		if err := s.Send(ctx, batch); err != nil {
			errs = append(errs, err.Error())
			if len(errs) > 10 {
				t.Fatal("no progress:", errs)
			}
			continue // resend the same batch
		}
		i += len(batch)
	}
	want := []string{"Server is busy (HEC code 9)", "Internal server error (HEC code 8)", "unexpected answer: not json"}
	if len(errs) != len(want) {
		t.Fatalf("errors %q, want %d", errs, len(want))
	}
	for i, w := range want {
		if !strings.Contains(errs[i], w) || strings.Contains(errs[i], stHECToken) {
			t.Errorf("error %q, want it to contain %q and not the token", errs[i], w)
		}
	}
	if !strings.Contains(errs[0], "status 503") {
		t.Errorf("error %q does not give the status", errs[0])
	}
	_, events, dups, sizes := h.state()
	if len(events) != len(recs) {
		t.Fatalf("%d events, want %d", len(events), len(recs))
	}
	for i, ev := range events {
		if stGet(ev, "event.metadata.uid") != recs[i].ID {
			t.Errorf("event %d is %v, want %s", i, stGet(ev, "event.metadata.uid"), recs[i].ID)
		}
	}
	if dups == 0 {
		t.Error("no duplicates: the failures did not come after a delivered part of a batch")
	}
	for _, n := range sizes {
		if n > 2*one+600 {
			t.Errorf("request of %d bytes, above max_batch_bytes", n)
		}
	}
}

func TestSplunkClientErrors(t *testing.T) {
	_, srv := newSTHEC(t)
	tests := []struct {
		name string
		cfg  sinks.SplunkConfig
		want string
	}{
		{"wrong token", sinks.SplunkConfig{URL: srv.URL, Token: "wrong-token-value"}, "status 403 (client error"},
		{"wrong path", sinks.SplunkConfig{URL: srv.URL + "/prefix"}, "status 404 (client error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSTSplunk(t, tt.cfg)
			err := s.Send(context.Background(), stRecords(1))
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "wrong-token-value") || strings.Contains(err.Error(), stHECToken) {
				t.Errorf("error %q reveals the token", err)
			}
		})
	}
}

func TestSplunkEmptyBatchAndDownReceiver(t *testing.T) {
	h, srv := newSTHEC(t)
	s := newSTSplunk(t, sinks.SplunkConfig{URL: srv.URL, Timeout: time.Second})
	if err := s.Send(context.Background(), []audit.Record{}); err != nil {
		t.Fatal(err)
	}
	if n, _, _, _ := h.state(); n != 0 {
		t.Errorf("empty batch made %d requests", n)
	}
	srv.Close()
	start := time.Now()
	if err := s.Send(context.Background(), stRecords(2)); err == nil {
		t.Error("Send to a closed HEC succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send took %v", d)
	}
}

func TestSplunkConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  sinks.SplunkConfig
		want string
	}{
		{"no url", sinks.SplunkConfig{Token: stHECToken}, "url is required"},
		{"bad url", sinks.SplunkConfig{URL: "splunk:8088", Token: stHECToken}, "absolute http or https URL"},
		{"no token", sinks.SplunkConfig{URL: "https://splunk:8088"}, "token is required"},
		{"token with space", sinks.SplunkConfig{URL: "https://splunk:8088", Token: "abc def-secret"}, "white space"},
		{"negative batch", sinks.SplunkConfig{URL: "https://splunk:8088", Token: stHECToken, MaxBatchBytes: -1}, "max_batch_bytes"},
		{"negative timeout", sinks.SplunkConfig{URL: "https://splunk:8088", Token: stHECToken, Timeout: -time.Second}, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sinks.NewSplunk(tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `audit sink "splunk" (splunk)`) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), stHECToken) || strings.Contains(err.Error(), "def-secret") {
				t.Errorf("error %q reveals the token", err)
			}
		})
	}
}

// stRoundTripBytes is v's JSON.
func stRoundTripBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// quick is a short run: long enough for many calls, with no assertion on
// how many, since CI machines vary wildly.
func quick(url string) Config {
	return Config{URL: url, Sessions: 2, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond}
}

// runSome is Run, repeated with longer windows while no call completes.
// On a CPU-starved machine (throttled CI, -race, parallel test binaries)
// a 300ms window can pass without a single completed call; that says
// nothing about correctness, and a real "never completes" bug still fails.
func runSome(t *testing.T, cfg Config) *Result {
	t.Helper()
	for attempt := 1; ; attempt++ {
		res, err := Run(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.Requests > 0 || attempt == 3 {
			return res
		}
		t.Logf("no call completed in %v; retrying with a longer window", cfg.Duration)
		cfg.Duration *= 4
	}
}

func TestRunAgainstEchoServer(t *testing.T) {
	for _, stateless := range []bool{false, true} {
		t.Run(fmt.Sprintf("stateless=%v", stateless), func(t *testing.T) {
			srv := httptest.NewServer(NewEchoHandlerWith(EchoOptions{Stateless: stateless}))
			defer srv.Close()

			res := runSome(t, quick(srv.URL))
			if res.Requests == 0 {
				t.Errorf("requests = 0, want > 0")
			}
			if res.Errors != 0 {
				t.Errorf("errors = %d (%v), want 0", res.Errors, res.ErrorList)
			}
			if !(res.P50Ms <= res.P90Ms && res.P90Ms <= res.P99Ms && res.P99Ms <= res.MaxMs) {
				t.Errorf("percentiles out of order: %+v", res)
			}
			if res.ClientCPU == nil || res.ClientCPU.CPUSeconds < 0 {
				t.Errorf("client cpu = %+v, want a non-negative measurement", res.ClientCPU)
			}
		})
	}
}

func TestEchoToolRejectsBadArguments(t *testing.T) {
	srv := httptest.NewServer(NewEchoHandler())
	defer srv.Close()
	cfg := quick(srv.URL)
	cfg.Args = json.RawMessage(`{"message": 5}`)
	res := runSome(t, cfg)
	if res.Requests == 0 || res.Errors != res.Requests {
		t.Fatalf("requests = %d, errors = %d; want every call to fail", res.Requests, res.Errors)
	}
	if !strings.Contains(res.ErrorList[0].Message, "tool error: invalid arguments") {
		t.Errorf("error samples = %v", res.ErrorList)
	}
}

func TestRunMeasuresPID(t *testing.T) {
	srv := httptest.NewServer(NewEchoHandler())
	defer srv.Close()
	cfg := quick(srv.URL)
	cfg.PID = os.Getpid() // the echo handler runs in this process
	res := runSome(t, cfg)
	c := res.ServerCPU
	if c == nil {
		t.Fatal("no server cpu measurement")
	}
	if c.PID != cfg.PID || c.CPUSeconds < 0 || c.CPUUsPerCall < 0 || c.CPUSource == "" {
		t.Errorf("server cpu = %+v", c)
	}
}

// fakeMCP is a hand-written Streamable HTTP server, to exercise response
// shapes the go-sdk server does not produce on demand.
type fakeMCP struct {
	t       *testing.T
	sse     bool
	reply   func(id string) string // the tools/call response for id
	deletes atomic.Int32
}

const fakeSessionID = "fake-session-1"

func (f *fakeMCP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete {
		if r.Header.Get("Mcp-Session-Id") == fakeSessionID {
			f.deletes.Add(1)
		}
		return
	}
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch msg.Method {
	case "initialize":
		w.Header().Set("Mcp-Session-Id", fakeSessionID)
		f.write(w, `{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"fake","version":"0"}}}`)
	case "notifications/initialized":
		w.WriteHeader(http.StatusAccepted)
	case "tools/call":
		if r.Header.Get("Mcp-Session-Id") != fakeSessionID || r.Header.Get("MCP-Protocol-Version") != "2025-11-25" {
			http.Error(w, "missing session or version header", http.StatusBadRequest)
			return
		}
		f.write(w, f.reply(string(msg.ID)))
	default:
		http.Error(w, "unexpected method "+msg.Method, http.StatusBadRequest)
	}
}

// write sends msg as JSON, or as an event stream that first sends a
// priming event and an unrelated notification, as real servers do.
func (f *fakeMCP) write(w http.ResponseWriter, msg string) {
	if !f.sse {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, msg)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, "id: x\ndata: \n\n")
	fmt.Fprint(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"hi\"}}\n\n")
	fmt.Fprintf(w, "id: y\nevent: message\ndata: %s\n\n", msg)
}

func echoReply(id string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"result":{"content":[{"type":"text","text":"hello"}]}}`
}

func TestRunHandlesEventStreams(t *testing.T) {
	fake := &fakeMCP{t: t, sse: true, reply: echoReply}
	srv := httptest.NewServer(fake)
	defer srv.Close()

	res := runSome(t, quick(srv.URL))
	if res.Requests == 0 || res.Errors != 0 {
		t.Errorf("requests = %d, errors = %d (%v); want > 0 and 0", res.Requests, res.Errors, res.ErrorList)
	}
	if got := fake.deletes.Load(); got != 2 {
		t.Errorf("DELETEs with the session id = %d, want 2", got)
	}
}

func TestRunCountsErrors(t *testing.T) {
	tests := []struct {
		name  string
		reply func(id string) string
		want  string // in the first error sample
		// wantSSE replaces want for event streams, where a reply with the
		// wrong id is just another event and the stream ends unanswered.
		wantSSE string
	}{
		{"json-rpc error", func(id string) string {
			return `{"jsonrpc":"2.0","id":` + id + `,"error":{"code":-32000,"message":"boom"}}`
		}, "json-rpc error -32000: boom", ""},
		{"tool error", func(id string) string {
			return `{"jsonrpc":"2.0","id":` + id + `,"result":{"isError":true,"content":[{"type":"text","text":"bad input"}]}}`
		}, "tool error: bad input", ""},
		{"wrong id", func(string) string { return echoReply("999999999") }, "does not match", "without a response"},
	}
	for _, tt := range tests {
		for _, sse := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/sse=%v", tt.name, sse), func(t *testing.T) {
				srv := httptest.NewServer(&fakeMCP{t: t, sse: sse, reply: tt.reply})
				defer srv.Close()

				res := runSome(t, quick(srv.URL))
				if res.Requests == 0 || res.Errors != res.Requests {
					t.Fatalf("requests = %d, errors = %d; want every request to fail", res.Requests, res.Errors)
				}
				want := tt.want
				if sse && tt.wantSSE != "" {
					want = tt.wantSSE
				}
				if len(res.ErrorList) == 0 || !strings.Contains(res.ErrorList[0].Message, want) {
					t.Errorf("error samples = %v, want one containing %q", res.ErrorList, want)
				}
			})
		}
	}
}

func TestRunCountsHTTPErrors(t *testing.T) {
	fake := &fakeMCP{t: t, reply: echoReply}
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Fail every other tools/call.
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"tools/call"`)) && calls.Add(1)%2 == 0 {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		fake.ServeHTTP(w, r)
	}))
	defer srv.Close()

	res := runSome(t, quick(srv.URL))
	if res.Errors == 0 || res.Errors >= res.Requests {
		t.Errorf("requests = %d, errors = %d; want some but not all to fail", res.Requests, res.Errors)
	}
	if len(res.ErrorList) != 1 || res.ErrorList[0].Message != "http status 503: overloaded" {
		t.Errorf("error samples = %v", res.ErrorList)
	}
}

func TestRunFailsWhenNoSessionInitializes(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := Run(t.Context(), quick(srv.URL))
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Run error = %v, want a 404 initialize failure", err)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{URL: "ftp://example.com/"},
		{URL: "http://127.0.0.1:1/", Args: json.RawMessage(`[1]`)},
		{URL: "http://127.0.0.1:1/", Sessions: -1},
	} {
		if _, err := Run(t.Context(), cfg); err == nil {
			t.Errorf("Run(%+v) succeeded, want an error", cfg)
		}
	}
}

func TestRunInterruptedDuringWarmup(t *testing.T) {
	srv := httptest.NewServer(NewEchoHandler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	cfg := quick(srv.URL)
	cfg.Warmup = time.Minute
	if _, err := Run(ctx, cfg); err == nil {
		t.Fatal("Run succeeded, want an interruption error")
	}
}

func TestCPUSampleOwnProcess(t *testing.T) {
	r, err := newCPUReader(os.Getpid())
	if err != nil {
		t.Fatalf("newCPUReader: %v", err)
	}
	start, err := r.sample()
	if err != nil {
		t.Fatalf("sample: %v", err)
	}
	spin(20 * time.Millisecond)
	end, err := r.sample()
	if err != nil {
		t.Fatalf("sample: %v", err)
	}
	d := diff(start, end)
	if d.total < 0 || d.stat < 0 {
		t.Errorf("cpu delta = %+v, want non-negative", d)
	}
	if d.source != "stat" && d.source != "schedstat" {
		t.Errorf("source = %q", d.source)
	}
	if _, err := newCPUReader(-1); err == nil {
		t.Error("newCPUReader(-1) succeeded")
	}
}

// spin burns CPU so there is something to measure.
func spin(d time.Duration) {
	x := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		x++
	}
	_ = x
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := []byte("42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 1000 50\n")
	u, s, err := parseStat(line)
	if err != nil || u != 250 || s != 75 {
		t.Fatalf("parseStat = %d, %d, %v; want 250, 75, nil", u, s, err)
	}
	if _, _, err := parseStat([]byte("42 (x) S 1")); err == nil {
		t.Error("parseStat accepted a truncated line")
	}
}

func TestClockTicks(t *testing.T) {
	if hz := clockTicks(); hz <= 0 || hz > 10000 {
		t.Errorf("clockTicks = %d", hz)
	}
}

func TestFindEvent(t *testing.T) {
	s := &session{}
	stream := ": comment\r\n" +
		"id: 1\r\ndata:\r\n\r\n" + // priming event, CRLF line ends
		"event: ping\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n" + // not a message event
		"data: {\"jsonrpc\":\"2.0\",\n" + // a message split over data lines
		"data: \"id\":7,\"result\":{\"isError\":true}}" // and no final blank line
	raw, err := s.findEvent([]byte(stream), 7)
	if err != nil {
		t.Fatalf("findEvent: %v", err)
	}
	if !s.resp.Result.IsError || !bytes.Contains(raw, []byte(`"id":7`)) {
		t.Errorf("decoded %+v from %q", s.resp, raw)
	}
	if _, err := s.findEvent([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":8}\n\n"), 7); err == nil {
		t.Error("findEvent accepted a stream without the wanted id")
	}
}

func TestRPCID(t *testing.T) {
	for in, want := range map[string]rpcID{
		`12`:    {n: 12, ok: true},
		`-3`:    {n: -3, ok: true},
		`"12"`:  {},
		`null`:  {},
		`1.5`:   {},
		`1e3`:   {},
		`-`:     {},
		`12345`: {n: 12345, ok: true},
	} {
		var id rpcID
		if err := id.UnmarshalJSON([]byte(in)); err != nil || id != want {
			t.Errorf("UnmarshalJSON(%s) = %+v, %v; want %+v", in, id, err, want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{0.5: 50, 0.9: 90, 0.99: 99, 1: 100, 0: 1} {
		if got := percentile(d, p); got != want {
			t.Errorf("percentile(%v) = %v, want %v", p, got, want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}

func TestErrorTallyKeepsFirstKinds(t *testing.T) {
	var a, b errorTally
	for i := range 10 {
		a.add(fmt.Sprint("e", i))
	}
	b.add("e0")
	b.add("other")
	a.merge(b)
	if a.total != 12 || len(a.kinds) != maxErrorKinds || a.kinds[0].Count != 2 {
		t.Errorf("tally = %+v", a)
	}
}

func TestResultOutput(t *testing.T) {
	r := &Result{
		URL: "http://x/", Tool: "echo", Sessions: 4, DurationS: 3, Requests: 300, RPS: 100,
		P50Ms: 1.5, Errors: 1, ErrorList: []ErrorSample{{Message: "boom", Count: 1}},
		ServerCPU: &ServerCPU{PID: 9, CPUSeconds: 0.3, CPUSource: "schedstat", CPUUsPerCall: 1000},
	}
	var table bytes.Buffer
	r.WriteTable(&table)
	for _, want := range []string{"http://x/", "requests/s", "p50 1.500", "1 × boom", "pid 9", "1000.0 µs"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}

	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(data, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"requests", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors", "error_samples", "cpu_us_per_call", "pid"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, data)
		}
	}
	if _, ok := keys["client_cpu_s"]; ok {
		t.Errorf("JSON has client cpu keys without a measurement: %s", data)
	}
}

// BenchmarkClientCall measures a call against the in-process echo server;
// the figures include the server's share.
func BenchmarkClientCall(b *testing.B) {
	benchmarkCall(b, NewEchoHandler())
}

func benchmarkCall(b *testing.B, h http.Handler) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	rt := newTransport(1)
	defer rt.CloseIdleConnections()
	tgt, err := newTarget(rt, srv.URL, nil, DefaultProtocolVersion, DefaultTool, json.RawMessage(DefaultArgs))
	if err != nil {
		b.Fatal(err)
	}
	s, err := newSession(tgt)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if err := s.initialize(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.close(context.Background())
	b.ReportAllocs()
	for b.Loop() {
		if err := s.call(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientCallCanned isolates the client: the server answers every
// call with a canned reply, so allocations and time are mostly ours.
func BenchmarkClientCallCanned(b *testing.B) {
	benchmarkCall(b, &fakeMCP{reply: echoReply})
}

func BenchmarkClientCallCannedSSE(b *testing.B) {
	benchmarkCall(b, &fakeMCP{sse: true, reply: echoReply})
}

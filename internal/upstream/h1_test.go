package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

func TestH1PoolFraming(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Test") != "yes" || r.Method != http.MethodPost || r.URL.RequestURI() != "/mcp?x=1" {
			http.Error(w, "bad request line or headers", 400)
			return
		}
		switch string(body) {
		case "chunked":
			w.Write([]byte("part1"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part2"))
		case "close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		default:
			w.Header().Set("Content-Length", "5")
			w.Write([]byte("hello"))
		}
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	p := newH1Pool(srv.URL + "/mcp?x=1")
	if p == nil {
		t.Fatal("no pool")
	}
	defer p.close()
	h := http.Header{"X-Test": {"yes"}}
	for _, tc := range []struct{ body, want string }{
		{"length", "hello"}, {"chunked", "part1part2"}, {"length", "hello"}, {"close", "bye"}, {"length", "hello"},
	} {
		resp, err := p.post(context.Background(), "/mcp?x=1", h, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != tc.want || resp.StatusCode != 200 {
			t.Fatalf("%s: got %q %v %d", tc.body, got, err, resp.StatusCode)
		}
	}
	// Three keep-alive requests share one connection; "close" forces a new
	// one for the last request.
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections = %d, want 2", n)
	}
}

func TestH1PoolRetriesConnectionClosedWhileIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := accepted.Add(1)
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				if _, err := c.Read(buf); err != nil {
					return
				}
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
				if n == 1 {
					return // close the kept-alive connection after one response
				}
				c.Read(buf)
			}()
		}
	}()
	p := newH1Pool("http://" + ln.Addr().String() + "/")
	defer p.close()
	for i := 0; i < 2; i++ {
		resp, err := p.post(context.Background(), "/", nil, []byte("{}"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if accepted.Load() != 2 {
		t.Fatalf("accepted %d connections, want 2", accepted.Load())
	}
}

func TestH1PoolCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	p := newH1Pool(srv.URL)
	defer p.close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.post(ctx, "/", nil, []byte("{}"))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"us-west1":           "us-west1",
		"Hello, 世界":          "=?base64?SGVsbG8sIOS4lueVjA==?=",
		" padded ":           "=?base64?IHBhZGRlZCA=?=",
		"=?base64?literal?=": "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=",
	} {
		if got := headerValue(in); got != want {
			t.Errorf("headerValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	err := fmt.Errorf("remote: %w", &url.Error{Op: "Post", URL: "http://user:pw@h.example/mcp?api_key=SECRET", Err: errors.New("connection refused")})
	got := redactURL(err).Error()
	if want := `remote: Post "http://h.example/mcp": connection refused`; got != want {
		t.Fatalf("redactURL = %q, want %q", got, want)
	}
}

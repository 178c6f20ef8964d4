package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// fixtureConfig serves the conformance fixture (stdio) alone, names
// unchanged: the gateway forwards lists and results byte for byte.
const fixtureConfig = `
upstreams:
  fx: {command: "{{fixture}}"}
servers:
  fx:
    upstreams: [{upstream: fx, prefix: ""}]
`

// progressCall is a slow tool call of the fixture: three progress
// notifications 50 ms apart, then the result.
const progressCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":"tok-1"}}}`

// TestResumeResponseStream drops the SSE response of a slow tool call after
// its first event and resumes it with GET and Last-Event-ID (2025-11-25):
// the remaining events, including the final response, arrive exactly once.
func TestResumeResponseStream(t *testing.T) {
	h := startGateway(t, render(t, fixtureConfig))
	for _, from := range []string{"priming_event", "first_message"} {
		t.Run("from_"+from, func(t *testing.T) {
			c := newRaw(t, h.URL("fx"))
			c.initialize(v20251125)

			es := newEventStream(t, c.post(progressCall))
			priming, err := es.next()
			if err != nil {
				t.Fatalf("reading the priming event: %v", err)
			}
			if priming.ID == "" || !priming.Empty() {
				t.Fatalf("first event = %+v, want a priming event (an id, no data)", priming)
			}
			first, err := es.nextMsg()
			if err != nil {
				t.Fatalf("reading the first message: %v", err)
			}
			if first.Method != "notifications/progress" || first.EventID == "" {
				t.Fatalf("first message = %s (id %q), want a progress notification with an event id", first, first.EventID)
			}
			es.close() // the connection drops

			var want []string
			lastID := priming.ID
			if from == "first_message" {
				lastID = first.EventID
			} else {
				want = append(want, "progress 0")
			}
			want = append(want, "progress 50", "progress 100", "result")

			// The gateway may not have noticed the dropped connection yet
			// (409: the stream is still attached); a client retries.
			var msgs []wireMsg
			eventually(t, "resuming with Last-Event-ID "+lastID, func() error {
				req := c.request(ctxT(t), http.MethodGet, "")
				req.Header.Set("Last-Event-ID", lastID)
				resp := c.do(req)
				if resp.StatusCode == http.StatusConflict {
					resp.Body.Close()
					return errors.New("409: stream still attached")
				}
				if resp.StatusCode != http.StatusOK {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Fatalf("resume: HTTP %d %s", resp.StatusCode, b)
				}
				msgs = readMessages(t, resp)
				return nil
			})
			var got []string
			for _, m := range msgs {
				switch {
				case m.Method == "notifications/progress":
					var p struct {
						Token    any     `json:"progressToken"`
						Progress float64 `json:"progress"`
					}
					_ = json.Unmarshal(m.Params, &p)
					if p.Token != "tok-1" {
						t.Errorf("progress token = %v, want the client's tok-1", p.Token)
					}
					got = append(got, fmt.Sprintf("progress %.0f", p.Progress))
				case string(m.ID) == "7" && m.Result != nil:
					got = append(got, "result")
				default:
					got = append(got, m.String())
				}
			}
			if strings.Join(got, "; ") != strings.Join(want, "; ") {
				t.Errorf("resumed events = %q, want %q", got, want)
			}
		})
	}
}

// TestSessionEndpointRules checks the session rules of the Streamable HTTP
// transport that clients rely on to recover.
func TestSessionEndpointRules(t *testing.T) {
	h := startGateway(t, render(t, fixtureConfig))

	t.Run("unknown_last_event_id_is_400", func(t *testing.T) {
		c := newRaw(t, h.URL("fx"))
		c.initialize(v20251125)
		for _, id := range []string{"999.1", "garbage", "0.x"} {
			req := c.request(ctxT(t), http.MethodGet, "")
			req.Header.Set("Last-Event-ID", id)
			resp := c.do(req)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("Last-Event-ID %q: HTTP %d, want 400", id, resp.StatusCode)
			}
		}
	})

	t.Run("second_standalone_stream_is_409", func(t *testing.T) {
		c := newRaw(t, h.URL("fx"))
		c.initialize(v20251125)
		ctx, cancel := context.WithCancel(ctxT(t))
		defer cancel()
		first := c.do(c.request(ctx, http.MethodGet, ""))
		if first.StatusCode != http.StatusOK {
			t.Fatalf("first GET: HTTP %d", first.StatusCode)
		}
		es := newEventStream(t, first)
		if _, err := es.next(); err != nil { // the priming event: the stream is attached
			t.Fatal(err)
		}
		second := c.do(c.request(ctxT(t), http.MethodGet, ""))
		msgs := readMessages(t, second)
		if second.StatusCode != http.StatusConflict {
			t.Errorf("second GET: HTTP %d %v, want 409", second.StatusCode, msgs)
		}
	})

	t.Run("post_after_delete_is_404", func(t *testing.T) {
		c := newRaw(t, h.URL("fx"))
		c.initialize(v20251125)
		resp := c.do(c.request(ctxT(t), http.MethodDelete, ""))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("DELETE: HTTP %d", resp.StatusCode)
		}
		resp = c.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
		msgs := readMessages(t, resp)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST after DELETE: HTTP %d %v, want 404", resp.StatusCode, msgs)
		}
	})

	t.Run("post_without_session_is_400", func(t *testing.T) {
		c := newRaw(t, h.URL("fx"))
		c.version = v20251125
		resp := c.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
		msgs := readMessages(t, resp)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST without Mcp-Session-Id: HTTP %d %v, want 400", resp.StatusCode, msgs)
		}
	})

	t.Run("standalone_stream_gets_resource_updates", func(t *testing.T) {
		c := newRaw(t, h.URL("fx"))
		c.initialize(v20251125)
		if m := c.call(`{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"test://watched-resource"}}`); m.Error != nil {
			t.Fatalf("resources/subscribe: %s", m.Error)
		}
		// The fixture announces an update of the watched resource every 3s.
		es := newEventStream(t, c.do(c.request(ctxT(t), http.MethodGet, "")))
		for {
			m, err := es.nextMsg()
			if err != nil {
				t.Fatalf("standalone stream ended before notifications/resources/updated: %v", err)
			}
			if m.Method == "notifications/resources/updated" {
				if !strings.Contains(string(m.Params), "test://watched-resource") {
					t.Errorf("update for %s, want test://watched-resource", m.Params)
				}
				return
			}
		}
	})
}

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// listChanged counts notifications/tools/list_changed a client receives.
type listChanged struct {
	n  atomic.Int64
	ch chan struct{}
}

func newListChanged() *listChanged { return &listChanged{ch: make(chan struct{}, 1024)} }

func (l *listChanged) handler(context.Context, *sdk.ToolListChangedRequest) {
	l.n.Add(1)
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

// drain forgets the notifications received so far.
func (l *listChanged) drain() {
	for {
		select {
		case <-l.ch:
		default:
			return
		}
	}
}

// missingTools returns the wanted tools a session does not list.
func missingTools(t *testing.T, cs *sdk.ClientSession, want ...string) []string {
	names := toolNames(t, cs)
	var missing []string
	for _, w := range want {
		if !slices.Contains(names, w) {
			missing = append(missing, w)
		}
	}
	return missing
}

func hasPrefixed(names []string, prefix string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, prefix) })
}

// TestUpstreamKilledMidSession kills a stdio upstream under a live session:
// the other upstream keeps serving, calls to the dead one fail with a clear
// error, and it comes back by itself, announced by list_changed — also to a
// session that started while it was down.
func TestUpstreamKilledMidSession(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "down")
	h := startGateway(t, render(t, `
upstreams:
  crm: {command: "{{gatehouse}}", args: [demo-server, crm]}
  tickets:
    command: "{{self}}"
    args: [demo-server, tickets]
    env: {E2E_ROLE: gated, E2E_GATE: "{{gate}}", E2E_EXEC: "{{gatehouse}}"}
servers:
  support:
    upstreams: [{upstream: crm}, {upstream: tickets}]
`, "gate", gate))

	early := newListChanged()
	cs := connect(t, h.URL("support"), v20251125, &sdk.ClientOptions{ToolListChangedHandler: early.handler})
	callText(t, cs, "tickets_get_ticket", map[string]any{"id": "TCK-5002"})
	pid := h.GW.UpstreamPID("tickets")
	if pid == 0 {
		t.Fatal("UpstreamPID(tickets) = 0 with a live session")
	}

	// Kill it and keep it from restarting until the checks below are done.
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "tools/list without the dead upstream", func() error {
		names := toolNames(t, cs)
		if hasPrefixed(names, "tickets_") {
			return fmt.Errorf("still lists %v", names)
		}
		if !slices.Contains(names, "crm_get_customer") {
			return fmt.Errorf("lost the live upstream's tools: %v", names)
		}
		return nil
	})
	eventually(t, "list_changed after the upstream died", func() error {
		if early.n.Load() == 0 {
			return errors.New("no notifications/tools/list_changed")
		}
		return nil
	})
	if got := callText(t, cs, "crm_get_customer", map[string]any{"id": "CUST-1001"}); !strings.Contains(got, "Priya Raman") {
		t.Errorf("crm_get_customer = %q", got)
	}
	_, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "tickets_get_ticket", Arguments: map[string]any{"id": "TCK-5002"}})
	if we := rpcError(t, err); we.Code != -31001 || !strings.Contains(we.Message, `"tickets"`) {
		t.Errorf("call to the dead upstream: error %d %q, want -31001 naming \"tickets\"", we.Code, we.Message)
	}

	// A session that starts while the upstream is down.
	late := newListChanged()
	cs2 := connect(t, h.URL("support"), v20251125, &sdk.ClientOptions{ToolListChangedHandler: late.handler})
	if names := toolNames(t, cs2); hasPrefixed(names, "tickets_") || !slices.Contains(names, "crm_get_customer") {
		t.Errorf("session started during the outage lists %v", names)
	}

	early.drain()
	late.drain()
	if err := os.Remove(gate); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the upstream restarts by itself", func() error {
		_, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: "tickets_get_ticket", Arguments: map[string]any{"id": "TCK-5002"}})
		return err
	})
	if got := h.GW.UpstreamPID("tickets"); got == 0 || got == pid {
		t.Errorf("UpstreamPID after restart = %d (was %d)", got, pid)
	}
	for _, c := range []struct {
		name string
		lc   *listChanged
	}{{"session_from_before", early}, {"session_started_during_outage", late}} {
		t.Run(c.name, func(t *testing.T) {
			eventually(t, "list_changed after the restart", func() error {
				select {
				case <-c.lc.ch:
					return nil
				default:
					return errors.New("no notifications/tools/list_changed since the upstream came back")
				}
			})
		})
	}
	if m := missingTools(t, cs2, "tickets_get_ticket", "crm_get_customer"); len(m) > 0 {
		t.Errorf("after the restart the late session misses %v", m)
	}
}

// reloadConfig is the configuration the reload test alternates between:
// variant A and B differ in a description override, an unrelated server's
// instructions, an extra upstream (a raw stdio server, marked in its
// arguments so its processes can be counted), and the settings of the
// tickets upstream and of an HTTP upstream, which are therefore replaced on
// every reload.
func reloadConfig(t *testing.T, variant, webURL string) string {
	extraUpstream, extraMember, ticketsTimeout := "", "", "30s"
	if variant == "B" {
		extraUpstream = `  extra: {command: "{{self}}", args: [extra-marker], env: {E2E_ROLE: raw-stdio}}`
		extraMember = `      - {upstream: extra}`
		ticketsTimeout = "29s"
	}
	return render(t, `
upstreams:
  crm:     {command: "{{gatehouse}}", args: [demo-server, crm]}
  tickets: {command: "{{gatehouse}}", args: [demo-server, tickets], env: {E2E_MARK: reload-marker}, timeouts: {request: {{tt}}}}
  chat:    {command: "{{gatehouse}}", args: [demo-server, chat]}
  web:     {url: "{{web}}", headers: {X-Variant: "{{v}}"}}
`+extraUpstream+`
servers:
  support:
    upstreams:
      - upstream: crm
        tools:
          get_customer: {description: "DESC-{{v}}"}
      - {upstream: tickets}
      - {upstream: web}
`+extraMember+`
  other:
    instructions: "other {{v}}"
    upstreams: [{upstream: chat}]
`, "v", variant, "tt", ticketsTimeout, "web", webURL)
}

// childProcesses counts this process's children whose command line or
// environment contains marker.
func childProcesses(t *testing.T, marker string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	me := strconv.Itoa(os.Getpid())
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may contain spaces; split after ')'.
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != me || f[0] == "Z" {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if bytes.Contains(cmd, []byte(marker)) || bytes.Contains(env, []byte(marker)) {
			n++
		}
	}
	return n
}

// TestReloadDuringTrafficLosesNoCall reloads the configuration many times
// while several goroutines call tools through one session and others open
// new sessions: every call succeeds, the last configuration is in force,
// and upstreams removed on the way do not linger.
func TestReloadDuringTrafficLosesNoCall(t *testing.T) {
	web := echoServer("web")
	webURL := serveStreamable(t, web)
	h := startGateway(t, reloadConfig(t, "A", webURL))
	shared := connect(t, h.URL("support"), v20251125, nil)

	var (
		stop   = make(chan struct{})
		wg     sync.WaitGroup
		calls  atomic.Int64
		mu     sync.Mutex
		failed []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failed = append(failed, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	call := func(cs *sdk.ClientSession, i int) {
		name, args, want := "crm_get_customer", map[string]any{"id": "CUST-1005"}, "Sophie Laurent"
		switch i % 3 {
		case 1:
			name, args, want = "tickets_get_ticket", map[string]any{"id": "TCK-5003"}, "storefront connector"
		case 2:
			name, args, want = "web_hello", map[string]any{"text": "again"}, "web says hello again"
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
		switch {
		case err != nil:
			fail("%s: %v", name, err)
		case res.IsError || !strings.Contains(contentText(res.Content), want):
			fail("%s: %s", name, contentText(res.Content))
		}
		calls.Add(1)
	}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				call(shared, i)
			}
		}()
	}
	// Clients that come and go: stateful sessions, and stateless
	// (2026-07-28) clients, whose requests each stand alone.
	for w := range 4 {
		version := v20251125
		if w%2 == 1 {
			version = v20260728
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				c := sdk.NewClient(&sdk.Implementation{Name: "reload", Version: "1"}, nil)
				cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: h.URL("support"), MaxRetries: -1}, &sdk.ClientSessionOptions{ProtocolVersion: version})
				cancel()
				if err != nil {
					fail("connect: %v", err)
					continue
				}
				call(cs, i)
				call(cs, i+1)
				_ = cs.Close()
			}
		}()
	}

	const reloads = 40
	for i := range reloads {
		variant := "A"
		if i%2 == 0 {
			variant = "B"
		}
		h.apply(reloadConfig(t, variant, webURL))
		// Let traffic run across this configuration before the next one.
		base := calls.Load()
		eventually(t, "calls progress after a reload", func() error {
			if calls.Load() < base+6 {
				return errors.New("no progress")
			}
			return nil
		})
	}
	close(stop)
	wg.Wait()
	for _, f := range failed {
		t.Errorf("call failed during reloads: %s", f)
	}
	t.Logf("%d calls across %d reloads", calls.Load(), reloads)

	// The last configuration (A: i = 39) is in force, for old and new sessions.
	fresh := connect(t, h.URL("support"), v20251125, nil)
	for _, cs := range []*sdk.ClientSession{shared, fresh} {
		res, err := cs.ListTools(ctxT(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tool := range res.Tools {
			if tool.Name == "crm_get_customer" && tool.Description != "DESC-A" {
				t.Errorf("crm_get_customer description = %q, want DESC-A", tool.Description)
			}
			if strings.HasPrefix(tool.Name, "extra_") {
				t.Errorf("removed upstream still listed: %s", tool.Name)
			}
		}
	}

	// Variant A has no extra upstream and its own tickets process: none of
	// the processes replaced on the way may outlive the reloads.
	eventually(t, "replaced upstream processes exit", func() error {
		if n := childProcesses(t, "extra-marker"); n != 0 {
			return fmt.Errorf("%d extra upstream process(es) still running", n)
		}
		// One for stateful sessions, one for stateless traffic.
		if n := childProcesses(t, "reload-marker"); n > 2 {
			return fmt.Errorf("%d tickets processes running, want at most 2", n)
		}
		return nil
	})
	// Likewise the HTTP upstream's sessions: one per live client session,
	// and the gateway's own, which carries stateless traffic.
	eventually(t, "replaced HTTP upstream sessions end", func() error {
		n := 0
		for range web.Sessions() {
			n++
		}
		if n > 3 {
			return fmt.Errorf("the HTTP upstream has %d sessions for 2 client sessions and the gateway's own", n)
		}
		return nil
	})
}

// TestRemovedUpstreamFailsCleanly removes an upstream while a session uses
// it: calls to its tools fail at once with a clear error instead of hanging,
// and the rest of the server keeps working.
func TestRemovedUpstreamFailsCleanly(t *testing.T) {
	raw := newRawHTTP(t)
	full := render(t, `
upstreams:
  crm:     {command: "{{gatehouse}}", args: [demo-server, crm]}
  tickets: {command: "{{gatehouse}}", args: [demo-server, tickets]}
  raw:     {url: "{{raw}}"}
servers:
  support:
    upstreams: [{upstream: crm}, {upstream: tickets}, {upstream: raw, prefix: ""}]
`, "raw", raw.URL())
	reduced := render(t, `
upstreams:
  crm: {command: "{{gatehouse}}", args: [demo-server, crm]}
servers:
  support:
    upstreams: [{upstream: crm}]
`)
	h := startGateway(t, full)
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			h.apply(full)
			cs := connect(t, h.URL("support"), era.version, nil)
			callText(t, cs, "tickets_get_ticket", map[string]any{"id": "TCK-5001"})
			callText(t, cs, "echo", map[string]any{"x": 1})
			h.apply(reduced)
			for _, name := range []string{"tickets_get_ticket", "echo"} {
				_, err := cs.CallTool(ctxT(t), &sdk.CallToolParams{Name: name, Arguments: map[string]any{"id": "TCK-5001"}})
				if we := rpcError(t, err); we.Code != -32602 || !strings.Contains(we.Message, "Unknown tool") {
					t.Errorf("%s after removal: error %d %q, want -32602 Unknown tool", name, we.Code, we.Message)
				}
			}
			if got := callText(t, cs, "crm_get_customer", map[string]any{"id": "CUST-1001"}); !strings.Contains(got, "Priya") {
				t.Errorf("crm_get_customer = %q", got)
			}
			names := toolNames(t, cs)
			slices.Sort(names)
			if !slices.Equal(names, []string{"crm_get_customer", "crm_get_invoice", "crm_search_customers"}) {
				t.Errorf("tools after removal = %v", names)
			}
		})
	}
}

// TestUpstreamSessionExpiry ends the gateway's session with an HTTP
// upstream behind its back (as an upstream restart would): the next call
// gets 404 from the upstream, and the gateway opens a new session and
// retries, so the client sees nothing.
func TestUpstreamSessionExpiry(t *testing.T) {
	up := echoServer("web")
	url := serveStreamable(t, up)
	h := startGateway(t, render(t, `
upstreams:
  web: {url: "{{url}}"}
servers:
  web:
    upstreams: [{upstream: web}]
`, "url", url))
	cs := connect(t, h.URL("web"), v20251125, nil)
	callText(t, cs, "web_hello", nil)
	n := 0
	for ss := range up.Sessions() {
		_ = ss.Close()
		n++
	}
	if n == 0 {
		t.Fatal("the upstream has no session")
	}
	if got := callText(t, cs, "web_hello", map[string]any{"text": "again"}); got != "web says hello again" {
		t.Errorf("web_hello after the upstream forgot the session = %q", got)
	}
}

// stdioChildren returns the pids of this process's children whose command
// line contains marker.
func stdioChildren(t *testing.T, marker string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	me := strconv.Itoa(os.Getpid())
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != me || f[0] == "Z" {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(cmd, []byte(marker)) {
			out = append(out, pid)
		}
	}
	return out
}

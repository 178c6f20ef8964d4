package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"gatehouse/internal/audit"
	"gatehouse/internal/gateway"
	"gatehouse/internal/store"
	"gatehouse/internal/store/sqlite"
)

// startAuditedGateway is startGateway with an audit trail on a SQLite
// store; the trail is flushed by the caller.
func startAuditedGateway(t *testing.T, yaml string) (*harness, *audit.Trail, *sqlite.Store) {
	t.Helper()
	st, trail := auditedStore(t)
	hs := startGatewayWith(t, yaml, gateway.Options{Audit: trail})
	return hs, trail, st
}

// auditedStore opens a SQLite store in a temporary directory and an audit
// trail writing to it.
func auditedStore(t *testing.T) (*sqlite.Store, *audit.Trail) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	q, err := audit.OpenQueue(filepath.Join(dir, "queue"), audit.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return st, audit.New(audit.Options{Queue: q, Store: st, Replica: "e2e"})
}

// TestAuditMessages: notifications in both directions and server→client
// requests (answered, and refused by the gateway) have records.
func TestAuditMessages(t *testing.T) {
	h, trail, st := startAuditedGateway(t, render(t, `
upstreams:
  fx: {command: "{{fixture}}"}
servers:
  fx:
    upstreams: [{upstream: fx, prefix: ""}]
identity: {auth: "off"}
admin: {disabled: true}
`))
	cs := connect(t, h.URL("fx"), v20251125, answeringClient())
	if got := callText(t, cs, "test_sampling", map[string]any{"prompt": "ping"}); got == "" {
		t.Fatal("test_sampling returned nothing")
	}
	if err := cs.SetLoggingLevel(ctxT(t), &sdk.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatal(err)
	}
	callText(t, cs, "test_tool_with_logging", map[string]any{})
	// A client without sampling: the gateway refuses the relay itself.
	bare := connect(t, h.URL("fx"), v20251125, &sdk.ClientOptions{Capabilities: &sdk.ClientCapabilities{}})
	if _, err := bare.CallTool(ctxT(t), &sdk.CallToolParams{Name: "test_sampling", Arguments: map[string]any{"prompt": "x"}}); err != nil {
		t.Fatal(err)
	}

	type key struct{ kind, action, dir, status string }
	eventually(t, "records of notifications and server→client requests", func() error {
		if err := trail.Flush(context.Background()); err != nil {
			return err
		}
		rows, err := st.ListAudit(context.Background(), store.AuditFilter{Limit: 1000})
		if err != nil {
			return err
		}
		seen := map[key]audit.Record{}
		for _, rw := range rows {
			var r audit.Record
			if err := json.Unmarshal(rw.Data, &r); err != nil {
				return err
			}
			seen[key{r.Kind, r.Action, r.Context.Direction, r.Outcome.Status}] = r
		}
		for _, k := range []key{
			{audit.KindMCPNotification, "notifications/initialized", audit.ClientToServer, audit.OutcomeAllowed},
			{audit.KindMCPNotification, "notifications/message", audit.ServerToClient, audit.OutcomeAllowed},
			{audit.KindMCPServerRequest, "sampling/createMessage", audit.ServerToClient, audit.OutcomeAllowed},
			{audit.KindMCPServerRequest, "sampling/createMessage", audit.ServerToClient, audit.OutcomeDenied},
			{audit.KindMCPRequest, "tools/call", "", audit.OutcomeAllowed},
		} {
			r, ok := seen[k]
			if !ok {
				return errNotYet
			}
			if r.Target.Server != "fx" || r.Context.SessionID == "" {
				t.Errorf("%v: server %q session %q", k, r.Target.Server, r.Context.SessionID)
			}
			if k.kind != audit.KindMCPRequest && k.dir == audit.ServerToClient && r.Target.Upstream != "fx" {
				t.Errorf("%v: upstream %q, want fx", k, r.Target.Upstream)
			}
		}
		return nil
	})
}

// Package audittest puts records into an audit store for tests of what
// reads them (the admin API, the CLI), sealed as the trail seals them.
package audittest

import (
	"cmp"
	"context"
	"testing"

	"gatehouse/internal/audit"
	"gatehouse/internal/store"
)

// Append appends recs to the chain in st, each sealed by audit.Seal, and
// returns them as sealed (Seq, PrevHash and Hash filled).
func Append(t testing.TB, st store.AuditStore, recs ...audit.Record) []audit.Record {
	t.Helper()
	byID := make(map[string]*audit.Record, len(recs))
	rows := make([]store.AuditRow, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		byID[r.ID] = r
		rows = append(rows, store.AuditRow{ID: r.ID, Time: r.Time, Kind: r.Kind, Action: r.Action, ActorID: r.Actor.ID,
			AgentName: r.Actor.AgentName, Team: r.Actor.Team, User: r.Actor.User, Server: r.Target.Server,
			Tool: cmp.Or(r.Target.Tool, r.Target.Prompt, r.Target.Resource), Outcome: r.Outcome.Status})
	}
	_, err := st.AppendAudit(context.Background(), rows, func(row *store.AuditRow, prev string) error {
		r := byID[row.ID]
		data, err := audit.Seal(r, row.Seq, prev)
		if err != nil {
			return err
		}
		row.Data, row.Hash = data, r.Hash
		return nil
	})
	if err != nil {
		t.Fatalf("appending audit records: %v", err)
	}
	return recs
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gatehouse/internal/store"
)

var _ store.AuditStore = (*Store)(nil)

// purgeChunk is how many records PurgeAudit deletes per transaction, so
// that appenders wait for one chunk at most, not for the whole purge.
const purgeChunk = 5000

// bucketMillis is the span of an audit_time_buckets row (the tests'
// name for it).
const bucketMillis = store.AuditBucketMillis

// AppendAudit appends rows to the chain. The transaction begins IMMEDIATE
// (as every write transaction of the Store does), so it holds SQLite's
// write lock from the start: appenders of this Store queue on its single
// write connection, those of other processes wait on the lock, and the
// head read first is the latest.
func (s *Store) AppendAudit(ctx context.Context, rows []store.AuditRow, seal func(row *store.AuditRow, prevHash string) error) ([]store.AuditRow, error) {
	const what = "appending audit records"
	if len(rows) == 0 {
		return nil, nil
	}
	for _, r := range rows {
		if r.ID == "" {
			return nil, fmt.Errorf("%s: a record has no ID", what)
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap(err, what)
	}
	defer tx.Rollback()

	var head int64
	var hash string
	if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&head, &hash); err != nil {
		return nil, wrap(err, what+": reading the head")
	}
	// Records stored before (a retry) are skipped: one lookup for the
	// batch, not one per record.
	stored, err := storedAuditIDs(ctx, tx, rows)
	if err != nil {
		return nil, wrap(err, what)
	}
	insert, err := tx.PrepareContext(ctx, `INSERT INTO audit_records
		(`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, wrap(err, what)
	}
	defer insert.Close()

	out := make([]store.AuditRow, 0, len(rows))
	batch := make(map[string]bool, len(rows))
	for _, r := range rows {
		if batch[r.ID] || stored[r.ID] {
			continue // earlier in this batch, or stored before
		}
		batch[r.ID] = true
		if err := store.SealAudit(&r, head+1, hash, seal); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if _, err := insert.ExecContext(ctx, r.Seq, r.ID, millis(r.Time), r.Kind, r.Action, r.ActorID,
			r.AgentName, r.Team, r.User, r.Server, r.Tool, r.Outcome, blob(r.Data), r.PrevHash, r.Hash); err != nil {
			return nil, wrap(err, fmt.Sprintf("%s: %q", what, r.ID))
		}
		head, hash = r.Seq, r.Hash
		out = append(out, r)
	}
	if len(out) == 0 {
		return out, nil
	}
	buckets, mins, maxs := store.AuditBucketSpans(out)
	for i, b := range buckets {
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_time_buckets (bucket, min_seq, max_seq) VALUES (?, ?, ?)
			ON CONFLICT (bucket) DO UPDATE SET min_seq = min(min_seq, excluded.min_seq), max_seq = max(max_seq, excluded.max_seq)`,
			b, mins[i], maxs[i]); err != nil {
			return nil, wrap(err, what+": widening a time bucket")
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, head, hash); err != nil {
		return nil, wrap(err, what+": moving the head")
	}
	if err := tx.Commit(); err != nil {
		return nil, wrap(err, what)
	}
	return out, nil
}

// storedAuditIDs returns which of rows' IDs are stored already.
func storedAuditIDs(ctx context.Context, tx *sql.Tx, rows []store.AuditRow) (map[string]bool, error) {
	stored := map[string]bool{}
	const chunk = 500 // well under SQLite's limit on parameters
	for from := 0; from < len(rows); from += chunk {
		part := rows[from:min(from+chunk, len(rows))]
		args := make([]any, len(part))
		for i, r := range part {
			args[i] = r.ID
		}
		q := `SELECT id FROM audit_records WHERE id IN (?` + strings.Repeat(", ?", len(part)-1) + `)`
		res, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("looking up stored records: %w", err)
		}
		for res.Next() {
			var id string
			if err := res.Scan(&id); err != nil {
				res.Close()
				return nil, fmt.Errorf("looking up stored records: %w", err)
			}
			stored[id] = true
		}
		if err := res.Close(); err != nil {
			return nil, err
		}
		if err := res.Err(); err != nil {
			return nil, err
		}
	}
	return stored, nil
}

// AuditHead returns the head as the last append left it; retention does
// not move it.
func (s *Store) AuditHead(ctx context.Context) (int64, string, error) {
	var seq int64
	var hash string
	err := s.r.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash)
	return seq, hash, wrap(err, "reading the audit head")
}

const auditCols = `seq, id, time, kind, action, actor_id, agent_name, team, user_name, server, tool, outcome, data, prev_hash, hash`

func scanAudit(sc scanner) (store.AuditRow, error) {
	var r store.AuditRow
	err := sc.Scan(&r.Seq, &r.ID, timeDest{&r.Time}, &r.Kind, &r.Action, &r.ActorID, &r.AgentName, &r.Team,
		&r.User, &r.Server, &r.Tool, &r.Outcome, &r.Data, &r.PrevHash, &r.Hash)
	return r, err
}

// ListAudit returns the records f selects. The query is one index range
// walked in seq order and cut at the limit: an equality filter's
// (column, seq) index, or the rowid itself. Cursors are seq bounds
// (keyset pagination), never an offset, and so is a time range, through
// audit_time_buckets.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditRow, error) {
	const what = "listing audit records"
	q, args := auditQuery(f)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap(err, what)
	}
	defer rows.Close()
	var out []store.AuditRow
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, wrap(err, what)
		}
		out = append(out, r)
	}
	return out, wrap(rows.Err(), what)
}

// partialIndexed are the columns indexed only where they differ from
// their common value (migration 0004), with that value.
var partialIndexed = map[string]string{
	"user_name": "", "kind": "mcp.request", "action": "tools/call", "outcome": "allowed",
}

// auditQuery is ListAudit's query for f and its arguments.
func auditQuery(f store.AuditFilter) (string, []any) {
	var where []string
	var args []any
	for _, eq := range []struct{ col, v string }{
		{"agent_name", f.AgentName}, {"team", f.Team}, {"user_name", f.User}, {"server", f.Server},
		{"tool", f.Tool}, {"kind", f.Kind}, {"action", f.Action}, {"outcome", f.Outcome},
	} {
		if eq.v != "" {
			where, args = append(where, eq.col+" = ?"), append(args, eq.v)
			// The term that admits the column's partial index (see
			// migration 0004) when the value is not the common one.
			if common, ok := partialIndexed[eq.col]; ok && eq.v != common {
				where = append(where, eq.col+" <> '"+common+"'")
			}
		}
	}
	// Stored times are whole milliseconds: time >= t holds from t rounded
	// up, and so does time < t.
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, store.CeilMillis(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time < ?"), append(args, store.CeilMillis(f.Until))
	}
	// The records of a time range lie within the seqs of the buckets the
	// range overlaps (none: no record, and NULL bounds match nothing).
	if !f.Since.IsZero() || !f.Until.IsZero() {
		var cond []string
		var bounds []any
		if !f.Since.IsZero() {
			cond, bounds = append(cond, "bucket >= ?"), append(bounds, store.AuditBucket(store.CeilMillis(f.Since)))
		}
		if !f.Until.IsZero() {
			cond, bounds = append(cond, "bucket <= ?"), append(bounds, store.AuditBucket(store.CeilMillis(f.Until)-1))
		}
		c := strings.Join(cond, " AND ")
		where = append(where, "seq >= (SELECT min(min_seq) FROM audit_time_buckets WHERE "+c+")",
			"seq <= (SELECT max(max_seq) FROM audit_time_buckets WHERE "+c+")")
		args = append(append(args, bounds...), bounds...)
	}
	if f.AfterSeq > 0 {
		where, args = append(where, "seq > ?"), append(args, f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		where, args = append(where, "seq < ?"), append(args, f.BeforeSeq)
	}
	q := `SELECT ` + auditCols + ` FROM audit_records`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	if f.Desc {
		q += ` ORDER BY seq DESC LIMIT ?`
	} else {
		q += ` ORDER BY seq LIMIT ?`
	}
	return q, append(args, store.AuditLimit(f.Limit))
}

// HasAuditID reports whether a record with this ID is stored.
func (s *Store) HasAuditID(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM audit_records WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, wrap(err, fmt.Sprintf("looking up audit record %q", id))
}

// AddAuditCheckpoint stores c; (Seq, KeyID) must be new. Its Time must be
// a whole millisecond: the signature covers it, and the store keeps
// milliseconds.
func (s *Store) AddAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error {
	what := fmt.Sprintf("audit checkpoint %d (key %q)", c.Seq, c.KeyID)
	if !c.Time.Equal(c.Time.Truncate(time.Millisecond)) {
		return fmt.Errorf("%s: time %v is not a whole millisecond, and the signature covers it", what, c.Time)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, key_id, hash, time, public_key, signature)
		VALUES (?, ?, ?, ?, ?, ?)`,
		c.Seq, c.KeyID, c.Hash, millis(c.Time), blob(c.PublicKey), blob(c.Signature))
	return wrap(err, what)
}

// ListAuditCheckpoints returns the checkpoints with Seq >= fromSeq, by Seq
// then KeyID, at most limit (ListAudit's default and maximum).
func (s *Store) ListAuditCheckpoints(ctx context.Context, fromSeq int64, limit int) ([]store.AuditCheckpoint, error) {
	const what = "listing audit checkpoints"
	rows, err := s.r.QueryContext(ctx, `SELECT seq, key_id, hash, time, public_key, signature FROM audit_checkpoints
		WHERE seq >= ? ORDER BY seq, key_id LIMIT ?`, fromSeq, store.AuditLimit(limit))
	if err != nil {
		return nil, wrap(err, what)
	}
	defer rows.Close()
	var out []store.AuditCheckpoint
	for rows.Next() {
		var c store.AuditCheckpoint
		if err := rows.Scan(&c.Seq, &c.KeyID, &c.Hash, timeDest{&c.Time}, &c.PublicKey, &c.Signature); err != nil {
			return nil, wrap(err, what)
		}
		out = append(out, c)
	}
	return out, wrap(rows.Err(), what)
}

// PurgeAudit deletes the records with Seq < beforeSeq and Time < olderThan,
// a chunk per transaction, oldest first, then the time buckets left
// empty. The head stays where it is.
func (s *Store) PurgeAudit(ctx context.Context, beforeSeq int64, olderThan time.Time) (int64, error) {
	const what = "purging audit records"
	var total, after int64
	for {
		rows, err := s.w.QueryContext(ctx, `DELETE FROM audit_records WHERE seq IN (
			SELECT seq FROM audit_records WHERE seq > ? AND seq < ? AND time < ? ORDER BY seq LIMIT ?)
			RETURNING seq`, after, beforeSeq, store.CeilMillis(olderThan), purgeChunk)
		if err != nil {
			return total, wrap(err, what)
		}
		var n int64
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				rows.Close()
				return total, wrap(err, what)
			}
			n, after = n+1, max(after, seq)
		}
		if err := rows.Close(); err != nil {
			return total, wrap(err, what)
		}
		if err := rows.Err(); err != nil {
			return total, wrap(err, what)
		}
		total += n
		if n < purgeChunk {
			break
		}
	}
	// A bucket whose greatest seq is below every stored record's holds no
	// record any more.
	if _, err := s.w.ExecContext(ctx, `DELETE FROM audit_time_buckets WHERE max_seq <
		coalesce((SELECT min(seq) FROM audit_records), (SELECT seq + 1 FROM audit_head WHERE id = 1))`); err != nil {
		return total, wrap(err, what+": dropping empty time buckets")
	}
	return total, nil
}

// GetAuditCursor returns the last seq the sink delivered, 0 when unknown.
func (s *Store) GetAuditCursor(ctx context.Context, sink string) (int64, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT seq FROM audit_cursors WHERE sink = ?`, sink).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, wrap(err, fmt.Sprintf("audit cursor of %q", sink))
}

// SetAuditCursor records seq as the last the sink delivered.
func (s *Store) SetAuditCursor(ctx context.Context, sink string, seq int64) error {
	what := fmt.Sprintf("setting the audit cursor of %q", sink)
	if sink == "" {
		return fmt.Errorf("%s: empty sink name", what)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO audit_cursors (sink, seq, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`,
		sink, seq, millis(time.Now()))
	return wrap(err, what)
}

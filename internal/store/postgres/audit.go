package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse/internal/store"
)

var _ store.AuditStore = (*Store)(nil)

// purgeChunk is how many records PurgeAudit deletes per transaction, so
// that no transaction (and its WAL, and vacuum's work) grows without bound.
const purgeChunk = 5000

// bucketMillis is the span of an audit_time_buckets row (the tests'
// name for it).
const bucketMillis = store.AuditBucketMillis

// AppendAudit appends rows to the chain in one transaction. It first locks
// the head row (SELECT … FOR UPDATE): appenders in every process queue
// there, and each reads the head its predecessor committed, so the chain
// never forks. Only then, under the lock and in a statement of its own
// (READ COMMITTED: a snapshot taken after the lock was granted), does it
// look up which IDs are already stored, so that a retry skips them without
// using up a sequence number. The rest goes in one round trip: one
// multi-row INSERT of the records (unnest of arrays), the widening of
// their time buckets and the UPDATE of the head.
func (s *Store) AppendAudit(ctx context.Context, rows []store.AuditRow, seal func(row *store.AuditRow, prevHash string) error) ([]store.AuditRow, error) {
	const what = "appending audit records"
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		if r.ID == "" {
			return nil, fmt.Errorf("%s: a record has no ID", what)
		}
		ids[i] = r.ID
	}
	// READ COMMITTED whatever the server's default: the look-up must see
	// what the previous holder of the lock committed.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, wrap(err, what)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	var head int64
	var hash string
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&head, &hash); err != nil {
		return nil, wrap(err, what+": locking the head")
	}
	found, err := tx.Query(ctx, `SELECT id FROM audit_records WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, wrap(err, what+": looking up IDs")
	}
	stored, err := pgx.CollectRows(found, pgx.RowTo[string])
	if err != nil {
		return nil, wrap(err, what+": looking up IDs")
	}
	skip := make(map[string]bool, len(rows))
	for _, id := range stored {
		skip[id] = true
	}

	out := make([]store.AuditRow, 0, len(rows))
	for _, r := range rows {
		if skip[r.ID] {
			continue // stored before (a retry), or earlier in this batch
		}
		skip[r.ID] = true
		if err := store.SealAudit(&r, head+1, hash, seal); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		head, hash = r.Seq, r.Hash
		out = append(out, r)
	}
	if len(out) == 0 {
		return out, nil
	}

	type row = store.AuditRow
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO audit_records (`+auditCols+`)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
			$7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bytea[], $14::text[], $15::text[])`,
		column(out, func(r row) int64 { return r.Seq }),
		column(out, func(r row) string { return r.ID }),
		column(out, func(r row) time.Time { return r.Time }),
		column(out, func(r row) string { return r.Kind }),
		column(out, func(r row) string { return r.Action }),
		column(out, func(r row) string { return r.ActorID }),
		column(out, func(r row) string { return r.AgentName }),
		column(out, func(r row) string { return r.Team }),
		column(out, func(r row) string { return r.User }),
		column(out, func(r row) string { return r.Server }),
		column(out, func(r row) string { return r.Tool }),
		column(out, func(r row) string { return r.Outcome }),
		column(out, func(r row) []byte { return r.Data }),
		column(out, func(r row) string { return r.PrevHash }),
		column(out, func(r row) string { return r.Hash }))
	// Whoever writes audit_time_buckets holds the head's lock: no two
	// transactions lock its rows at once, in whatever order.
	buckets, mins, maxs := store.AuditBucketSpans(out)
	b.Queue(`INSERT INTO audit_time_buckets (bucket, min_seq, max_seq)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
		ON CONFLICT (bucket) DO UPDATE SET min_seq = least(audit_time_buckets.min_seq, excluded.min_seq),
			max_seq = greatest(audit_time_buckets.max_seq, excluded.max_seq)`,
		buckets, mins, maxs)
	b.Queue(`UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, head, hash)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, wrap(err, what)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, wrap(err, what)
	}
	return out, nil
}

// column is one column of rows, as an array parameter.
func column[T any](rows []store.AuditRow, get func(store.AuditRow) T) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = get(r)
	}
	return out
}

// AuditHead returns the head as the last append left it; retention does
// not move it.
func (s *Store) AuditHead(ctx context.Context) (int64, string, error) {
	var seq int64
	var hash string
	err := s.pool.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash)
	return seq, hash, wrap(err, "reading the audit head")
}

const auditCols = `seq, id, time, kind, action, actor_id, agent_name, team, user_name, server, tool, outcome, data, prev_hash, hash`

func scanAudit(row pgx.Row) (store.AuditRow, error) {
	var r store.AuditRow
	err := row.Scan(&r.Seq, &r.ID, &r.Time, &r.Kind, &r.Action, &r.ActorID, &r.AgentName, &r.Team,
		&r.User, &r.Server, &r.Tool, &r.Outcome, &r.Data, &r.PrevHash, &r.Hash)
	utc(&r.Time)
	return r, err
}

// ListAudit returns the records f selects. An equality filter is served by
// its (column, seq) index walked in seq order and cut at the limit, no
// equality filter by the primary key. Cursors are seq bounds (keyset
// pagination), never an offset, and so is a time range, through
// audit_time_buckets.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditRow, error) {
	q, args := auditQuery(f)
	return list(ctx, s, "listing audit records", scanAudit, q, args...)
}

// auditQuery is ListAudit's query for f and its arguments.
func auditQuery(f store.AuditFilter) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	for _, eq := range []struct{ col, v string }{
		{"agent_name", f.AgentName}, {"team", f.Team}, {"user_name", f.User}, {"server", f.Server},
		{"tool", f.Tool}, {"kind", f.Kind}, {"action", f.Action}, {"outcome", f.Outcome},
	} {
		if eq.v != "" {
			add(eq.col+" = $%d", eq.v)
		}
	}
	// Stored times are whole milliseconds: time >= t holds from t rounded
	// up, and so does time < t (as in the SQLite store).
	if !f.Since.IsZero() {
		add("time >= $%d", ceilTime(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < $%d", ceilTime(f.Until))
	}
	// The records of a time range lie within the seqs of the buckets the
	// range overlaps (none: no record, and NULL bounds match nothing).
	if !f.Since.IsZero() || !f.Until.IsZero() {
		var cond []string
		if !f.Since.IsZero() {
			args = append(args, store.AuditBucket(store.CeilMillis(f.Since)))
			cond = append(cond, fmt.Sprintf("bucket >= $%d", len(args)))
		}
		if !f.Until.IsZero() {
			args = append(args, store.AuditBucket(store.CeilMillis(f.Until)-1))
			cond = append(cond, fmt.Sprintf("bucket <= $%d", len(args)))
		}
		c := strings.Join(cond, " AND ")
		where = append(where, "seq >= (SELECT min(min_seq) FROM audit_time_buckets WHERE "+c+")",
			"seq <= (SELECT max(max_seq) FROM audit_time_buckets WHERE "+c+")")
	}
	if f.AfterSeq > 0 {
		add("seq > $%d", f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		add("seq < $%d", f.BeforeSeq)
	}
	q := `SELECT ` + auditCols + ` FROM audit_records`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	if f.Desc {
		q += ` ORDER BY seq DESC`
	} else {
		q += ` ORDER BY seq`
	}
	args = append(args, store.AuditLimit(f.Limit))
	q += fmt.Sprintf(` LIMIT $%d`, len(args))
	return q, args
}

// ceilTime is t rounded up to the millisecond, in UTC.
func ceilTime(t time.Time) time.Time {
	return time.UnixMilli(store.CeilMillis(t)).UTC()
}

// HasAuditID reports whether a record with this ID is stored.
func (s *Store) HasAuditID(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_records WHERE id = $1)`, id).Scan(&ok)
	return ok, wrap(err, fmt.Sprintf("looking up audit record %q", id))
}

// AddAuditCheckpoint stores c; (Seq, KeyID) must be new. Its Time must be
// a whole millisecond: the signature covers it, and the store keeps
// milliseconds.
func (s *Store) AddAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error {
	what := fmt.Sprintf("audit checkpoint %d (key %q)", c.Seq, c.KeyID)
	if !c.Time.Equal(c.Time.Truncate(time.Millisecond)) {
		return fmt.Errorf("%s: time %v is not a whole millisecond, and the signature covers it", what, c.Time)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_checkpoints (seq, key_id, hash, time, public_key, signature)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		c.Seq, c.KeyID, c.Hash, ts(c.Time), blob(c.PublicKey), blob(c.Signature))
	return wrap(err, what)
}

func scanCheckpoint(row pgx.Row) (store.AuditCheckpoint, error) {
	var c store.AuditCheckpoint
	err := row.Scan(&c.Seq, &c.KeyID, &c.Hash, &c.Time, &c.PublicKey, &c.Signature)
	utc(&c.Time)
	return c, err
}

// ListAuditCheckpoints returns the checkpoints with Seq >= fromSeq, by Seq
// then KeyID, at most limit (ListAudit's default and maximum).
func (s *Store) ListAuditCheckpoints(ctx context.Context, fromSeq int64, limit int) ([]store.AuditCheckpoint, error) {
	return list(ctx, s, "listing audit checkpoints", scanCheckpoint,
		`SELECT seq, key_id, hash, time, public_key, signature FROM audit_checkpoints
		WHERE seq >= $1 ORDER BY seq, key_id LIMIT $2`, fromSeq, store.AuditLimit(limit))
}

// PurgeAudit deletes the records with Seq < beforeSeq and Time < olderThan,
// a chunk per transaction, oldest first, then the time buckets left
// empty. The head stays where it is.
func (s *Store) PurgeAudit(ctx context.Context, beforeSeq int64, olderThan time.Time) (int64, error) {
	const what = "purging audit records"
	var total, after int64
	for {
		var n int64
		var last *int64
		err := s.pool.QueryRow(ctx, `WITH gone AS (
				DELETE FROM audit_records WHERE seq IN (
					SELECT seq FROM audit_records WHERE seq > $1 AND seq < $2 AND time < $3 ORDER BY seq LIMIT $4)
				RETURNING seq)
			SELECT count(*), max(seq) FROM gone`,
			after, beforeSeq, ceilTime(olderThan), purgeChunk).Scan(&n, &last)
		if err != nil {
			return total, wrap(err, what)
		}
		total += n
		if n < purgeChunk || last == nil {
			break
		}
		after = *last
	}
	if err := s.dropEmptyBuckets(ctx); err != nil {
		return total, wrap(err, what+": dropping empty time buckets")
	}
	return total, nil
}

// dropEmptyBuckets deletes the time buckets whose greatest seq is below
// every stored record's: they hold no record any more. It holds the head's
// lock, so that no append widens a bucket meanwhile (nor deadlocks with
// it).
func (s *Store) dropEmptyBuckets(ctx context.Context) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var head int64
	if err := tx.QueryRow(ctx, `SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&head); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM audit_time_buckets
		WHERE max_seq < coalesce((SELECT min(seq) FROM audit_records), $1)`, head+1); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// GetAuditCursor returns the last seq the sink delivered, 0 when unknown.
func (s *Store) GetAuditCursor(ctx context.Context, sink string) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM audit_cursors WHERE sink = $1`, sink).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
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
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_cursors (sink, seq, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`,
		sink, seq)
	return wrap(err, what)
}

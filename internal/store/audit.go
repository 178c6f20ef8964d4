package store

import (
	"context"
	"fmt"
	"time"
)

// AuditStore keeps the audit chain: records in sequence, each sealed with
// the hash of the one before, signed checkpoints of the head, and the
// delivery cursors of the sinks. Both SQLite and PostgreSQL stores
// implement it. Nothing here updates or deletes a record except
// PurgeAudit (retention).
type AuditStore interface {
	// AppendAudit appends rows to the chain in one transaction. Under the
	// chain's lock (one writer at a time, across processes) it reads the
	// head, then for each row in order assigns Seq = head+1, … and calls
	// seal(row, prevHash), which must fill row.Data and row.Hash (the
	// canonical record and its chained hash); the next row's prevHash is
	// that row.Hash. A row whose ID is already stored (a retry after a
	// crash) is skipped without consuming a sequence number. It returns
	// the rows as appended (skipped ones left out).
	AppendAudit(ctx context.Context, rows []AuditRow, seal func(row *AuditRow, prevHash string) error) ([]AuditRow, error)
	// AuditHead returns the last appended row's Seq and Hash (0, "" when
	// nothing was ever appended). It is kept apart from the rows, so it
	// stays exact after PurgeAudit.
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
	// ListAudit returns rows matching f, ordered by Seq (ascending, or
	// descending with f.Desc), at most f.Limit (default 100, max 10000).
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditRow, error)
	// HasAuditID reports whether a row with this ID is stored.
	HasAuditID(ctx context.Context, id string) (bool, error)

	AddAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error
	// ListAuditCheckpoints returns checkpoints with Seq >= fromSeq, by Seq.
	ListAuditCheckpoints(ctx context.Context, fromSeq int64, limit int) ([]AuditCheckpoint, error)

	// PurgeAudit deletes rows with Seq < beforeSeq and Time < olderThan
	// (both must hold) and returns how many. The caller keeps a checkpoint
	// at or after the new first row so the rest stays verifiable.
	PurgeAudit(ctx context.Context, beforeSeq int64, olderThan time.Time) (int64, error)

	// Sink cursors: the last Seq a sink has delivered.
	GetAuditCursor(ctx context.Context, sink string) (int64, error) // 0 when unknown
	SetAuditCursor(ctx context.Context, sink string, seq int64) error
}

// AuditRow is one record as stored: the columns queries filter on, and
// Data, the canonical JSON of the whole record (what the hash covers).
type AuditRow struct {
	Seq       int64
	ID        string
	Time      time.Time // UTC, millisecond precision
	Kind      string
	Action    string
	ActorID   string // identity id ("agent:agt_…"), "" when anonymous
	AgentName string
	Team      string
	User      string
	Server    string
	Tool      string // tool, prompt or resource name
	Outcome   string
	Data      []byte // canonical JSON of the record
	PrevHash  string
	Hash      string
}

// AuditFilter selects rows; zero fields match everything.
type AuditFilter struct {
	AgentName string
	Team      string
	User      string
	Server    string
	Tool      string
	Kind      string
	Action    string
	Outcome   string
	Since     time.Time // Time >= Since
	Until     time.Time // Time < Until
	AfterSeq  int64     // Seq > AfterSeq (cursor, ascending)
	BeforeSeq int64     // Seq < BeforeSeq (cursor, descending); 0: no bound
	Desc      bool
	Limit     int
}

// AuditCheckpoint is a signed statement that the row with Seq has Hash.
type AuditCheckpoint struct {
	Seq       int64
	Hash      string
	Time      time.Time
	KeyID     string
	PublicKey []byte // raw Ed25519 public key
	Signature []byte
}

// What the AuditStore implementations share: ListAudit's limits, the time
// buckets (the audit_time_buckets table of both migrations) and the checks
// around a seal.

// ListAudit's (and ListAuditCheckpoints') limits.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 10000
)

// AuditLimit is the limit ListAudit applies for a requested one.
func AuditLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultAuditLimit
	case n > MaxAuditLimit:
		return MaxAuditLimit
	}
	return n
}

// AuditBucketMillis is the span of an audit_time_buckets row (see the
// migrations): ten minutes. Changing it needs the table rebuilt.
const AuditBucketMillis = 10 * 60 * 1000

// AuditBucket is the time bucket of a time in milliseconds since the
// epoch.
func AuditBucket(ms int64) int64 {
	b := ms / AuditBucketMillis
	if ms%AuditBucketMillis < 0 {
		b-- // round down before the epoch too
	}
	return b
}

// AuditBucketSpans returns the buckets rows fall in, in the order they
// first appear, with the least and greatest Seq of the rows in each.
func AuditBucketSpans(rows []AuditRow) (buckets, mins, maxs []int64) {
	index := make(map[int64]int)
	for _, r := range rows {
		b := AuditBucket(r.Time.UnixMilli())
		i, ok := index[b]
		if !ok {
			i = len(buckets)
			index[b] = i
			buckets, mins, maxs = append(buckets, b), append(mins, r.Seq), append(maxs, r.Seq)
		}
		mins[i], maxs[i] = min(mins[i], r.Seq), max(maxs[i], r.Seq)
	}
	return buckets, mins, maxs
}

// CeilMillis is t in milliseconds since the epoch, rounded up. Stored
// times are whole milliseconds, so time >= t holds from CeilMillis(t) on,
// and time < t below it.
func CeilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// SealAudit gives r its place in the chain (Seq, PrevHash, and its Time
// as stored: UTC, whole milliseconds) and has seal fill Data and Hash, for
// AppendAudit. The seal may not move the record: a changed ID, Seq or
// PrevHash, or an empty Data or Hash, would break the chain, so they are
// errors.
func SealAudit(r *AuditRow, seq int64, prev string, seal func(*AuditRow, string) error) error {
	id := r.ID
	r.Seq, r.PrevHash, r.Time = seq, prev, r.Time.UTC().Truncate(time.Millisecond)
	if err := seal(r, prev); err != nil {
		return fmt.Errorf("sealing %q: %w", id, err)
	}
	switch {
	case r.ID != id || r.Seq != seq || r.PrevHash != prev:
		return fmt.Errorf("sealing %q: the seal changed the record's ID, Seq or PrevHash", id)
	case r.Hash == "" || len(r.Data) == 0:
		return fmt.Errorf("sealing %q: the seal left Data or Hash empty", id)
	}
	return nil
}

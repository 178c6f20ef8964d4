package store

import (
	"context"
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

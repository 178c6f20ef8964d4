package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/internal/store"
)

// Trail is the audit pipeline of one gateway process: Log writes to the
// local queue; Run commits the queue to the store's chain, signs
// checkpoints, and feeds every sink from its cursor.
type Trail struct {
	q       *Queue
	st      store.AuditStore
	log     *slog.Logger
	replica string
	key     ed25519.PrivateKey
	keyID   string
	sinks   []Sink

	checkpointEvery    int64
	checkpointInterval time.Duration
	retention          time.Duration

	sinkWake  []chan struct{}
	committed atomic.Int64 // head seq after the last commit

	stats Stats
}

// Stats are counters for metrics.
type Stats struct {
	Committed  atomic.Int64
	CommitErrs atomic.Int64
	SinkErrs   sync.Map // sink name -> *atomic.Int64
	SinkSeq    sync.Map // sink name -> *atomic.Int64 (last delivered seq)
}

// Options configure a Trail.
type Options struct {
	Queue   *Queue
	Store   store.AuditStore
	Logger  *slog.Logger
	Replica string
	// Key signs checkpoints; KeyID names it in them.
	Key   ed25519.PrivateKey
	KeyID string
	Sinks []Sink
	// A checkpoint is signed after this many records or this much time,
	// whichever comes first (defaults 1000, 30s).
	CheckpointEvery    int64
	CheckpointInterval time.Duration
	// Retention deletes records older than this (0: never).
	Retention time.Duration
}

// New returns a trail; call Run.
func New(o Options) *Trail {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 1000
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = 30 * time.Second
	}
	t := &Trail{q: o.Queue, st: o.Store, log: o.Logger, replica: o.Replica, key: o.Key, keyID: o.KeyID, sinks: o.Sinks,
		checkpointEvery: o.CheckpointEvery, checkpointInterval: o.CheckpointInterval, retention: o.Retention}
	for range o.Sinks {
		t.sinkWake = append(t.sinkWake, make(chan struct{}, 1))
	}
	return t
}

// Stats returns the trail's counters.
func (t *Trail) Stats() *Stats { return &t.stats }

// Queue returns the local queue.
func (t *Trail) Queue() *Queue { return t.q }

// Log records r: it returns once r is in the local queue (or with
// ErrQueueFull). ID, Time and Replica are filled when empty.
func (t *Trail) Log(r Record) error {
	if r.ID == "" {
		r.ID = NewID(time.Now())
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC().Truncate(time.Millisecond)
	if r.Replica == "" {
		r.Replica = t.replica
	}
	r.Seq, r.PrevHash, r.Hash = 0, "", ""
	if err := t.q.Append(r); err != nil {
		return err
	}
	return nil
}

// Full reports whether new records would be refused.
func (t *Trail) Full() bool { return t.q.full.Load() }

// Run commits and delivers until ctx ends.
func (t *Trail) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, s := range t.sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.deliver(ctx, s, t.sinkWake[i])
		}()
	}
	if t.retention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Hour)
			defer tick.Stop()
			for {
				if _, err := t.Purge(ctx, time.Now()); err != nil {
					t.log.Warn("audit: retention", "error", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	t.commitLoop(ctx)
	wg.Wait()
}

// Purge applies retention at now: it deletes the records older than the
// retention period up to the newest checkpoint among them, so the first
// remaining record follows a signed checkpoint and the chain stays
// verifiable. It returns how many records it deleted.
func (t *Trail) Purge(ctx context.Context, now time.Time) (int64, error) {
	if t.retention <= 0 {
		return 0, nil
	}
	cutoff := now.Add(-t.retention)
	var anchor int64
	from := int64(0)
	for {
		cps, err := t.st.ListAuditCheckpoints(ctx, from, 1000)
		if err != nil {
			return 0, err
		}
		for _, c := range cps {
			if c.Time.Before(cutoff) {
				anchor = c.Seq
			}
		}
		if len(cps) < 1000 {
			break
		}
		from = cps[len(cps)-1].Seq + 1
	}
	if anchor == 0 {
		return 0, nil
	}
	n, err := t.st.PurgeAudit(ctx, anchor+1, cutoff)
	if err == nil && n > 0 {
		t.log.Info("audit: retention deleted old records", "records", n, "through_seq", anchor)
	}
	return n, err
}

// commitBatch bounds the records appended in one transaction.
const commitBatch = 2000

func (t *Trail) commitLoop(ctx context.Context) {
	pos, err := t.q.position()
	if err != nil {
		t.log.Error("audit: reading the queue position", "error", err)
	}
	head, _, err := t.st.AuditHead(ctx)
	if err != nil {
		t.log.Error("audit: reading the chain head", "error", err)
	}
	t.committed.Store(head)
	lastCheckpointSeq := head
	lastCheckpoint := time.Now()
	// The committer runs on a clock, not on every record: one transaction
	// per interval carries every record queued meanwhile (committing each
	// record as it came cost more CPU than everything else the gateway
	// does for a call). The request path does not wait for it.
	tick := time.NewTicker(commitInterval)
	defer tick.Stop()
	backoff := time.Duration(0)
	for {
		recs, next, used, err := t.q.readBatch(pos, commitBatch)
		if err == nil && len(recs) > 0 {
			err = t.commit(ctx, recs)
		}
		switch {
		case err != nil:
			t.stats.CommitErrs.Add(1)
			backoff = nextBackoff(backoff)
			t.log.Warn("audit: committing to the store failed; will retry", "error", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		case len(recs) > 0 || next != pos:
			backoff = 0
			if err := t.q.setPosition(next, used); err != nil {
				t.log.Error("audit: saving the queue position", "error", err)
			}
			pos = next
			if len(recs) == commitBatch {
				continue // more waiting
			}
		}
		// A checkpoint when enough records or time went by.
		if h := t.committed.Load(); h > lastCheckpointSeq && (h-lastCheckpointSeq >= t.checkpointEvery || time.Since(lastCheckpoint) >= t.checkpointInterval) {
			if err := t.checkpoint(ctx); err != nil {
				t.log.Warn("audit: signing a checkpoint", "error", err)
			} else {
				lastCheckpointSeq, lastCheckpoint = h, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// commitInterval is how often queued records are committed.
const commitInterval = 200 * time.Millisecond

func (t *Trail) commit(ctx context.Context, recs []queued) error {
	byID := make(map[string][]byte, len(recs))
	rows := make([]store.AuditRow, 0, len(recs))
	for _, q := range recs {
		byID[q.row.ID] = q.data
		rows = append(rows, q.row)
	}
	appended, err := t.st.AppendAudit(ctx, rows, sealRow(byID))
	if err != nil {
		return err
	}
	if n := len(appended); n > 0 {
		t.committed.Store(appended[n-1].Seq)
		t.stats.Committed.Add(int64(n))
		for _, w := range t.sinkWake {
			select {
			case w <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// Checkpoint signs the chain's current head now.
func (t *Trail) checkpoint(ctx context.Context) error {
	if t.key == nil {
		return nil
	}
	seq, hash, err := t.st.AuditHead(ctx)
	if err != nil || seq == 0 {
		return err
	}
	_, err = AddCheckpoint(ctx, t.st, t.key, t.keyID, seq, hash, time.Now())
	return err
}

// Flush commits what is queued now (tests, shutdown).
func (t *Trail) Flush(ctx context.Context) error {
	pos, err := t.q.position()
	if err != nil {
		return err
	}
	for {
		recs, next, used, err := t.q.readBatch(pos, commitBatch)
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			if err := t.commit(ctx, recs); err != nil {
				return err
			}
		}
		if next == pos {
			return nil
		}
		if err := t.q.setPosition(next, used); err != nil {
			return err
		}
		pos = next
	}
}

func (t *Trail) deliver(ctx context.Context, s Sink, wake <-chan struct{}) {
	name := s.Name()
	errs, _ := t.stats.SinkErrs.LoadOrStore(name, new(atomic.Int64))
	last, _ := t.stats.SinkSeq.LoadOrStore(name, new(atomic.Int64))
	backoff := time.Duration(0)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		err := t.deliverOnce(ctx, s, last.(*atomic.Int64))
		var wait time.Duration
		switch {
		case errors.Is(err, errNothing):
			backoff = 0
		case err != nil:
			errs.(*atomic.Int64).Add(1)
			backoff = nextBackoff(backoff)
			wait = backoff
			t.log.Warn("audit: a sink failed; will send again", "sink", name, "error", err, "retry_in", backoff)
		default:
			backoff = 0
			continue // delivered a batch: look for more at once
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
	}
}

var errNothing = errors.New("nothing to deliver")

// sinkBatch bounds one Send.
const sinkBatch = 500

func (t *Trail) deliverOnce(ctx context.Context, s Sink, last *atomic.Int64) error {
	cur, err := t.st.GetAuditCursor(ctx, s.Name())
	if err != nil {
		return err
	}
	rows, err := t.st.ListAudit(ctx, store.AuditFilter{AfterSeq: cur, Limit: sinkBatch})
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		last.Store(cur)
		return errNothing
	}
	recs := make([]Record, 0, len(rows))
	for _, rw := range rows {
		var r Record
		if err := json.Unmarshal(rw.Data, &r); err != nil {
			return fmt.Errorf("decoding audit record %d: %w", rw.Seq, err)
		}
		recs = append(recs, r)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = s.Send(sctx, recs)
	cancel()
	if err != nil {
		return err
	}
	seq := rows[len(rows)-1].Seq
	if err := t.st.SetAuditCursor(ctx, s.Name(), seq); err != nil {
		return err
	}
	last.Store(seq)
	return nil
}

// nextBackoff doubles from 500ms to 60s, with ±20% jitter.
func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		d = 500 * time.Millisecond
	} else {
		d *= 2
	}
	if d > time.Minute {
		d = time.Minute
	}
	j := time.Duration(mrand.Int64N(int64(d)/5*2+1)) - d/5
	return d + j
}

// Crockford's base32, for sortable ids.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns "aud_" + 26 characters: 48 bits of milliseconds and 80
// random bits, so ids sort by creation time.
func NewID(t time.Time) string {
	var b [26]byte
	ms := uint64(t.UnixMilli())
	for i := 9; i >= 0; i-- {
		b[i] = crockford[ms&31]
		ms >>= 5
	}
	var rnd [10]byte // 80 bits: 16 characters of 5 bits
	_, _ = rand.Read(rnd[:])
	var acc uint64
	bits := 0
	k := 0
	for i := 10; i < 26; i++ {
		for bits < 5 {
			acc = acc<<8 | uint64(rnd[k])
			k++
			bits += 8
		}
		bits -= 5
		b[i] = crockford[(acc>>uint(bits))&31]
	}
	return "aud_" + string(b[:])
}

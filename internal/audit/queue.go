package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrQueueFull is returned by Append when the local queue holds its
// maximum and the fail mode is "reject".
var ErrQueueFull = errors.New("the audit queue is full")

// Queue is the durable local queue records go through before the store:
// append-only segment files in a directory. Append returns once the
// record is written to the file, so a record survives the gateway being
// killed (kill -9) the moment after; with Sync, it is also fsynced (one
// write and fsync for every record that arrived meanwhile: group commit)
// and survives the machine losing power. The committer reads segments in
// order and records how far it got in a position file.
type Queue struct {
	dir      string
	sync     bool
	maxBytes int64
	dropFull bool

	mu      sync.Mutex
	pending []byte        // encoded records waiting for the next write
	waiters []chan error  // Append calls waiting for that write
	kick    chan struct{} // wakes the writer
	seg     *os.File      // the segment being written
	segNum  atomic.Int64  // written by the writer, read by the committer
	segSize int64
	closed  bool

	queued  atomic.Int64 // bytes written and not yet committed
	dropped atomic.Int64
	// full is set when a record was refused, and cleared once the
	// committer has brought the backlog under 90% of the maximum.
	full atomic.Bool
	done chan struct{}
}

// segmentMax bounds one segment file.
const segmentMax = 64 << 20

// QueueOptions configure a queue.
type QueueOptions struct {
	Sync     bool  // fsync every write
	MaxBytes int64 // bytes written and not yet committed before the queue is full
	// DropWhenFull counts and drops records when full instead of refusing
	// them.
	DropWhenFull bool
}

// OpenQueue opens (creating) the queue directory. Writing always starts a
// new segment: an old one may end with a record torn by a crash.
func OpenQueue(dir string, o QueueOptions) (*Queue, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit queue: %w", err)
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 256 << 20
	}
	q := &Queue{dir: dir, sync: o.Sync, maxBytes: o.MaxBytes, dropFull: o.DropWhenFull, kick: make(chan struct{}, 1), done: make(chan struct{})}
	segs, err := q.segments()
	if err != nil {
		return nil, err
	}
	pos, err := q.position()
	if err != nil {
		return nil, err
	}
	var backlog int64
	for _, n := range segs {
		if n < pos.Segment {
			continue
		}
		fi, err := os.Stat(q.segPath(n))
		if err == nil {
			backlog += fi.Size()
		}
		q.segNum.Store(n)
	}
	backlog -= pos.Offset
	if backlog > 0 {
		q.queued.Store(backlog)
	}
	if err := q.rotate(); err != nil {
		return nil, err
	}
	if q.sync {
		go q.writer() // group commit: one fsync for every record waiting
	}
	return q, nil
}

func (q *Queue) segPath(n int64) string {
	return filepath.Join(q.dir, fmt.Sprintf("segment-%012d.jsonl", n))
}

func (q *Queue) segments() ([]int64, error) {
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, fmt.Errorf("audit queue: %w", err)
	}
	var out []int64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "segment-") || !strings.HasSuffix(name, ".jsonl") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, "segment-"), ".jsonl"), 10, 64)
		if err == nil {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func (q *Queue) rotate() error {
	if q.seg != nil {
		_ = q.seg.Close()
	}
	n := q.segNum.Load() + 1
	f, err := os.OpenFile(q.segPath(n), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit queue: %w", err)
	}
	q.seg, q.segSize = f, 0
	q.segNum.Store(n)
	return nil
}

// Append queues a record and returns once it is written.
func (q *Queue) Append(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding audit record: %w", err)
	}
	b = append(b, '\n')
	if q.queued.Load()+int64(len(b)) > q.maxBytes {
		if q.dropFull {
			q.dropped.Add(1)
			return nil
		}
		q.full.Store(true)
		return ErrQueueFull
	}
	if !q.sync {
		// Without fsync a write is cheap, and handing it to the writer
		// goroutine (two wake-ups per record when calls come one at a
		// time) cost more CPU than the write: write it here.
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.closed {
			return errors.New("the audit queue is closed")
		}
		return q.write(b)
	}
	ch := make(chan error, 1)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return errors.New("the audit queue is closed")
	}
	q.pending = append(q.pending, b...)
	q.waiters = append(q.waiters, ch)
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
	return <-ch
}

// Dropped returns how many records were dropped because the queue was
// full (fail mode drop).
func (q *Queue) Dropped() int64 { return q.dropped.Load() }

// Backlog returns the bytes written and not yet committed.
func (q *Queue) Backlog() int64 { return q.queued.Load() }

func (q *Queue) writer() {
	defer close(q.done)
	for range q.kick {
		for {
			q.mu.Lock()
			buf, waiters := q.pending, q.waiters
			q.pending, q.waiters = nil, nil
			closed := q.closed
			q.mu.Unlock()
			if len(waiters) == 0 {
				if closed {
					return
				}
				break
			}
			err := q.write(buf)
			for _, w := range waiters {
				w <- err
			}
		}
	}
}

func (q *Queue) write(buf []byte) error {
	if q.segSize > 0 && q.segSize+int64(len(buf)) > segmentMax {
		if err := q.rotate(); err != nil {
			return err
		}
	}
	if _, err := q.seg.Write(buf); err != nil {
		return fmt.Errorf("writing the audit queue: %w", err)
	}
	if q.sync {
		if err := q.seg.Sync(); err != nil {
			return fmt.Errorf("syncing the audit queue: %w", err)
		}
	}
	q.segSize += int64(len(buf))
	q.queued.Add(int64(len(buf)))
	return nil
}

// Close stops the writer after the records already appended.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	if q.sync {
		close(q.kick)
		<-q.done
	}
	return q.seg.Close()
}

// Position is how far the committer got: segment number and byte offset.
type Position struct {
	Segment int64 `json:"segment"`
	Offset  int64 `json:"offset"`
}

func (q *Queue) position() (Position, error) {
	b, err := os.ReadFile(filepath.Join(q.dir, "position"))
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("audit queue position: %w", err)
	}
	var p Position
	if err := json.Unmarshal(b, &p); err != nil {
		return Position{}, fmt.Errorf("audit queue position: %w", err)
	}
	return p, nil
}

// setPosition records the committer's progress (atomically: a temporary
// file renamed over the old one) and deletes segments wholly behind it.
func (q *Queue) setPosition(p Position, committedBytes int64) error {
	b, _ := json.Marshal(p)
	tmp := filepath.Join(q.dir, "position.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("audit queue position: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(q.dir, "position")); err != nil {
		return fmt.Errorf("audit queue position: %w", err)
	}
	if q.queued.Add(-committedBytes) < q.maxBytes/10*9 {
		q.full.Store(false)
	}
	segs, _ := q.segments()
	current := q.segNum.Load()
	for _, n := range segs {
		if n < p.Segment && n != current {
			_ = os.Remove(q.segPath(n))
		}
	}
	return nil
}

// readBatch reads up to max complete records from pos on. It returns the
// records, the position after them and the bytes they took. A segment
// other than the one being written that ends without a newline ends with
// a record torn by a crash (never acknowledged): it is skipped.
func (q *Queue) readBatch(pos Position, max int) ([]queued, Position, int64, error) {
	segs, err := q.segments()
	if err != nil {
		return nil, pos, 0, err
	}
	current := q.segNum.Load()
	var out []queued
	var used int64
	for _, n := range segs {
		if n < pos.Segment {
			continue
		}
		if n > pos.Segment {
			pos = Position{Segment: n}
		}
		f, err := os.Open(q.segPath(n))
		if err != nil {
			return out, pos, used, fmt.Errorf("audit queue: %w", err)
		}
		if _, err := f.Seek(pos.Offset, io.SeekStart); err != nil {
			f.Close()
			return out, pos, used, err
		}
		br := bufio.NewReaderSize(f, 256<<10)
		for len(out) < max {
			line, err := br.ReadBytes('\n')
			if err == io.EOF {
				if len(line) > 0 && n != current {
					// Torn tail of an old segment: skip it.
					used += int64(len(line))
					pos.Offset += int64(len(line))
				}
				break
			}
			if err != nil {
				f.Close()
				return out, pos, used, fmt.Errorf("audit queue: %w", err)
			}
			pos.Offset += int64(len(line))
			used += int64(len(line))
			r, err := parseQueued(bytes.TrimSpace(line))
			if err != nil {
				continue // not a record: cannot be acknowledged either
			}
			out = append(out, r)
		}
		f.Close()
		if len(out) >= max || n == current {
			break
		}
	}
	return out, pos, used, nil
}

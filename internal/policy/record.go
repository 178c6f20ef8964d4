package policy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Record is one recorded decision: everything needed to decide the same
// call again under another policy (`gatehouse policy test`).
type Record struct {
	Time          time.Time       `json:"time"`
	PolicyVersion string          `json:"policy_version"`
	Caller        RecordedCaller  `json:"caller"`
	Target        RecordedTarget  `json:"target"`
	Args          json.RawMessage `json:"args,omitempty"`
	Request       RecordedRequest `json:"request"`
	Session       RecordedSession `json:"session"`
	Effect        Effect          `json:"effect"`
	WouldDeny     bool            `json:"would_deny,omitempty"`
	Rule          string          `json:"rule,omitempty"`
	Origin        string          `json:"origin,omitempty"`
	Reason        string          `json:"reason,omitempty"`
}

// RecordedCaller is Caller as recorded.
type RecordedCaller struct {
	Kind       string         `json:"kind,omitempty"`
	ID         string         `json:"id,omitempty"`
	AgentID    string         `json:"agent_id,omitempty"`
	AgentName  string         `json:"agent,omitempty"`
	Team       string         `json:"team,omitempty"`
	Owner      string         `json:"owner,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
	User       string         `json:"user,omitempty"`
	Groups     []string       `json:"groups,omitempty"`
	Grants     []string       `json:"grants,omitempty"`
}

// RecordedTarget is Target as recorded.
type RecordedTarget struct {
	Kind        string      `json:"kind"`
	Server      string      `json:"server"`
	Upstream    string      `json:"upstream"`
	Name        string      `json:"name"`
	Visible     string      `json:"visible,omitempty"`
	Annotations Annotations `json:"annotations"`
}

// RecordedRequest is Request as recorded.
type RecordedRequest struct {
	Method string `json:"method"`
	Source string `json:"source,omitempty"`
}

// RecordedSession is Session as recorded.
type RecordedSession struct {
	ID     string   `json:"id,omitempty"`
	Labels []string `json:"labels,omitempty"`
	Calls  int      `json:"calls,omitempty"`
}

// NewRecord builds the record of a decision.
func NewRecord(in *Input, d Decision, version string) Record {
	c, t := in.Caller, in.Target
	return Record{
		Time: in.Request.Time, PolicyVersion: version,
		Caller: RecordedCaller{Kind: c.Kind, ID: c.ID, AgentID: c.AgentID, AgentName: c.AgentName, Team: c.Team,
			Owner: c.Owner, Attributes: c.Attributes, User: c.User, Groups: c.Groups, Grants: c.Grants},
		Target:  RecordedTarget{Kind: t.Kind, Server: t.Server, Upstream: t.Upstream, Name: t.Name, Visible: t.Visible, Annotations: t.Annotations},
		Args:    in.Args,
		Request: RecordedRequest{Method: in.Request.Method, Source: in.Request.Source},
		Session: RecordedSession{ID: in.Session.ID, Labels: in.Session.Labels, Calls: in.Session.Calls},
		Effect:  d.Effect, WouldDeny: d.WouldDeny, Rule: d.Rule, Origin: d.Origin, Reason: d.Reason,
	}
}

// Input rebuilds the decision input of a record.
func (r *Record) Input() *Input {
	c := r.Caller
	return &Input{
		Caller: &Caller{Kind: c.Kind, ID: c.ID, AgentID: c.AgentID, AgentName: c.AgentName, Team: c.Team, Owner: c.Owner,
			Attributes: c.Attributes, User: c.User, Groups: c.Groups, Grants: c.Grants},
		Target:  &Target{Kind: r.Target.Kind, Server: r.Target.Server, Upstream: r.Target.Upstream, Name: r.Target.Name, Visible: r.Target.Visible, Annotations: r.Target.Annotations},
		Args:    r.Args,
		Request: Request{Time: r.Time, Source: r.Request.Source, Method: r.Request.Method},
		Session: Session{ID: r.Session.ID, Labels: r.Session.Labels, Calls: r.Session.Calls},
	}
}

// Recorder appends records to a JSON-lines file from a background
// goroutine, so the call path never waits for the disk. When the queue is
// full, records are dropped and counted (and the count is logged).
type Recorder struct {
	log     *slog.Logger
	queue   chan Record
	dropped atomic.Int64
	done    chan struct{}

	mu     sync.RWMutex // Add holds it for reading; Close for writing
	closed bool
}

// recorderQueue bounds the records waiting for the disk.
const recorderQueue = 4096

// OpenRecorder opens (creating, mode 0600) path for appending.
func OpenRecorder(path string, log *slog.Logger) (*Recorder, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the decision record's directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the decision record: %w", err)
	}
	r := &Recorder{log: log, queue: make(chan Record, recorderQueue), done: make(chan struct{})}
	go r.run(f)
	return r, nil
}

// Add queues a record.
func (r *Recorder) Add(rec Record) {
	// Calls still being decided while the gateway shuts down may arrive
	// after Close: they are dropped, not sent on a closed channel.
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return
	}
	select {
	case r.queue <- rec:
	default:
		if r.dropped.Add(1)%1000 == 1 {
			r.log.Warn("decision record queue full: records dropped", "dropped", r.dropped.Load())
		}
	}
}

// Close writes what is queued and closes the file.
func (r *Recorder) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	<-r.done
}

func (r *Recorder) run(f *os.File) {
	defer close(r.done)
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for rec := range r.queue {
		if err := enc.Encode(rec); err != nil {
			r.log.Warn("writing the decision record", "error", err)
		}
		if len(r.queue) == 0 {
			_ = w.Flush()
		}
	}
	_ = w.Flush()
	_ = f.Close()
}

// Change is one recorded decision whose outcome a new policy changes.
type Change struct {
	Line   int    `json:"line"`
	Record Record `json:"record"`
	Now    Decision
}

// Outcome summarises a decision for comparison: allow, deny, approve, or
// would_deny (monitor mode let it through).
func Outcome(e Effect, wouldDeny bool) string {
	if e == Allow && wouldDeny {
		return "would_deny"
	}
	return string(e)
}

// ReplayReport is what `gatehouse policy test` prints.
type ReplayReport struct {
	Records        int
	Unchanged      int
	NewlyDenied    []Change // allowed before, denied (or held) now
	NewlyAllowed   []Change // denied (or held) before, allowed now
	OtherChanges   []Change // e.g. deny -> approve, allow -> would_deny
	Malformed      int
	FirstMalformed string
}

// Replay decides every record of r under p and reports what changes.
func Replay(ctx context.Context, p *Policy, r io.Reader) (ReplayReport, error) {
	var rep ReplayReport
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Target.Kind == "" {
			rep.Malformed++
			if rep.FirstMalformed == "" {
				rep.FirstMalformed = fmt.Sprintf("line %d: not a decision record", line)
			}
			continue
		}
		rep.Records++
		d := p.Decide(rec.Input(), false)
		before, after := Outcome(rec.Effect, rec.WouldDeny), Outcome(d.Effect, d.WouldDeny)
		if before == after {
			rep.Unchanged++
			continue
		}
		ch := Change{Line: line, Record: rec, Now: d}
		wasAllowed := rec.Effect == Allow
		isAllowed := d.Effect == Allow
		switch {
		case wasAllowed && !isAllowed:
			rep.NewlyDenied = append(rep.NewlyDenied, ch)
		case !wasAllowed && isAllowed:
			rep.NewlyAllowed = append(rep.NewlyAllowed, ch)
		default:
			rep.OtherChanges = append(rep.OtherChanges, ch)
		}
	}
	return rep, sc.Err()
}

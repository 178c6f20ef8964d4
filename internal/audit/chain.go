package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"gatehouse/internal/jsonrpc"
	"gatehouse/internal/store"
)

// canonical is the JSON the hash covers: the record with its sequence
// number, without PrevHash and Hash.
func canonical(r Record) ([]byte, error) {
	r.PrevHash, r.Hash = "", ""
	return json.Marshal(r)
}

// chainHash is hex(SHA-256(prevHash || "\n" || canonical)).
func chainHash(prev string, canon []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil))
}

// Seal fills a record's chain fields given its sequence number and the
// previous record's hash, and returns the stored form (the record's JSON
// with both hashes).
func Seal(r *Record, seq int64, prev string) ([]byte, error) {
	r.Seq, r.PrevHash, r.Hash = seq, "", ""
	canon, err := canonical(*r)
	if err != nil {
		return nil, fmt.Errorf("encoding audit record %s: %w", r.ID, err)
	}
	r.PrevHash = prev
	r.Hash = chainHash(prev, canon)
	return json.Marshal(r)
}

// queued is a record as the local queue holds it: its JSON (with seq 0
// and no hashes, as Log wrote it) and the columns the store indexes.
type queued struct {
	data []byte
	row  store.AuditRow
}

// parseQueued reads the indexed columns of a queued record without
// decoding all of it: the committer runs for every record, and decoding
// and re-encoding each one cost more than the rest of the commit.
func parseQueued(data []byte) (queued, error) {
	q := queued{data: data}
	r := &q.row
	var target, prompt, resource string
	str := func(v []byte) string { s, _ := jsonrpc.String(v); return s }
	err := jsonrpc.Members(data, func(m jsonrpc.Member) bool {
		v := data[m.Start:m.End]
		switch string(m.Name) {
		case "id":
			r.ID = str(v)
		case "time":
			r.Time, _ = time.Parse(time.RFC3339Nano, str(v))
		case "kind":
			r.Kind = str(v)
		case "action":
			r.Action = str(v)
		case "actor":
			_ = jsonrpc.Members(v, func(a jsonrpc.Member) bool {
				av := v[a.Start:a.End]
				switch string(a.Name) {
				case "id":
					r.ActorID = str(av)
				case "agent":
					r.AgentName = str(av)
				case "team":
					r.Team = str(av)
				case "user":
					r.User = str(av)
				}
				return true
			})
		case "target":
			_ = jsonrpc.Members(v, func(a jsonrpc.Member) bool {
				av := v[a.Start:a.End]
				switch string(a.Name) {
				case "server":
					r.Server = str(av)
				case "tool":
					target = str(av)
				case "prompt":
					prompt = str(av)
				case "resource":
					resource = str(av)
				}
				return true
			})
		case "outcome":
			if st, ok := jsonrpc.Get(v, "status"); ok {
				r.Outcome = str(st)
			}
		}
		return true
	})
	if err != nil {
		return q, fmt.Errorf("queued audit record: %w", err)
	}
	if r.ID == "" || r.Time.IsZero() {
		return q, fmt.Errorf("queued audit record: no id or time")
	}
	r.Tool = cmp.Or(target, prompt, resource)
	return q, nil
}

// seqZero is how a queued record's sequence number reads: Log writes
// records with seq 0, right after the id (the order of Record's fields).
const seqZero = `,"seq":0,"time":`

// sealQueued seals a queued record at seq after prev and returns its
// stored form and hash: the same bytes Seal produces from the decoded
// record (a test holds the two together), made by splicing the sequence
// number in and appending the hashes instead of decoding and re-encoding.
func sealQueued(data []byte, seq int64, prev string) ([]byte, string, error) {
	i := bytes.Index(data, []byte(seqZero))
	// A sealed record ends with its hash (Record's last field):
	// `,"hash":"` + 64 hex digits + `"}`.
	sealed := len(data) >= 75 && bytes.HasPrefix(data[len(data)-75:], []byte(`,"hash":"`))
	if i < 0 || !bytes.HasPrefix(data, []byte(`{"id":"`)) || data[len(data)-1] != '}' || sealed {
		// Not as Log writes records: take the long way.
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, "", fmt.Errorf("decoding queued audit record: %w", err)
		}
		stored, err := Seal(&r, seq, prev)
		return stored, r.Hash, err
	}
	canon := make([]byte, 0, len(data)+len(prev)+120)
	canon = append(canon, data[:i]...)
	canon = append(canon, `,"seq":`...)
	canon = strconv.AppendInt(canon, seq, 10)
	canon = append(canon, data[i+len(`,"seq":0`):]...)
	hash := chainHash(prev, canon)
	return sealedForm(canon, prev, hash), hash, nil
}

// sealedForm is a record's stored JSON given its canonical JSON: the
// hashes are Record's last fields, so they close the object. It reuses
// canon's memory.
func sealedForm(canon []byte, prev, hash string) []byte {
	stored := canon[:len(canon)-1]
	if prev != "" {
		stored = append(append(append(stored, `,"prev_hash":"`...), prev...), '"')
	}
	return append(append(append(stored, `,"hash":"`...), hash...), `"}`...)
}

// sealRow is the store's seal callback: it seals the queued record at the
// row's sequence and stores the result.
func sealRow(recs map[string][]byte) func(*store.AuditRow, string) error {
	return func(rw *store.AuditRow, prev string) error {
		data, hash, err := sealQueued(recs[rw.ID], rw.Seq, prev)
		if err != nil {
			return err
		}
		rw.Data, rw.PrevHash, rw.Hash = data, prev, hash
		return nil
	}
}

// Problem is the first break verification found.
type Problem struct {
	Seq    int64  `json:"seq"`
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason"`
}

func (p *Problem) Error() string {
	return fmt.Sprintf("record seq %d (%s): %s", p.Seq, p.ID, p.Reason)
}

// Verifier checks a chain read in sequence order, record by record.
type Verifier struct {
	// Trusted, when set, are the only checkpoint keys accepted.
	Trusted []ed25519.PublicKey

	started  bool
	lastSeq  int64
	lastHash string
	hashes   map[int64]string // seq -> hash, for checkpoints ahead of the walk
	Records  int64
	Checked  int // checkpoints verified
}

// Start anchors the walk: the first record must have sequence seq+1 and
// PrevHash hash (a checkpoint kept by retention, or 0, "" for the start).
func (v *Verifier) Start(seq int64, hash string) {
	v.started, v.lastSeq, v.lastHash = true, seq, hash
}

// Add checks the next record, given as stored (JSON with its hashes).
func (v *Verifier) Add(data []byte) *Problem {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return &Problem{Seq: v.lastSeq + 1, Reason: "not a record: " + err.Error()}
	}
	if !v.started {
		// Without an anchor, the first record anchors the walk.
		v.Start(r.Seq-1, r.PrevHash)
	}
	switch {
	case r.Seq != v.lastSeq+1:
		return &Problem{Seq: v.lastSeq + 1, ID: r.ID, Reason: fmt.Sprintf("missing: the next record has sequence %d (records deleted or reordered)", r.Seq)}
	case r.PrevHash != v.lastHash:
		return &Problem{Seq: r.Seq, ID: r.ID, Reason: "its prev_hash is not the previous record's hash (a record before it was changed, deleted or reordered)"}
	}
	canon, err := canonical(r)
	if err != nil {
		return &Problem{Seq: r.Seq, ID: r.ID, Reason: err.Error()}
	}
	if want := chainHash(r.PrevHash, canon); want != r.Hash {
		return &Problem{Seq: r.Seq, ID: r.ID, Reason: "its content does not match its hash (the record was changed)"}
	}
	// The hash covers the record as decoded, so bytes it does not cover
	// (a field the record type does not have, a key given twice) would
	// otherwise pass unnoticed, and a reader might believe them: the
	// bytes must be exactly those Seal wrote.
	if !bytes.Equal(bytes.TrimSpace(data), sealedForm(canon, r.PrevHash, r.Hash)) {
		return &Problem{Seq: r.Seq, ID: r.ID, Reason: "its JSON is not as sealed: it holds bytes the hash does not cover (an added field, a key given twice, or reformatting)"}
	}
	v.lastSeq, v.lastHash = r.Seq, r.Hash
	v.Records++
	return nil
}

// Head returns the last verified record's sequence and hash.
func (v *Verifier) Head() (int64, string) { return v.lastSeq, v.lastHash }

// CheckCheckpoint verifies a checkpoint's signature and, when the walk
// has reached it, that the record at its sequence has its hash.
func (v *Verifier) CheckCheckpoint(c Checkpoint, hashAt func(seq int64) (string, bool)) *Problem {
	pub, err := base64.StdEncoding.DecodeString(c.PublicKey)
	sig, err2 := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || err2 != nil || len(pub) != ed25519.PublicKeySize {
		return &Problem{Seq: c.Seq, Reason: "checkpoint: malformed key or signature"}
	}
	if len(v.Trusted) > 0 {
		ok := false
		for _, k := range v.Trusted {
			if k.Equal(ed25519.PublicKey(pub)) {
				ok = true
			}
		}
		if !ok {
			return &Problem{Seq: c.Seq, Reason: "checkpoint: signed by a key that is not trusted (" + c.KeyID + ")"}
		}
	}
	if !ed25519.Verify(pub, CheckpointMessage(c.Seq, c.Hash, c.Time), sig) {
		return &Problem{Seq: c.Seq, Reason: "checkpoint: bad signature"}
	}
	if h, ok := hashAt(c.Seq); ok && h != c.Hash {
		return &Problem{Seq: c.Seq, Reason: "checkpoint: the record at this sequence has another hash (the chain was rewritten)"}
	}
	v.Checked++
	return nil
}

// SignCheckpoint signs the head (seq, hash) at t.
func SignCheckpoint(key ed25519.PrivateKey, keyID string, seq int64, hash string, t time.Time) Checkpoint {
	t = t.UTC().Truncate(time.Millisecond)
	sig := ed25519.Sign(key, CheckpointMessage(seq, hash, t))
	return Checkpoint{Seq: seq, Hash: hash, Time: t, KeyID: keyID, PublicKey: b64(key.Public().(ed25519.PublicKey)), Signature: b64(sig)}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// AddCheckpoint signs the head (seq, hash) at t and stores the checkpoint.
func AddCheckpoint(ctx context.Context, st store.AuditStore, key ed25519.PrivateKey, keyID string, seq int64, hash string, t time.Time) (Checkpoint, error) {
	t = t.UTC().Truncate(time.Millisecond)
	pub := key.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(key, CheckpointMessage(seq, hash, t))
	err := st.AddAuditCheckpoint(ctx, store.AuditCheckpoint{Seq: seq, Hash: hash, Time: t, KeyID: keyID, PublicKey: pub, Signature: sig})
	return Checkpoint{Seq: seq, Hash: hash, Time: t, KeyID: keyID, PublicKey: b64(pub), Signature: b64(sig)}, err
}

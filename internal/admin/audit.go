package admin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/store"
)

// AuditAdmin is what the API needs of the audit trail: reading the chain
// and its signed checkpoints. A store.AuditStore satisfies it.
type AuditAdmin interface {
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditRow, error)
	ListAuditCheckpoints(ctx context.Context, fromSeq int64, limit int) ([]store.AuditCheckpoint, error)
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
}

var _ AuditAdmin = store.AuditStore(nil)

// Bounds of the audit routes.
const (
	// DefaultAuditPage and MaxAuditPage bound a page of records or
	// checkpoints.
	DefaultAuditPage = 100
	MaxAuditPage     = 1000
	// maxAuditPageBytes ends a page of records early (after at least one
	// record) once its records hold this many bytes; next says where to
	// continue. Records carry arguments of any size.
	maxAuditPageBytes = 8 << 20
	// maxAuditFilter bounds a filter's value.
	maxAuditFilter = 500
)

// errAuditOff answers the audit routes of a gateway without the trail.
func errAuditOff() error {
	return notFound("the audit trail is off on this gateway (it needs the store, i.e. an identity section, and audit.disabled unset)")
}

// AuditRecord is one audit record exactly as the store keeps it: the
// bytes the hash chain covers, passed through unchanged so that they stay
// verifiable (gatehouse audit verify). Its fields are those of the
// gatehouse audit.Record type.
type AuditRecord json.RawMessage

// MarshalJSON returns the record itself.
func (r AuditRecord) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

// UnmarshalJSON keeps a copy of the record's bytes as received.
func (r *AuditRecord) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

func (AuditRecord) openAPISchema() map[string]any {
	str := map[string]any{"type": "string"}
	obj := map[string]any{"type": "object"}
	return map[string]any{
		"type": "object",
		"description": "An audit record exactly as stored: its JSON, with seq, prev_hash and hash, is what the hash chain covers (hash = hex(SHA-256(prev_hash + \"\\n\" + the record's JSON without prev_hash and hash))). " +
			"It is passed through byte for byte; a stored value that is not JSON is returned as a JSON string, which verification reports.",
		"required": []string{"id", "seq", "time", "kind", "action", "actor", "outcome", "hash"},
		"properties": map[string]any{
			"id":          map[string]any{"type": "string", "description": "Unique and stable (aud_…), sortable by creation time."},
			"seq":         map[string]any{"type": "integer", "description": "The position in the chain: strictly increasing, without gaps."},
			"time":        map[string]any{"type": "string", "format": "date-time"},
			"kind":        map[string]any{"type": "string", "description": "mcp.request, mcp.notification, mcp.server_request, auth, admin or policy."},
			"action":      map[string]any{"type": "string", "description": "The MCP method (tools/call, …) or what happened (token.issued, agent.created, grant.expired, …)."},
			"actor":       map[string]any{"type": "object", "description": "Who acted: kind, id, agent, team, user, chain, client, source."},
			"target":      map[string]any{"type": "object", "description": "What the action was about: server, upstream, method, tool, prompt, resource, object."},
			"outcome":     map[string]any{"type": "object", "description": "status (allowed, denied, error, would_deny, pending), rule, origin, reason, error, approval."},
			"context":     obj,
			"args":        map[string]any{"description": "The call's arguments as the audit setting says (full, masked, hashed or omitted)."},
			"result":      obj,
			"masking":     str,
			"duration_ms": map[string]any{"type": "number"},
			"upstream_ms": map[string]any{"type": "number"},
			"bytes_in":    map[string]any{"type": "integer"},
			"bytes_out":   map[string]any{"type": "integer"},
			"replica":     str,
			"prev_hash":   map[string]any{"type": "string", "description": "The previous record's hash (empty for the first record)."},
			"hash":        str,
		},
	}
}

// AuditRecordsPage is a page of records.
type AuditRecordsPage struct {
	Records []AuditRecord `json:"records"`
	// Next is the seq to pass as before (order desc) or after (order asc)
	// for the next page; null when there is none.
	Next *int64 `json:"next"`
}

func (AuditRecordsPage) openAPISchema() map[string]any {
	return map[string]any{
		"type":     "object",
		"required": []string{"records", "next"},
		"properties": map[string]any{
			"records": map[string]any{"type": "array", "items": AuditRecord(nil).openAPISchema()},
			"next": map[string]any{"type": []string{"integer", "null"},
				"description": "The seq to pass as before (order desc) or after (order asc), with the same filters, for the next page; null when this page is the last."},
		},
	}
}

// AuditCheckpoint is a signed statement that the record with sequence
// Seq has hash Hash: Ed25519 over audit.CheckpointMessage(seq, hash,
// time).
type AuditCheckpoint struct {
	Seq   int64     `json:"seq"`
	Hash  string    `json:"hash"`
	Time  time.Time `json:"time"`
	KeyID string    `json:"key_id"`
	// PublicKey is the raw Ed25519 public key, base64 (standard, padded).
	PublicKey string `json:"public_key"`
	// Signature is base64 (standard, padded).
	Signature string `json:"signature"`
}

// AuditHead is the chain's last record (seq 0 and an empty hash when no
// record was ever appended; retention does not move it).
type AuditHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// The query parameters of the audit routes.
var (
	auditRecordParams = []queryParam{
		{"agent", "Only records of the agent with this name."},
		{"team", "Only records of this team."},
		{"user", "Only records of this user (calling directly, or driving the agent)."},
		{"server", "Only records about this virtual server."},
		{"tool", "Only records about this tool (or prompt, or resource)."},
		{"kind", "Only records of this kind: mcp.request, mcp.notification, mcp.server_request, auth, admin or policy."},
		{"action", "Only records of this action (tools/call, token.issued, …)."},
		{"outcome", "Only records with this outcome: allowed, denied, error, would_deny or pending."},
		{"since", "Only records at or after this RFC 3339 time."},
		{"until", "Only records before this RFC 3339 time."},
		{"after", "Only records with a greater seq (the cursor of ascending pages)."},
		{"before", "Only records with a smaller seq (the cursor of descending pages)."},
		{"order", "asc (oldest first) or desc (newest first; the default)."},
		{"limit", "At most this many records (1 to 1000; default 100). A page also ends early past 8 MiB of records; next says where to continue."},
	}
	auditCheckpointParams = []queryParam{
		{"from", "Only checkpoints with seq at or after this (default 0)."},
		{"limit", "At most this many (1 to 1000; default 100), by seq then key_id."},
	}
)

// auditOutcomes are the values of outcome.
var auditOutcomes = []string{audit.OutcomeAllowed, audit.OutcomeDenied, audit.OutcomeError, audit.OutcomeWouldDeny, audit.OutcomePending}

// auditQuery reads a route's query: every parameter must be one of
// params and given once.
func auditQuery(r *http.Request, params []queryParam) (url.Values, error) {
	q := r.URL.Query()
	for name, vs := range q {
		if len(params) == 0 {
			return nil, badRequest("%s takes no query parameters (got %q)", r.URL.Path, name)
		}
		known := slices.ContainsFunc(params, func(p queryParam) bool { return p.name == name })
		if !known {
			names := make([]string, 0, len(params))
			for _, p := range params {
				names = append(names, p.name)
			}
			return nil, badRequest("unknown query parameter %q (known: %s)", name, strings.Join(names, ", "))
		}
		if len(vs) > 1 {
			return nil, badRequest("query parameter %q is given %d times; give it once", name, len(vs))
		}
	}
	return q, nil
}

// seqParam reads a non-negative sequence number (0 when absent).
func seqParam(q url.Values, name string) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("%s must be a sequence number (an integer, 0 or more), not %q", name, v)
	}
	return n, nil
}

// limitParam reads a page size.
func limitParam(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return DefaultAuditPage, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxAuditPage {
		return 0, badRequest("limit must be a number from 1 to %d, not %q", MaxAuditPage, v)
	}
	return n, nil
}

// timeParam reads an RFC 3339 time (zero when absent).
func timeParam(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest("%s must be an RFC 3339 time such as 2026-11-25T10:00:00Z, not %q", name, v)
	}
	return t, nil
}

// auditFilter reads the filter of GET /audit/records.
func auditFilter(q url.Values) (store.AuditFilter, error) {
	var f store.AuditFilter
	for _, p := range []struct {
		name string
		dst  *string
	}{
		{"agent", &f.AgentName}, {"team", &f.Team}, {"user", &f.User}, {"server", &f.Server},
		{"tool", &f.Tool}, {"kind", &f.Kind}, {"action", &f.Action}, {"outcome", &f.Outcome},
	} {
		v := q.Get(p.name)
		if err := checkText(p.name, v, maxAuditFilter, false); err != nil {
			return f, err
		}
		*p.dst = v
	}
	if f.Outcome != "" && !slices.Contains(auditOutcomes, f.Outcome) {
		return f, badRequest("outcome must be one of %s, not %q", strings.Join(auditOutcomes, ", "), f.Outcome)
	}
	var err error
	if f.Since, err = timeParam(q, "since"); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(q, "until"); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, badRequest("since (%s) must be before until (%s)", q.Get("since"), q.Get("until"))
	}
	if f.AfterSeq, err = seqParam(q, "after"); err != nil {
		return f, err
	}
	if f.BeforeSeq, err = seqParam(q, "before"); err != nil {
		return f, err
	}
	if f.BeforeSeq > 0 && f.AfterSeq >= f.BeforeSeq {
		return f, badRequest("after (%d) must be less than before (%d)", f.AfterSeq, f.BeforeSeq)
	}
	switch o := q.Get("order"); o {
	case "", "desc":
		f.Desc = true
	case "asc":
	default:
		return f, badRequest("order must be asc or desc, not %q", o)
	}
	if f.Limit, err = limitParam(q); err != nil {
		return f, err
	}
	return f, nil
}

func (a *API) listAuditRecords(r *http.Request) (any, error) {
	if a.cfg.Audit == nil {
		return nil, errAuditOff()
	}
	q, err := auditQuery(r, auditRecordParams)
	if err != nil {
		return nil, err
	}
	f, err := auditFilter(q)
	if err != nil {
		return nil, err
	}
	limit := f.Limit
	f.Limit = limit + 1 // one more says whether there is a next page
	rows, err := a.cfg.Audit.ListAudit(r.Context(), f)
	if err != nil {
		return nil, classify(fmt.Errorf("listing audit records: %w", err), "audit records")
	}
	// The page is written by hand: records go out as stored, byte for
	// byte, never decoded and encoded again.
	var buf bytes.Buffer
	buf.WriteString(`{"records":[`)
	var next *int64
	size := 0
	for i, row := range rows {
		if i == limit || (i > 0 && size+len(row.Data) > maxAuditPageBytes) {
			seq := rows[i-1].Seq
			next = &seq
			break
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		writeStoredRecord(&buf, row.Data)
		size += len(row.Data)
	}
	buf.WriteString(`],"next":`)
	if next == nil {
		buf.WriteString("null")
	} else {
		buf.WriteString(strconv.FormatInt(*next, 10))
	}
	buf.WriteString("}\n")
	return rawJSON(buf.Bytes()), nil
}

// writeStoredRecord writes a stored record as it is; bytes that are not a
// JSON object (damage in the store) go out as a JSON string, so that the
// page stays readable and verification reports the record.
func writeStoredRecord(buf *bytes.Buffer, data []byte) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
		buf.Write(trimmed)
		return
	}
	s, _ := json.Marshal(string(data))
	buf.Write(s)
}

func (a *API) listAuditCheckpoints(r *http.Request) (any, error) {
	if a.cfg.Audit == nil {
		return nil, errAuditOff()
	}
	q, err := auditQuery(r, auditCheckpointParams)
	if err != nil {
		return nil, err
	}
	from, err := seqParam(q, "from")
	if err != nil {
		return nil, err
	}
	limit, err := limitParam(q)
	if err != nil {
		return nil, err
	}
	list, err := a.cfg.Audit.ListAuditCheckpoints(r.Context(), from, limit)
	if err != nil {
		return nil, classify(fmt.Errorf("listing audit checkpoints: %w", err), "audit checkpoints")
	}
	out := make([]AuditCheckpoint, 0, len(list))
	for _, c := range list {
		out = append(out, AuditCheckpoint{Seq: c.Seq, Hash: c.Hash, Time: c.Time.UTC(), KeyID: c.KeyID,
			PublicKey: base64.StdEncoding.EncodeToString(c.PublicKey), Signature: base64.StdEncoding.EncodeToString(c.Signature)})
	}
	return out, nil
}

func (a *API) auditHead(r *http.Request) (any, error) {
	if a.cfg.Audit == nil {
		return nil, errAuditOff()
	}
	if _, err := auditQuery(r, nil); err != nil {
		return nil, err
	}
	seq, hash, err := a.cfg.Audit.AuditHead(r.Context())
	if err != nil {
		return nil, classify(fmt.Errorf("reading the audit head: %w", err), "the audit head")
	}
	return AuditHead{Seq: seq, Hash: hash}, nil
}

package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gatehouse/internal/audit"
	"gatehouse/internal/store"
)

// HeldCall is a call a workflow rule holds for approval.
type HeldCall struct {
	Caller        *Caller
	Server        string
	Tool          string // client-visible name
	Args          json.RawMessage
	PolicyVersion string
	Decision      Decision
}

// PendingError is returned by Await when no decision came in time; the
// approval stays open and the same call proceeds once it is approved.
type PendingError struct{ Approval store.Approval }

func (e *PendingError) Error() string {
	return fmt.Sprintf("approval %s is pending (workflow rule %q): ask an approver to run `gatehouse approvals approve %s`, then retry the same call before %s",
		e.Approval.ID, e.Approval.Rule, e.Approval.ID, e.Approval.ExpiresAt.UTC().Format(time.RFC3339))
}

// DeniedError is returned by Await when an approver denied the call.
type DeniedError struct{ Approval store.Approval }

func (e *DeniedError) Error() string {
	msg := fmt.Sprintf("approval %s was denied by %s", e.Approval.ID, e.Approval.DecidedBy)
	if e.Approval.Note != "" {
		msg += ": " + e.Approval.Note
	}
	return msg
}

// maxApprovalArgs bounds the arguments kept with an approval for the
// approver to read.
const maxApprovalArgs = 8 << 10

// Await holds a call until a person approves or denies it, or wait
// passes. An approved, unused approval of the same call (an approver
// decided after an earlier attempt timed out) is used at once. notify is
// called once when a new approval request is opened, so the caller can be
// told what is pending. A nil error means the call may proceed; the
// approval is then used up.
func (e *Engine) Await(ctx context.Context, h HeldCall, wait, ttl time.Duration, notify func(store.Approval)) (store.Approval, error) {
	if e.st == nil {
		return store.Approval{}, ErrNoStore
	}
	argsHash := ArgsHash(h.Args)
	key := approvalKey(h.Caller.ID, h.Server, h.Tool, argsHash, h.PolicyVersion)
	now := time.Now().UTC()
	a, err := e.st.FindApproval(ctx, key, now)
	switch {
	case err == nil && a.Status == store.ApprovalApproved:
		return e.consume(ctx, a)
	case err == nil: // pending: wait for the same request
	case errors.Is(err, store.ErrNotFound):
		args := h.Args
		if len(args) > maxApprovalArgs {
			args, _ = json.Marshal(fmt.Sprintf("(%d bytes of arguments, not kept)", len(args)))
		}
		if len(args) == 0 {
			args = json.RawMessage(`{}`)
		}
		name := h.Caller.AgentName
		if name == "" {
			name = h.Caller.User
		}
		a = store.Approval{ID: "apr_" + randomID(), Key: key, Status: store.ApprovalPending, Principal: h.Caller.ID,
			PrincipalName: name, Server: h.Server, Tool: h.Tool, ArgsHash: argsHash, Args: args,
			PolicyVersion: h.PolicyVersion, Rule: h.Decision.Rule, Reason: h.Decision.Reason,
			CreatedAt: now, ExpiresAt: now.Add(ttl)}
		if err := e.st.CreateApproval(ctx, a); err != nil {
			return store.Approval{}, fmt.Errorf("opening an approval request: %w", err)
		}
		e.record("approval.requested", audit.Actor{Kind: h.Caller.Kind, ID: a.Principal, AgentID: h.Caller.AgentID, AgentName: h.Caller.AgentName,
			Team: h.Caller.Team, User: h.Caller.User}, "", a.Server+"/"+a.Tool, a.Reason, a.ID)
		e.log.Info("audit: approval requested", "event", "approval.requested", "approval", a.ID, "caller", a.Principal,
			"server", a.Server, "tool", a.Tool, "rule", a.Rule, "expires_at", a.ExpiresAt)
		_ = e.st.Publish(ctx, store.Change{Kind: "approval", ID: a.ID})
		if notify != nil {
			notify(a)
		}
	default:
		return store.Approval{}, fmt.Errorf("looking up approvals: %w", err)
	}

	ch := e.watch(a.ID)
	defer e.unwatch(a.ID, ch)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	// The change feed wakes held calls at once; the poll covers a feed that
	// missed a notification.
	poll := time.NewTicker(2 * time.Second)
	defer poll.Stop()
	for {
		cur, err := e.st.GetApproval(ctx, a.ID)
		if err != nil {
			return store.Approval{}, fmt.Errorf("reading approval %s: %w", a.ID, err)
		}
		switch cur.Status {
		case store.ApprovalApproved:
			return e.consume(ctx, cur)
		case store.ApprovalDenied:
			return cur, &DeniedError{cur}
		case store.ApprovalUsed:
			// A concurrent identical call used it: this one needs its own.
			return cur, &PendingError{cur}
		}
		if !time.Now().Before(cur.ExpiresAt) {
			return cur, &PendingError{cur}
		}
		select {
		case <-ctx.Done():
			return cur, ctx.Err()
		case <-timer.C:
			return cur, &PendingError{cur}
		case <-ch:
		case <-poll.C:
		}
	}
}

func (e *Engine) consume(ctx context.Context, a store.Approval) (store.Approval, error) {
	used, err := e.st.ConsumeApproval(ctx, a.ID, time.Now().UTC())
	if err != nil {
		if errors.Is(err, store.ErrUsed) {
			return a, &PendingError{a}
		}
		return a, fmt.Errorf("using approval %s: %w", a.ID, err)
	}
	e.record("approval.used", audit.Actor{ID: a.Principal, AgentName: a.PrincipalName}, "", a.Server+"/"+a.Tool, "", a.ID)
	e.log.Info("audit: approval used", "event", "approval.used", "approval", a.ID, "caller", a.Principal, "tool", a.Tool)
	return used, nil
}

// DecideApproval records an approver's decision and wakes the held call,
// on whichever replica holds it.
func (e *Engine) DecideApproval(ctx context.Context, id string, approve bool, by, note string) (store.Approval, error) {
	if e.st == nil {
		return store.Approval{}, ErrNoStore
	}
	status := store.ApprovalDenied
	if approve {
		status = store.ApprovalApproved
	}
	a, err := e.st.DecideApproval(ctx, id, status, by, note, time.Now().UTC())
	if err != nil {
		return a, err
	}
	e.record("approval."+status, audit.Actor{Kind: "admin", User: by}, "", a.Server+"/"+a.Tool+" for "+a.Principal, note, id)
	e.log.Info("audit: approval decided", "event", "approval.decided", "approval", id, "status", status, "by", by, "caller", a.Principal, "tool", a.Tool)
	_ = e.st.Publish(ctx, store.Change{Kind: "approval", ID: id})
	e.wake(id)
	return a, nil
}

// ListApprovals lists approval requests.
func (e *Engine) ListApprovals(ctx context.Context, f store.ApprovalFilter) ([]store.Approval, error) {
	if e.st == nil {
		return nil, ErrNoStore
	}
	return e.st.ListApprovals(ctx, f)
}

// GetApproval returns one approval request.
func (e *Engine) GetApproval(ctx context.Context, id string) (store.Approval, error) {
	if e.st == nil {
		return store.Approval{}, ErrNoStore
	}
	return e.st.GetApproval(ctx, id)
}

func (e *Engine) watch(id string) chan struct{} {
	ch := make(chan struct{}, 1)
	e.waitMu.Lock()
	e.waiters[id] = append(e.waiters[id], ch)
	e.waitMu.Unlock()
	return ch
}

func (e *Engine) unwatch(id string, ch chan struct{}) {
	e.waitMu.Lock()
	defer e.waitMu.Unlock()
	list := e.waiters[id]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(e.waiters, id)
	} else {
		e.waiters[id] = list
	}
}

func (e *Engine) wake(id string) {
	e.waitMu.Lock()
	defer e.waitMu.Unlock()
	for _, ch := range e.waiters[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Package storetest is the conformance suite for store.Store
// implementations. Each implementation's tests call Run with a function
// that opens a fresh, empty store; passing it is what "implements
// store.Store" means beyond compiling.
//
// Rules the suite pins down where the interface leaves room:
//   - times come back in UTC and equal to what was stored at millisecond
//     precision (fixtures use whole milliseconds; see testTimes);
//   - a nil *time.Time, a nil json.RawMessage and a nil []string come back
//     nil, an empty []string comes back empty, JSON comes back byte for
//     byte; nil and empty byte strings are interchangeable;
//   - Update* and Delete* of a missing record return ErrNotFound, and so
//     does AddCredential for a missing agent;
//   - UpsertTeam and PutSecret keep the CreatedAt of the first write;
//   - an empty Agent.ClientID means "no client id" and is not unique;
//   - ListCredentials of an unknown agent and RevokeRefreshFamily of an
//     unknown family are not errors;
//   - refresh-family revocation is sticky: a token created later in a
//     revoked family cannot be consumed;
//   - grants and approvals expire at their ExpiresAt (as Grant.Active
//     says), not after it;
//   - MarkGrantExpired of an unknown grant reports false, not an error;
//     ListGrants with ExpiredUnnoted and a zero ActiveAt is an error;
//   - DecideApproval with a status other than approved or denied is an
//     error that is neither ErrUsed nor ErrNotFound, and changes nothing;
//   - ListGrants is oldest first, ListApprovals and FindApproval newest
//     first, by CreatedAt.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/internal/store"
)

// Deadline bounds every wait for a change to arrive. It is generous on
// purpose: the suite never asserts on how fast anything happens.
const Deadline = 10 * time.Second

// Run runs the suite. open must return a fresh, empty store for the test
// it is given and close it when that test ends (t.Cleanup); the suite may
// close it earlier itself, so Close must be safe to call twice.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Teams", testTeams},
		{"Agents", testAgents},
		{"AgentList", testAgentList},
		{"AgentUpdate", testAgentUpdate},
		{"Credentials", testCredentials},
		{"Users", testUsers},
		{"Clients", testClients},
		{"AuthCodes", testAuthCodes},
		{"AuthCodeRace", testAuthCodeRace},
		{"RefreshTokens", testRefreshTokens},
		{"RefreshTokenRace", testRefreshTokenRace},
		{"SigningKeys", testSigningKeys},
		{"Secrets", testSecrets},
		{"Grants", testGrants},
		{"GrantList", testGrantList},
		{"GrantRevoke", testGrantRevoke},
		{"GrantExpiry", testGrantExpiry},
		{"GrantExpiryRace", testGrantExpiryRace},
		{"Approvals", testApprovals},
		{"ApprovalList", testApprovalList},
		{"ApprovalListLimit", testApprovalListLimit},
		{"ApprovalDecide", testApprovalDecide},
		{"ApprovalDecideRace", testApprovalDecideRace},
		{"ApprovalFind", testApprovalFind},
		{"ApprovalConsume", testApprovalConsume},
		{"ApprovalConsumeRace", testApprovalConsumeRace},
		{"ToolPins", toolPinTests(open)},
		{"Times", testTimes},
		{"ConcurrentWrites", testConcurrentWrites},
		{"Changes", testChanges},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// t0 is the fixtures' reference time: a whole millisecond, in UTC.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// ptr returns a pointer to t0 plus d.
func ptr(d time.Duration) *time.Time {
	t := at(d)
	return &t
}

// must fails the test on err.
func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr fails the test unless err is target. contains, when not empty,
// must appear in the message: errors carry the record they are about.
func wantErr(t *testing.T, err, target error, contains, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
	if contains != "" && !strings.Contains(err.Error(), contains) {
		t.Errorf("%s: error %q does not name %q", what, err, contains)
	}
}

// same fails the test when got and want differ; see diff.
func same(t *testing.T, got, want any, what string) {
	t.Helper()
	if d := diff(got, want); len(d) > 0 {
		t.Fatalf("%s differs:\n  %s", what, strings.Join(d, "\n  "))
	}
}

// diff compares two values of the same type field by field. Times must be
// equal instants and in UTC; pointers and []string must agree on nil;
// json.RawMessage must agree on nil and bytes; other byte slices compare
// by content (nil equals empty).
func diff(got, want any) []string {
	var out []string
	diffValue("", reflect.ValueOf(got), reflect.ValueOf(want), &out)
	return out
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

func diffValue(path string, g, w reflect.Value, out *[]string) {
	name := path
	if name == "" {
		name = "value"
	}
	mismatch := func(format string, args ...any) {
		*out = append(*out, name+": "+fmt.Sprintf(format, args...))
	}
	switch {
	case g.Type() == timeType:
		gt, wt := g.Interface().(time.Time), w.Interface().(time.Time)
		if !gt.Equal(wt) {
			mismatch("got %v, want %v", gt, wt)
		} else if gt.Location() != time.UTC {
			mismatch("got %v, want it in UTC", gt)
		}
	case g.Type() == rawType:
		gr, wr := g.Interface().(json.RawMessage), w.Interface().(json.RawMessage)
		if wr == nil && gr != nil {
			mismatch("got %q, want nil", gr)
		} else if !bytes.Equal(gr, wr) {
			mismatch("got %q, want %q", gr, wr)
		}
	case g.Kind() == reflect.Slice && g.Type().Elem().Kind() == reflect.Uint8:
		if !bytes.Equal(g.Bytes(), w.Bytes()) {
			mismatch("got %x, want %x", g.Bytes(), w.Bytes())
		}
	case g.Kind() == reflect.Pointer:
		switch {
		case g.IsNil() && w.IsNil():
		case g.IsNil() || w.IsNil():
			mismatch("got %v, want %v", describe(g), describe(w))
		default:
			diffValue(path, g.Elem(), w.Elem(), out)
		}
	case g.Kind() == reflect.Slice:
		if g.IsNil() != w.IsNil() || g.Len() != w.Len() {
			mismatch("got %v, want %v", describe(g), describe(w))
			return
		}
		for i := range g.Len() {
			diffValue(fmt.Sprintf("%s[%d]", path, i), g.Index(i), w.Index(i), out)
		}
	case g.Kind() == reflect.Struct:
		for i := range g.NumField() {
			f := g.Type().Field(i).Name
			p := f
			if path != "" {
				p = path + "." + f
			}
			diffValue(p, g.Field(i), w.Field(i), out)
		}
	default:
		if !reflect.DeepEqual(g.Interface(), w.Interface()) {
			mismatch("got %#v, want %#v", g.Interface(), w.Interface())
		}
	}
}

func describe(v reflect.Value) string {
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Slice) && v.IsNil() {
		return "nil"
	}
	if v.Kind() == reflect.Pointer {
		return fmt.Sprintf("&%v", v.Elem().Interface())
	}
	return fmt.Sprintf("%#v", v.Interface())
}

// race runs fn n times at once (as nearly as goroutines allow) and returns
// every result.
func race(n int, fn func() error) []error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn()
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// countWins checks that exactly one of errs is nil and every other is
// ErrUsed.
func countWins(t *testing.T, errs []error, what string) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrUsed):
		default:
			t.Errorf("%s: unexpected error %v", what, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%s: %d of %d concurrent consumers succeeded, want exactly 1", what, wins, len(errs))
	}
}

// ctx returns the test's context.
func ctx(t *testing.T) context.Context { return t.Context() }

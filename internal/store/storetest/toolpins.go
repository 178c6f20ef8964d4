package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"gatehouse/internal/store"
)

// Rules the suite pins down for tool pins, where the interface leaves room:
//   - Canonical comes back byte for byte (spacing, key order, non-ASCII);
//   - ListToolPins and ListPendingTools order by upstream then tool,
//     bytewise ("Zeta" < "a_b" < "ab"), and an upstream filter matches the
//     name exactly (not as a prefix);
//   - RecordPendingTool of the hash already waiting changes only LastSeen
//     (Canonical and FirstSeen stay as first recorded);
//   - ApproveTool of an unknown tool, or of a hash that is not the waiting
//     one, is ErrNotFound and changes nothing; a pin of the tool is not
//     required (approving a new tool creates its pin);
//   - after DeleteToolPin, PinTool of the tool works again.

// toolPinTests runs the tool pin tests, each on a fresh store (the first
// on s, which Run opened for it).
func toolPinTests(open func(t *testing.T) store.Store) func(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Pin", testToolPins},
		{"PinList", testToolPinList},
		{"Pending", testPendingTools},
		{"Approve", testToolApprove},
		{"Delete", testToolPinDelete},
		{"PinRace", testToolPinRace},
		{"ApproveRace", testToolApproveRace},
	}
	return func(t *testing.T, s store.Store) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				fresh := s
				if i > 0 {
					fresh = open(t)
				}
				tt.fn(t, fresh)
			})
		}
	}
}

// cet is a zone other than UTC: times given in it come back in UTC.
var cet = time.FixedZone("CET", 3600)

// hashOf returns the hex SHA-256 of canonical, as pin.Fingerprint does.
// The stores do not check it: they keep what they are given.
func hashOf(canonical json.RawMessage) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// toolDef returns the hash and a canonical definition of tool with the
// given description.
func toolDef(tool, desc string) (string, json.RawMessage) {
	canon := json.RawMessage(fmt.Sprintf(`{"description":%q,"inputSchema":{"properties":{"q":{"type":"string"}},"type":"object"},"name":%q}`, desc, tool))
	return hashOf(canon), canon
}

// newPin returns the pin of (upstream, tool) with the definition desc,
// approved by by at when (from t0).
func newPin(upstream, tool, desc, by string, when time.Duration) store.ToolPin {
	hash, canon := toolDef(tool, desc)
	return store.ToolPin{Upstream: upstream, Tool: tool, Hash: hash, Canonical: canon, ApprovedBy: by, ApprovedAt: at(when)}
}

// newPending returns the pending definition desc of (upstream, tool), seen
// first at first and last at last (from t0).
func newPending(upstream, tool, desc string, first, last time.Duration) store.PendingTool {
	hash, canon := toolDef(tool, desc)
	return store.PendingTool{Upstream: upstream, Tool: tool, Hash: hash, Canonical: canon, FirstSeen: at(first), LastSeen: at(last)}
}

// approvedAs returns the pin ApproveTool makes of p.
func approvedAs(p store.PendingTool, by string, when time.Duration) store.ToolPin {
	return store.ToolPin{Upstream: p.Upstream, Tool: p.Tool, Hash: p.Hash, Canonical: p.Canonical, ApprovedBy: by, ApprovedAt: at(when)}
}

func toolKeys[T store.ToolPin | store.PendingTool](l []T) []string {
	var keys []string
	for _, v := range l {
		switch v := any(v).(type) {
		case store.ToolPin:
			keys = append(keys, v.Upstream+"/"+v.Tool)
		case store.PendingTool:
			keys = append(keys, v.Upstream+"/"+v.Tool)
		}
	}
	return keys
}

// pinIs fails the test unless the stored pin of want's tool is want.
func pinIs(t *testing.T, s store.Store, want store.ToolPin, what string) {
	t.Helper()
	got, err := s.GetToolPin(ctx(t), want.Upstream, want.Tool)
	must(t, err, fmt.Sprintf("GetToolPin(%s, %s)", want.Upstream, want.Tool))
	same(t, got, want, what)
}

// noPin fails the test unless (upstream, tool) has no pin.
func noPin(t *testing.T, s store.Store, upstream, tool, what string) {
	t.Helper()
	_, err := s.GetToolPin(ctx(t), upstream, tool)
	wantErr(t, err, store.ErrNotFound, tool, what)
}

// pendingAre fails the test unless upstream's pending definitions are
// want, in order.
func pendingAre(t *testing.T, s store.Store, upstream string, want []store.PendingTool, what string) {
	t.Helper()
	got, err := s.ListPendingTools(ctx(t), upstream)
	must(t, err, fmt.Sprintf("ListPendingTools(%q)", upstream))
	if len(got) != len(want) {
		t.Fatalf("%s: ListPendingTools(%q) = %v, want %v", what, upstream, toolKeys(got), toolKeys(want))
	}
	if len(want) > 0 {
		same(t, got, want, what)
	}
}

func testToolPins(t *testing.T, s store.Store) {
	noPin(t, s, "github", "search", "GetToolPin on an empty store")

	// Spacing, key order and non-ASCII text must survive: the hash covers
	// the bytes.
	full := newPin("github", "search", "Search ünïcode — 検索", "alice@example.com", time.Minute)
	full.Canonical = json.RawMessage(`{"name":"search","description":"Search ünïcode — 検索 \"quoted\"\n","b":1.0,"a":[ ]}`)
	full.Hash = hashOf(full.Canonical)
	full.ApprovedAt = full.ApprovedAt.In(cet)
	firstUse := newPin("github", "list_issues", "List issues", "first-use", 0)
	for _, p := range []store.ToolPin{full, firstUse} {
		must(t, s.PinTool(ctx(t), p), "PinTool "+p.Tool)
		pinIs(t, s, p, "pin of "+p.Tool)
	}

	// A second pin of the same tool, even with the same definition, is a
	// conflict, and the first stays.
	other := newPin("github", "search", "Search, changed", "bob@example.com", time.Hour)
	wantErr(t, s.PinTool(ctx(t), other), store.ErrConflict, "search", "PinTool of a pinned tool")
	wantErr(t, s.PinTool(ctx(t), full), store.ErrConflict, "search", "PinTool of the same pin again")
	pinIs(t, s, full, "pin after conflicting PinTool")

	// The same tool name on another upstream is another tool.
	elsewhere := newPin("gitlab", "search", "Search GitLab", "first-use", 2*time.Minute)
	must(t, s.PinTool(ctx(t), elsewhere), "PinTool on another upstream")
	pinIs(t, s, elsewhere, "pin on another upstream")
	pinIs(t, s, full, "pin after pinning the same name on another upstream")

	noPin(t, s, "github", "missing", "GetToolPin unknown tool")
	noPin(t, s, "missing", "search", "GetToolPin unknown upstream")

	// Pinning does not make anything pending.
	pendingAre(t, s, "", nil, "pending after pinning")
}

func testToolPinList(t *testing.T, s store.Store) {
	list, err := s.ListToolPins(ctx(t), "")
	must(t, err, "ListToolPins on an empty store")
	if len(list) != 0 {
		t.Fatalf("ListToolPins on an empty store = %v, want none", toolKeys(list))
	}
	// Stored out of order; names chosen so that bytewise order differs
	// from a case- or punctuation-insensitive one.
	in := []store.ToolPin{
		newPin("jira", "create", "Create", "first-use", 0),
		newPin("github", "ab", "ab", "first-use", 0),
		newPin("github", "Zeta", "Zeta", "first-use", 0),
		newPin("git", "clone", "Clone", "first-use", 0),
		newPin("github", "a_b", "a_b", "first-use", 0),
		newPin("Atlassian", "page", "Page", "first-use", 0),
		newPin("github", "alpha", "alpha", "first-use", 0),
	}
	for _, p := range in {
		must(t, s.PinTool(ctx(t), p), "PinTool "+p.Upstream+"/"+p.Tool)
	}
	// A pending definition is not a pin.
	must(t, s.RecordPendingTool(ctx(t), newPending("github", "pending_only", "new", 0, 0)), "RecordPendingTool")

	tests := []struct {
		upstream string
		want     []string
	}{
		{"", []string{"Atlassian/page", "git/clone", "github/Zeta", "github/a_b", "github/ab", "github/alpha", "jira/create"}},
		{"github", []string{"github/Zeta", "github/a_b", "github/ab", "github/alpha"}},
		{"git", []string{"git/clone"}},
		{"jira", []string{"jira/create"}},
		{"GitHub", nil},
		{"missing", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("upstream %q", tt.upstream), func(t *testing.T) {
			got, err := s.ListToolPins(ctx(t), tt.upstream)
			must(t, err, "ListToolPins")
			if keys := toolKeys(got); fmt.Sprint(keys) != fmt.Sprint(tt.want) {
				t.Fatalf("ListToolPins(%q) = %v, want %v", tt.upstream, keys, tt.want)
			}
		})
	}
	// Listing returns whole records.
	got, err := s.ListToolPins(ctx(t), "jira")
	must(t, err, "ListToolPins jira")
	same(t, got, []store.ToolPin{in[0]}, "ListToolPins jira")
}

func testPendingTools(t *testing.T, s store.Store) {
	pendingAre(t, s, "", nil, "ListPendingTools on an empty store")

	v1 := newPending("github", "search", "Search v1", time.Minute, time.Minute)
	v1.FirstSeen, v1.LastSeen = v1.FirstSeen.In(cet), v1.LastSeen.In(cet)
	must(t, s.RecordPendingTool(ctx(t), v1), "RecordPendingTool v1")
	pendingAre(t, s, "github", []store.PendingTool{v1}, "pending after the first record")

	t.Run("same hash", func(t *testing.T) {
		// Seen again later: only LastSeen moves. The canonical form given
		// differs in spacing (which a real caller would not do with the
		// same hash) to show it is not rewritten.
		again := v1
		again.Canonical = json.RawMessage(" " + string(v1.Canonical) + " ")
		again.FirstSeen, again.LastSeen = at(5*time.Minute), at(5*time.Minute)
		must(t, s.RecordPendingTool(ctx(t), again), "RecordPendingTool same hash")
		want := v1
		want.LastSeen = at(5 * time.Minute)
		pendingAre(t, s, "github", []store.PendingTool{want}, "pending after the same hash")
		v1 = want
	})

	t.Run("other hash", func(t *testing.T) {
		// Another definition replaces the waiting one, FirstSeen included.
		v2 := newPending("github", "search", "Search v2", 10*time.Minute, 11*time.Minute)
		must(t, s.RecordPendingTool(ctx(t), v2), "RecordPendingTool other hash")
		pendingAre(t, s, "github", []store.PendingTool{v2}, "pending after another hash")

		// Going back to the first definition is a change too.
		back := newPending("github", "search", "Search v1", 20*time.Minute, 20*time.Minute)
		must(t, s.RecordPendingTool(ctx(t), back), "RecordPendingTool back to v1")
		pendingAre(t, s, "github", []store.PendingTool{back}, "pending after going back")
	})

	t.Run("list", func(t *testing.T) {
		for _, p := range []store.PendingTool{
			newPending("jira", "create", "Create", 0, 0),
			newPending("github", "Zeta", "Zeta", 0, 0),
			newPending("git", "clone", "Clone", 0, 0),
			newPending("github", "a_b", "a_b", 0, 0),
		} {
			must(t, s.RecordPendingTool(ctx(t), p), "RecordPendingTool "+p.Upstream+"/"+p.Tool)
		}
		tests := []struct {
			upstream string
			want     []string
		}{
			{"", []string{"git/clone", "github/Zeta", "github/a_b", "github/search", "jira/create"}},
			{"github", []string{"github/Zeta", "github/a_b", "github/search"}},
			{"git", []string{"git/clone"}},
			{"missing", nil},
		}
		for _, tt := range tests {
			got, err := s.ListPendingTools(ctx(t), tt.upstream)
			must(t, err, "ListPendingTools")
			if keys := toolKeys(got); fmt.Sprint(keys) != fmt.Sprint(tt.want) {
				t.Fatalf("ListPendingTools(%q) = %v, want %v", tt.upstream, keys, tt.want)
			}
		}
	})

	// Pending definitions are not pins.
	noPin(t, s, "github", "search", "GetToolPin of a tool that is only pending")
}

func testToolApprove(t *testing.T, s store.Store) {
	pin := newPin("github", "search", "Search v1", "first-use", 0)
	must(t, s.PinTool(ctx(t), pin), "PinTool")
	changed := newPending("github", "search", "Search v2, exfiltrate", time.Minute, 2*time.Minute)
	must(t, s.RecordPendingTool(ctx(t), changed), "RecordPendingTool")
	// Another tool waiting, to show approvals touch only their own.
	bystander := newPending("github", "list_issues", "List issues", time.Minute, time.Minute)
	must(t, s.RecordPendingTool(ctx(t), bystander), "RecordPendingTool bystander")

	t.Run("wrong hash", func(t *testing.T) {
		for _, hash := range []string{pin.Hash, "0000", "", bystander.Hash} {
			_, err := s.ApproveTool(ctx(t), "github", "search", hash, "bob@example.com", at(3*time.Minute))
			wantErr(t, err, store.ErrNotFound, "search", fmt.Sprintf("ApproveTool with hash %q", hash))
		}
		pinIs(t, s, pin, "pin after approvals of the wrong hash")
		pendingAre(t, s, "github", []store.PendingTool{bystander, changed}, "pending after approvals of the wrong hash")
	})

	t.Run("unknown", func(t *testing.T) {
		for _, k := range [][2]string{{"github", "missing"}, {"gitlab", "search"}} {
			_, err := s.ApproveTool(ctx(t), k[0], k[1], changed.Hash, "bob@example.com", at(3*time.Minute))
			wantErr(t, err, store.ErrNotFound, k[1], "ApproveTool of "+k[0]+"/"+k[1])
		}
		pendingAre(t, s, "", []store.PendingTool{bystander, changed}, "pending after approvals of unknown tools")
	})

	t.Run("replaces the pin", func(t *testing.T) {
		got, err := s.ApproveTool(ctx(t), "github", "search", changed.Hash, "bob@example.com", at(3*time.Minute).In(cet))
		must(t, err, "ApproveTool")
		want := approvedAs(changed, "bob@example.com", 3*time.Minute)
		same(t, got, want, "ApproveTool result")
		pinIs(t, s, want, "pin after ApproveTool")
		pendingAre(t, s, "", []store.PendingTool{bystander}, "pending after ApproveTool")

		// Once approved, it is no longer pending.
		_, err = s.ApproveTool(ctx(t), "github", "search", changed.Hash, "carol@example.com", at(4*time.Minute))
		wantErr(t, err, store.ErrNotFound, "search", "ApproveTool twice")
		pinIs(t, s, want, "pin after ApproveTool twice")
	})

	t.Run("new tool", func(t *testing.T) {
		noPin(t, s, "github", "list_issues", "GetToolPin before approving a new tool")
		got, err := s.ApproveTool(ctx(t), "github", "list_issues", bystander.Hash, "bob@example.com", at(5*time.Minute))
		must(t, err, "ApproveTool of a new tool")
		want := approvedAs(bystander, "bob@example.com", 5*time.Minute)
		same(t, got, want, "ApproveTool result for a new tool")
		pinIs(t, s, want, "pin of a new tool")
		pendingAre(t, s, "", nil, "pending after approving everything")
	})

	t.Run("changed again before approval", func(t *testing.T) {
		v3 := newPending("github", "search", "Search v3", 6*time.Minute, 6*time.Minute)
		v4 := newPending("github", "search", "Search v4", 7*time.Minute, 7*time.Minute)
		must(t, s.RecordPendingTool(ctx(t), v3), "RecordPendingTool v3")
		must(t, s.RecordPendingTool(ctx(t), v4), "RecordPendingTool v4")
		before, err := s.GetToolPin(ctx(t), "github", "search")
		must(t, err, "GetToolPin")
		// The operator looked at v3; v4 replaced it meanwhile.
		_, err = s.ApproveTool(ctx(t), "github", "search", v3.Hash, "bob@example.com", at(8*time.Minute))
		wantErr(t, err, store.ErrNotFound, "search", "ApproveTool of a replaced definition")
		pinIs(t, s, before, "pin after approving a replaced definition")
		pendingAre(t, s, "github", []store.PendingTool{v4}, "pending after approving a replaced definition")
	})
}

func testToolPinDelete(t *testing.T, s store.Store) {
	pinned := newPin("github", "pinned", "Pinned", "first-use", 0)
	both := newPin("github", "both", "Both v1", "first-use", 0)
	bothPending := newPending("github", "both", "Both v2", time.Minute, time.Minute)
	pendingOnly := newPending("github", "pending", "Pending", time.Minute, time.Minute)
	// Same tool names elsewhere, and another tool of the same upstream:
	// deleting must not touch them.
	keep := []store.ToolPin{
		newPin("gitlab", "pinned", "Pinned elsewhere", "first-use", 0),
		newPin("gitlab", "both", "Both elsewhere", "first-use", 0),
		newPin("github", "other", "Other", "first-use", 0),
	}
	keepPending := []store.PendingTool{
		newPending("gitlab", "both", "Both elsewhere v2", time.Minute, time.Minute),
		newPending("gitlab", "pending", "Pending elsewhere", time.Minute, time.Minute),
	}
	for _, p := range append([]store.ToolPin{pinned, both}, keep...) {
		must(t, s.PinTool(ctx(t), p), "PinTool "+p.Upstream+"/"+p.Tool)
	}
	for _, p := range append([]store.PendingTool{bothPending, pendingOnly}, keepPending...) {
		must(t, s.RecordPendingTool(ctx(t), p), "RecordPendingTool "+p.Upstream+"/"+p.Tool)
	}

	for _, tool := range []string{"pinned", "both", "pending"} {
		must(t, s.DeleteToolPin(ctx(t), "github", tool), "DeleteToolPin "+tool)
		noPin(t, s, "github", tool, "GetToolPin after DeleteToolPin "+tool)
		wantErr(t, s.DeleteToolPin(ctx(t), "github", tool), store.ErrNotFound, tool, "DeleteToolPin "+tool+" twice")
	}
	pendingAre(t, s, "github", nil, "pending of github after deleting")
	pendingAre(t, s, "", keepPending, "pending after deleting")
	for _, p := range keep {
		pinIs(t, s, p, "unrelated pin after deleting")
	}
	wantErr(t, s.DeleteToolPin(ctx(t), "missing", "pinned"), store.ErrNotFound, "pinned", "DeleteToolPin unknown")

	// A deleted tool can be pinned afresh, and its old pending definition
	// cannot be approved.
	_, err := s.ApproveTool(ctx(t), "github", "both", bothPending.Hash, "bob@example.com", at(time.Hour))
	wantErr(t, err, store.ErrNotFound, "both", "ApproveTool after DeleteToolPin")
	again := newPin("github", "both", "Both v3", "first-use", time.Hour)
	must(t, s.PinTool(ctx(t), again), "PinTool after DeleteToolPin")
	pinIs(t, s, again, "pin after pinning afresh")
}

// testToolApproveRace has several operators approve one pending
// definition at once, each under their own name: exactly one approval
// happens, and the pin is the winner's.
func testToolApproveRace(t *testing.T, s store.Store) {
	must(t, s.PinTool(ctx(t), newPin("github", "search", "Search v1", "first-use", 0)), "PinTool")
	p := newPending("github", "search", "Search v2", time.Minute, time.Minute)
	must(t, s.RecordPendingTool(ctx(t), p), "RecordPendingTool")
	approveRace(t, []store.Store{s}, p)
}

// testToolPinRace has several replicas pin one tool on first sight at
// once, each with its own definition: exactly one pin is stored, and the
// others are told of the conflict.
func testToolPinRace(t *testing.T, s store.Store) {
	pinRace(t, []store.Store{s})
}

// ToolPinsAcrossStores checks tool pins between processes: stores are
// several Stores opened on one database (as Gatehouse replicas would
// have), and callers spread over them race to pin one tool on first
// sight and to approve one pending definition; exactly one of each may
// win. It is exported for implementation-specific tests, which alone can
// open a second Store on the same database.
func ToolPinsAcrossStores(t *testing.T, stores []store.Store) {
	t.Helper()
	pinRace(t, stores)
	p := newPending("github", "search", "Search v2", time.Minute, time.Minute)
	must(t, stores[0].RecordPendingTool(ctx(t), p), "RecordPendingTool")
	approveRace(t, stores, p)
}

// pinRace races racers PinTool calls for github/search, spread over
// stores; the tool must have no pin yet.
func pinRace(t *testing.T, stores []store.Store) {
	t.Helper()
	turn := make(chan int, racers)
	for i := range racers {
		turn <- i
	}
	winners := make(chan store.ToolPin, racers)
	errs := race(racers, func() error {
		i := <-turn
		p := newPin("github", "search", fmt.Sprintf("Search as seen by replica %d", i), "first-use", time.Duration(i)*time.Millisecond)
		err := stores[i%len(stores)].PinTool(ctx(t), p)
		if err == nil {
			winners <- p
		}
		return err
	})
	countOutcomes(t, errs, store.ErrConflict, "PinTool")
	pinIs(t, stores[0], <-winners, "pin after concurrent PinTool")
}

// approveRace races racers ApproveTool calls of p, spread over stores.
func approveRace(t *testing.T, stores []store.Store, p store.PendingTool) {
	t.Helper()
	turn := make(chan int, racers)
	for i := range racers {
		turn <- i
	}
	winners := make(chan store.ToolPin, racers)
	errs := race(racers, func() error {
		i := <-turn
		by := fmt.Sprintf("operator-%d@example.com", i)
		got, err := stores[i%len(stores)].ApproveTool(ctx(t), p.Upstream, p.Tool, p.Hash, by, at(time.Hour))
		if err == nil {
			if d := diff(got, approvedAs(p, by, time.Hour)); len(d) > 0 {
				t.Errorf("the winner got a different pin: %v", d)
			}
			winners <- got
		}
		return err
	})
	countOutcomes(t, errs, store.ErrNotFound, "ApproveTool")
	pinIs(t, stores[0], <-winners, "pin after concurrent ApproveTool")
	pendingAre(t, stores[0], "", nil, "pending after concurrent ApproveTool")
}

// countOutcomes checks that exactly one of errs is nil and every other is
// lost (ErrConflict or ErrNotFound, as the operation reports a lost race).
func countOutcomes(t *testing.T, errs []error, lost error, what string) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, lost):
		default:
			t.Errorf("%s: unexpected error %v", what, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%s: %d of %d concurrent callers succeeded, want exactly 1", what, wins, len(errs))
	}
}

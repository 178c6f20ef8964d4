package vault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/internal/store"
	"gatehouse/internal/vault"
	"gatehouse/internal/vault/vaulttest"
)

var _ vault.Store = (*vaulttest.MemStore)(nil)

// testKey returns a deterministic 32-byte key.
func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, vault.KeySize) }

func newKeyring(t testing.TB, primary []byte, previous ...[]byte) *vault.Keyring {
	t.Helper()
	kr, err := vault.NewKeyring(primary, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustPut(t testing.TB, v *vault.Vault, name, agent, value string) {
	t.Helper()
	if err := v.Put(context.Background(), name, agent, []byte(value)); err != nil {
		t.Fatalf("Put(%q, %q): %v", name, agent, err)
	}
}

func TestPutGetResolve(t *testing.T) {
	for _, cacheSize := range []int{0, -1} {
		t.Run(fmt.Sprintf("cache=%d", cacheSize), func(t *testing.T) {
			ctx := context.Background()
			st := vaulttest.NewMemStore()
			v := vault.New(st, newKeyring(t, testKey(1)), vault.Options{CacheSize: cacheSize})
			mustPut(t, v, "github-token", "", "shared-token")
			mustPut(t, v, "github-token", "agt_a", "token-of-a")
			mustPut(t, v, "slack/bot", "agt_b", "bot-of-b")

			tests := []struct {
				name, secret, agent string
				resolve             bool
				want                string
				wantErr             error
				wantInErr           string
			}{
				{name: "get shared", secret: "github-token", want: "shared-token"},
				{name: "get agent entry", secret: "github-token", agent: "agt_a", want: "token-of-a"},
				{name: "get does not fall back", secret: "github-token", agent: "agt_b", wantErr: store.ErrNotFound},
				{name: "get missing", secret: "nope", wantErr: store.ErrNotFound, wantInErr: `"nope"`},
				{name: "resolve agent entry wins", secret: "github-token", agent: "agt_a", resolve: true, want: "token-of-a"},
				{name: "resolve falls back to shared", secret: "github-token", agent: "agt_b", resolve: true, want: "shared-token"},
				{name: "resolve shared", secret: "github-token", resolve: true, want: "shared-token"},
				{name: "resolve agent only", secret: "slack/bot", agent: "agt_b", resolve: true, want: "bot-of-b"},
				{name: "resolve other agent has no entry", secret: "slack/bot", agent: "agt_a", resolve: true,
					wantErr: store.ErrNotFound, wantInErr: `secret "slack/bot" for agent "agt_a"`},
				{name: "resolve no shared entry", secret: "slack/bot", resolve: true, wantErr: store.ErrNotFound, wantInErr: `"slack/bot"`},
				{name: "invalid name", secret: "bad name", wantErr: vault.ErrInvalidName},
				{name: "invalid agent", secret: "ok", agent: "a\nb", wantErr: vault.ErrInvalidAgent},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					for range 2 { // the second round is served by the cache, if any
						var got []byte
						var err error
						if tt.resolve {
							got, err = v.Resolve(ctx, tt.secret, tt.agent)
						} else {
							got, err = v.Get(ctx, tt.secret, tt.agent)
						}
						if tt.wantErr != nil {
							if !errors.Is(err, tt.wantErr) {
								t.Fatalf("err = %v, want %v", err, tt.wantErr)
							}
							if !strings.Contains(err.Error(), tt.wantInErr) {
								t.Fatalf("err = %q, want it to contain %q", err, tt.wantInErr)
							}
							continue
						}
						if err != nil {
							t.Fatal(err)
						}
						if string(got) != tt.want {
							t.Fatalf("got %q, want %q", got, tt.want)
						}
						clear(got) // callers own their copy
					}
				})
			}
		})
	}
}

func TestPutVersionsTimestampsAndChanges(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	st := vaulttest.NewMemStore()
	kr := newKeyring(t, testKey(1))
	v := vault.New(st, kr, vault.Options{Now: clk.Now})

	t0 := clk.Now()
	mustPut(t, v, "api-key", "", "one")
	if got, _ := v.Get(ctx, "api-key", ""); string(got) != "one" { // now cached
		t.Fatalf("Get = %q", got)
	}
	clk.Advance(time.Hour)
	mustPut(t, v, "api-key", "", "two")
	mustPut(t, v, "api-key", "agt_1", "three")

	got, err := v.Get(ctx, "api-key", "")
	if err != nil || string(got) != "two" {
		t.Fatalf("Get after replace = %q, %v; want two (cache dropped on Put)", got, err)
	}
	list, err := v.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []vault.Entry{
		{Name: "api-key", Agent: "", Version: 2, KEKID: kr.PrimaryID(), CreatedAt: t0, UpdatedAt: t0.Add(time.Hour)},
		{Name: "api-key", Agent: "agt_1", Version: 1, KEKID: kr.PrimaryID(), CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)},
	}
	if fmt.Sprint(list) != fmt.Sprint(want) {
		t.Fatalf("List =\n%v\nwant\n%v", list, want)
	}

	if err := v.Delete(ctx, "api-key", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Get(ctx, "api-key", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if got, err := v.Resolve(ctx, "api-key", "agt_1"); err != nil || string(got) != "three" {
		t.Fatalf("Resolve agent entry after deleting shared = %q, %v", got, err)
	}
	if err := v.Delete(ctx, "api-key", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}

	changes := st.Changes()
	if len(changes) != 4 {
		t.Fatalf("changes = %v, want 4 (3 puts, 1 delete)", changes)
	}
	for _, c := range changes {
		if c != (store.Change{Kind: "secret", ID: "api-key"}) {
			t.Fatalf("change %+v, want {secret api-key}", c)
		}
	}
}

func TestPutValidation(t *testing.T) {
	v := vault.New(vaulttest.NewMemStore(), newKeyring(t, testKey(1)), vault.Options{})
	tests := []struct {
		name, secret, agent string
		value               []byte
		wantErr             error
	}{
		{"empty name", "", "", []byte("x"), vault.ErrInvalidName},
		{"space in name", "a b", "", []byte("x"), vault.ErrInvalidName},
		{"pipe in name", "a|b", "", []byte("x"), vault.ErrInvalidName},
		{"long name", strings.Repeat("a", 129), "", []byte("x"), vault.ErrInvalidName},
		{"control in agent", "ok", "agt\x00", []byte("x"), vault.ErrInvalidAgent},
		{"long agent", "ok", strings.Repeat("a", 257), []byte("x"), vault.ErrInvalidAgent},
		{"empty value", "ok", "", nil, vault.ErrInvalidValue},
		{"large value", "ok", "", make([]byte, vault.MaxValueSize+1), vault.ErrInvalidValue},
		{"largest value", "ok", "", make([]byte, vault.MaxValueSize), nil},
		{"longest name", strings.Repeat("a", 128), "", []byte("x"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Put(context.Background(), tt.secret, tt.agent, tt.value)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Put: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"github-token", true},
		{"slack/bot.token_2:prod", true},
		{"A-Z_a-z.0-9:/", true},
		{strings.Repeat("x", 128), true},
		{"", false},
		{strings.Repeat("x", 129), false},
		{"with space", false},
		{"pipe|", false},
		{"brace{", false},
		{"ünïcode", false},
		{"new\nline", false},
	}
	for _, tt := range tests {
		err := vault.ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, vault.ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", tt.name, err)
		}
	}
}

// TestMovedOrRelabelledRecords checks the additional-data binding: a record
// copied to another name or agent, or pointed at another key, does not
// decrypt.
func TestMovedOrRelabelledRecords(t *testing.T) {
	ctx := context.Background()
	kA, kB := testKey(0xA), testKey(0xB)
	idB := vault.KEKID(kB)

	tests := []struct {
		name    string
		edit    func(recs map[string]store.VaultSecret) store.VaultSecret // returns the record to write
		get     [2]string                                                 // the entry to read
		wantErr error
		wantMsg string
	}{
		{
			name: "moved to another name",
			edit: func(r map[string]store.VaultSecret) store.VaultSecret {
				m := r["alpha|"]
				m.Name = "beta"
				return m
			},
			get: [2]string{"beta", ""}, wantErr: vault.ErrDecrypt,
		},
		{
			name: "moved to another agent",
			edit: func(r map[string]store.VaultSecret) store.VaultSecret {
				m := r["alpha|"]
				m.Agent = "agt_x"
				return m
			},
			get: [2]string{"alpha", "agt_x"}, wantErr: vault.ErrDecrypt,
		},
		{
			name: "agent entry moved to shared",
			edit: func(r map[string]store.VaultSecret) store.VaultSecret {
				m := r["alpha|agt_1"]
				m.Agent = ""
				return m
			},
			get: [2]string{"alpha", ""}, wantErr: vault.ErrDecrypt,
		},
		{
			name: "ciphertext of another secret with own data key",
			edit: func(r map[string]store.VaultSecret) store.VaultSecret {
				m := r["alpha|"]
				m.Ciphertext = r["beta|"].Ciphertext
				return m
			},
			get: [2]string{"alpha", ""}, wantErr: vault.ErrDecrypt,
		},
		{
			name: "data key of another secret",
			edit: func(r map[string]store.VaultSecret) store.VaultSecret {
				m := r["alpha|"]
				m.WrappedDEK = r["beta|"].WrappedDEK
				return m
			},
			get: [2]string{"alpha", ""}, wantErr: vault.ErrDecrypt,
		},
		{
			name: "KEK id of another key in the keyring",
			edit: func(r map[string]store.VaultSecret) store.VaultSecret {
				m := r["alpha|"]
				m.KEKID = idB
				return m
			},
			get: [2]string{"alpha", ""}, wantErr: vault.ErrDecrypt,
		},
		{
			name: "unknown KEK id",
			edit: func(r map[string]store.VaultSecret) store.VaultSecret {
				m := r["alpha|"]
				m.KEKID = "0123456789abcdef"
				return m
			},
			get: [2]string{"alpha", ""}, wantErr: vault.ErrUnknownKEK,
			wantMsg: "unknown key-encryption key 0123456789abcdef",
		},
		{
			name: "malformed KEK id",
			edit: func(r map[string]store.VaultSecret) store.VaultSecret {
				m := r["alpha|"]
				m.KEKID = "zz"
				return m
			},
			get: [2]string{"alpha", ""}, wantErr: vault.ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := vaulttest.NewMemStore()
			v := vault.New(st, newKeyring(t, kA, kB), vault.Options{CacheSize: -1})
			mustPut(t, v, "alpha", "", "alpha-plaintext-value")
			mustPut(t, v, "alpha", "agt_1", "alpha-agent-plaintext")
			mustPut(t, v, "beta", "", "beta-plaintext-value!")
			recs := map[string]store.VaultSecret{}
			for _, r := range st.Records() {
				recs[r.Name+"|"+r.Agent] = r
			}
			st.Set(tt.edit(recs))
			got, err := v.Get(ctx, tt.get[0], tt.get[1])
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Get = %q, %v; want %v", got, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err %q does not contain %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "plaintext") {
				t.Fatalf("error leaks a value: %q", err)
			}
		})
	}
}

// TestTamperEveryByte flips each bit position of the stored ciphertext and
// wrapped data key, and truncates and extends them: none may decrypt.
func TestTamperEveryByte(t *testing.T) {
	ctx := context.Background()
	st := vaulttest.NewMemStore()
	v := vault.New(st, newKeyring(t, testKey(1)), vault.Options{CacheSize: -1})
	const secret = "xoxb-tamper-test-value"
	mustPut(t, v, "slack", "agt_1", secret)
	orig := st.Records()[0]
	if len(orig.WrappedDEK) != vault.WrappedDEKSize || len(orig.Ciphertext) != len(secret)+vault.CiphertextOverhead {
		t.Fatalf("sizes: wrapped %d, ciphertext %d", len(orig.WrappedDEK), len(orig.Ciphertext))
	}

	check := func(t *testing.T, what string, rec store.VaultSecret) {
		t.Helper()
		st.Set(rec)
		got, err := v.Get(ctx, "slack", "agt_1")
		if err == nil {
			t.Fatalf("%s: decrypted to %q", what, got)
		}
		if !errors.Is(err, vault.ErrDecrypt) && !errors.Is(err, vault.ErrMalformed) {
			t.Fatalf("%s: err = %v, want ErrDecrypt or ErrMalformed", what, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("%s: error leaks the value", what)
		}
	}
	fields := []struct {
		name string
		get  func(*store.VaultSecret) *[]byte
	}{
		{"ciphertext", func(r *store.VaultSecret) *[]byte { return &r.Ciphertext }},
		{"wrapped DEK", func(r *store.VaultSecret) *[]byte { return &r.WrappedDEK }},
	}
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			n := len(*f.get(&orig))
			for i := range n {
				for _, mask := range []byte{0x01, 0x80} {
					rec := orig
					b := bytes.Clone(*f.get(&orig))
					b[i] ^= mask
					*f.get(&rec) = b
					check(t, fmt.Sprintf("byte %d ^ %#x", i, mask), rec)
				}
			}
			for _, b := range [][]byte{nil, (*f.get(&orig))[:1], (*f.get(&orig))[:n-1], append(bytes.Clone(*f.get(&orig)), 0)} {
				rec := orig
				*f.get(&rec) = b
				check(t, fmt.Sprintf("length %d", len(b)), rec)
			}
		})
	}
	st.Set(orig)
	if got, err := v.Get(ctx, "slack", "agt_1"); err != nil || string(got) != secret {
		t.Fatalf("original record: %q, %v", got, err)
	}
}

// TestStoreNeverSeesPlaintext scans everything handed to the store for the
// values and keys.
func TestStoreNeverSeesPlaintext(t *testing.T) {
	ctx := context.Background()
	kA, kB := testKey(0x11), testKey(0x22)
	st := vaulttest.NewMemStore()
	values := map[[2]string]string{
		{"github-token", ""}:      "ghp_R3allyS3cretGitHubT0ken0123456789",
		{"github-token", "agt_1"}: "ghp_AgentSpecificT0kenABCDEFGHIJKLMN",
		{"slack/bot", ""}:         "xoxb-1234-5678-SlackBotTokenValue",
		{"pem", ""}:               "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n",
	}
	v := vault.New(st, newKeyring(t, kA), vault.Options{})
	for k, val := range values {
		mustPut(t, v, k[0], k[1], val)
	}
	// Rotate, so the re-wrapped records are scanned too.
	v2 := vault.New(st, newKeyring(t, kB, kA), vault.Options{})
	if n, err := v2.Rotate(ctx); err != nil || n != len(values) {
		t.Fatalf("Rotate = %d, %v", n, err)
	}

	var needles [][]byte
	for _, val := range values {
		needles = append(needles, []byte(val), []byte(val[:12]), []byte(hex.EncodeToString([]byte(val))),
			[]byte(base64.StdEncoding.EncodeToString([]byte(val))))
	}
	needles = append(needles, kA, kB, kA[:8], kB[:8])
	recs := st.Records()
	if len(recs) != len(values) {
		t.Fatalf("%d records, want %d", len(recs), len(values))
	}
	for _, r := range recs {
		hay := [][]byte{r.Ciphertext, r.WrappedDEK, []byte(r.Name), []byte(r.Agent), []byte(r.KEKID)}
		for _, h := range hay {
			for _, n := range needles {
				if bytes.Contains(h, n) {
					t.Fatalf("record %s/%s contains secret material %q", r.Name, r.Agent, n)
				}
			}
		}
	}
	for _, c := range st.Changes() {
		for _, n := range needles {
			if strings.Contains(c.Kind+c.ID, string(n)) {
				t.Fatalf("change %+v contains secret material", c)
			}
		}
	}
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	kA, kB, kC := testKey(0xA), testKey(0xB), testKey(0xC)
	idB := vault.KEKID(kB)
	st := vaulttest.NewMemStore()
	want := map[[2]string]string{
		{"github-token", ""}:      "value-1",
		{"github-token", "agt_1"}: "value-2",
		{"slack/bot", "agt_2"}:    "value-3",
	}

	// Written with A.
	vA := vault.New(st, newKeyring(t, kA), vault.Options{CacheSize: -1})
	for k, val := range want {
		mustPut(t, vA, k[0], k[1], val)
	}
	before := st.Records()

	readAll := func(t *testing.T, v *vault.Vault) {
		t.Helper()
		for k, val := range want {
			got, err := v.Get(ctx, k[0], k[1])
			if err != nil || string(got) != val {
				t.Fatalf("Get(%q, %q) = %q, %v; want %q", k[0], k[1], got, err, val)
			}
		}
	}

	// Primary B, previous A: reads both, writes with B.
	vBA := vault.New(st, newKeyring(t, kB, kA), vault.Options{CacheSize: -1})
	readAll(t, vBA)
	mustPut(t, vBA, "new-with-b", "", "value-4")
	want[[2]string{"new-with-b", ""}] = "value-4"
	readAll(t, vBA)

	n, err := vBA.Rotate(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Rotate = %d, %v; want 3, nil", n, err)
	}
	readAll(t, vBA)
	list, err := vBA.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if e.KEKID != idB {
			t.Fatalf("after Rotate, %s/%s has KEK %s, want %s", e.Name, e.Agent, e.KEKID, idB)
		}
		if e.Version != 1 {
			t.Fatalf("after Rotate, %s/%s has version %d, want 1 (unchanged)", e.Name, e.Agent, e.Version)
		}
	}
	// Values were not re-encrypted: ciphertexts are byte-for-byte the same.
	after := map[string][]byte{}
	for _, r := range st.Records() {
		after[r.Name+"|"+r.Agent] = r.Ciphertext
	}
	for _, r := range before {
		if !bytes.Equal(after[r.Name+"|"+r.Agent], r.Ciphertext) {
			t.Fatalf("%s/%s: ciphertext changed by Rotate", r.Name, r.Agent)
		}
	}

	// Idempotent.
	puts := st.Puts()
	if n, err := vBA.Rotate(ctx); err != nil || n != 0 {
		t.Fatalf("second Rotate = %d, %v; want 0, nil", n, err)
	}
	if st.Puts() != puts {
		t.Fatalf("second Rotate wrote %d records", st.Puts()-puts)
	}

	// B alone reads everything.
	readAll(t, vault.New(st, newKeyring(t, kB), vault.Options{CacheSize: -1}))

	// A alone reads nothing, and says why.
	vAOnly := vault.New(st, newKeyring(t, kA), vault.Options{CacheSize: -1})
	for k := range want {
		_, err := vAOnly.Get(ctx, k[0], k[1])
		if !errors.Is(err, vault.ErrUnknownKEK) || !strings.Contains(err.Error(), "unknown key-encryption key "+idB) {
			t.Fatalf("Get(%q, %q) with only A: %v; want unknown key-encryption key %s", k[0], k[1], err, idB)
		}
	}

	// Rotating with a keyring that lacks the wrapping key reports every
	// failure and leaves the records alone.
	recs := st.Records()
	n, err = vault.New(st, newKeyring(t, kC), vault.Options{}).Rotate(ctx)
	if n != 0 || !errors.Is(err, vault.ErrUnknownKEK) || strings.Count(err.Error(), "unknown key-encryption key "+idB) != len(want) {
		t.Fatalf("Rotate with only C = %d, %v", n, err)
	}
	if fmt.Sprint(st.Records()) != fmt.Sprint(recs) {
		t.Fatal("failed Rotate changed records")
	}
}

// TestRotateDoesNotOverwriteConcurrentPut: a Put that lands between
// Rotate's listing and its rewrite of the same entry wins.
func TestRotateDoesNotOverwriteConcurrentPut(t *testing.T) {
	ctx := context.Background()
	kA, kB := testKey(0xA), testKey(0xB)
	st := vaulttest.NewMemStore()
	mustPut(t, vault.New(st, newKeyring(t, kA), vault.Options{}), "tok", "", "old")
	mustPut(t, vault.New(st, newKeyring(t, kA), vault.Options{}), "other", "", "other")

	vBA := vault.New(st, newKeyring(t, kB, kA), vault.Options{CacheSize: -1})
	var fired atomic.Bool
	st.BeforeGet = func(name, agent string) {
		if name == "tok" && fired.CompareAndSwap(false, true) {
			mustPut(t, vBA, "tok", "", "new") // its own GetSecret does not fire again
		}
	}
	n, err := vBA.Rotate(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Rotate = %d, %v; want 1 (only \"other\")", n, err)
	}
	if got, err := vBA.Get(ctx, "tok", ""); err != nil || string(got) != "new" {
		t.Fatalf("Get = %q, %v; want new", got, err)
	}
}

// TestRotateWhileServing reads continuously, from several goroutines,
// while Rotate runs: no read may fail.
func TestRotateWhileServing(t *testing.T) {
	ctx := context.Background()
	kA, kB := testKey(0xA), testKey(0xB)
	st := vaulttest.NewMemStore()
	vA := vault.New(st, newKeyring(t, kA), vault.Options{})
	const n = 50
	for i := range n {
		mustPut(t, vA, fmt.Sprintf("s%d", i), "", fmt.Sprintf("value-%d", i))
	}
	vBA := vault.New(st, newKeyring(t, kB, kA), vault.Options{CacheSize: -1})

	var stop atomic.Bool
	var reads, failures atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; !stop.Load(); i++ {
				name := fmt.Sprintf("s%d", i%n)
				got, err := vBA.Resolve(ctx, name, "agt_1")
				if err != nil || string(got) != fmt.Sprintf("value-%d", i%n) {
					failures.Add(1)
					t.Errorf("Resolve(%s) = %q, %v", name, got, err)
				}
				reads.Add(1)
			}
		})
	}
	for reads.Load() < 100 {
		time.Sleep(time.Millisecond)
	}
	rotated, err := vBA.Rotate(ctx)
	target := reads.Load() + 100
	for reads.Load() < target {
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if err != nil || rotated != n {
		t.Fatalf("Rotate = %d, %v; want %d", rotated, err, n)
	}
	if failures.Load() != 0 {
		t.Fatalf("%d of %d reads failed", failures.Load(), reads.Load())
	}
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	kr := newKeyring(t, testKey(1))

	t.Run("hits skip the store", func(t *testing.T) {
		st := vaulttest.NewMemStore()
		v := vault.New(st, kr, vault.Options{})
		mustPut(t, v, "a", "", "A")
		base := st.Gets()
		for range 3 {
			if got, err := v.Get(ctx, "a", ""); err != nil || string(got) != "A" {
				t.Fatalf("Get = %q, %v", got, err)
			}
		}
		if d := st.Gets() - base; d != 1 {
			t.Fatalf("%d store reads for 3 Gets, want 1", d)
		}
		base = st.Gets()
		for range 3 {
			if got, err := v.Resolve(ctx, "a", "agt_9"); err != nil || string(got) != "A" {
				t.Fatalf("Resolve = %q, %v", got, err)
			}
		}
		if d := st.Gets() - base; d != 2 { // agent entry (missing), then shared
			t.Fatalf("%d store reads for 3 Resolves, want 2", d)
		}
	})

	t.Run("callers get copies", func(t *testing.T) {
		v := vault.New(vaulttest.NewMemStore(), kr, vault.Options{})
		mustPut(t, v, "a", "", "AAAA")
		got, _ := v.Get(ctx, "a", "")
		clear(got)
		if got, _ := v.Get(ctx, "a", ""); string(got) != "AAAA" {
			t.Fatalf("cached value changed by a caller: %q", got)
		}
	})

	t.Run("invalidation", func(t *testing.T) {
		tests := []struct {
			name      string
			drop      func(v *vault.Vault)
			wantReads int // store reads for the following Get of "a" and Resolve of "b"
		}{
			{"none", func(*vault.Vault) {}, 0},
			{"Invalidate a", func(v *vault.Vault) { v.Invalidate("a") }, 1},
			{"Invalidate other", func(v *vault.Vault) { v.Invalidate("zzz") }, 0},
			{"change secret a", func(v *vault.Vault) { v.HandleChange(store.Change{Kind: "secret", ID: "a"}) }, 1},
			{"change secret b", func(v *vault.Vault) { v.HandleChange(store.Change{Kind: "secret", ID: "b"}) }, 2},
			{"change agent a", func(v *vault.Vault) { v.HandleChange(store.Change{Kind: "agent", ID: "a"}) }, 0},
			{"resync", func(v *vault.Vault) { v.HandleChange(store.Change{Kind: "resync"}) }, 3},
			{"InvalidateAll", func(v *vault.Vault) { v.InvalidateAll() }, 3},
			{"Invalidate empty name", func(v *vault.Vault) { v.Invalidate("") }, 3},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st := vaulttest.NewMemStore()
				v := vault.New(st, kr, vault.Options{})
				mustPut(t, v, "a", "", "A")
				mustPut(t, v, "b", "", "B")
				v.Get(ctx, "a", "")
				v.Resolve(ctx, "b", "agt_1")
				base := st.Gets()
				tt.drop(v)
				v.Get(ctx, "a", "")
				v.Resolve(ctx, "b", "agt_1")
				if d := st.Gets() - base; d != tt.wantReads {
					t.Fatalf("%d store reads, want %d", d, tt.wantReads)
				}
			})
		}
	})

	t.Run("write by another process", func(t *testing.T) {
		st := vaulttest.NewMemStore()
		v1 := vault.New(st, kr, vault.Options{})
		v2 := vault.New(st, kr, vault.Options{})
		mustPut(t, v1, "a", "", "old")
		v1.Get(ctx, "a", "")
		mustPut(t, v2, "a", "", "new")
		if got, _ := v1.Get(ctx, "a", ""); string(got) != "old" {
			t.Fatalf("before the notification: %q (expected the cached value)", got)
		}
		changes := st.Changes()
		v1.HandleChange(changes[len(changes)-1])
		if got, _ := v1.Get(ctx, "a", ""); string(got) != "new" {
			t.Fatalf("after the notification: %q, want new", got)
		}
	})

	t.Run("Watch", func(t *testing.T) {
		st := vaulttest.NewMemStore()
		v := vault.New(st, kr, vault.Options{})
		mustPut(t, v, "a", "", "A")
		ch := make(chan store.Change)
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { v.Watch(wctx, ch); close(done) }()
		v.Get(ctx, "a", "")
		base := st.Gets()
		ch <- store.Change{Kind: "secret", ID: "a"}
		ch <- store.Change{Kind: "secret", ID: "sync"} // Watch took the first one
		v.Get(ctx, "a", "")
		if d := st.Gets() - base; d != 1 {
			t.Fatalf("%d store reads after a change, want 1", d)
		}
		cancel()
		<-done
	})

	t.Run("bounded LRU", func(t *testing.T) {
		st := vaulttest.NewMemStore()
		v := vault.New(st, kr, vault.Options{CacheSize: 2})
		for _, n := range []string{"a", "b", "c"} {
			mustPut(t, v, n, "", n)
		}
		reads := func(names ...string) int {
			base := st.Gets()
			for _, n := range names {
				if got, err := v.Get(ctx, n, ""); err != nil || string(got) != n {
					t.Fatalf("Get(%s) = %q, %v", n, got, err)
				}
			}
			return st.Gets() - base
		}
		if d := reads("a", "b", "a", "c"); d != 3 { // c evicts b, the least recently used
			t.Fatalf("%d reads, want 3", d)
		}
		if d := reads("a", "c"); d != 0 {
			t.Fatalf("%d reads of cached a, c; want 0", d)
		}
		if d := reads("b"); d != 1 {
			t.Fatalf("%d reads of evicted b; want 1", d)
		}
	})

	t.Run("TTL", func(t *testing.T) {
		clk := newFakeClock()
		st := vaulttest.NewMemStore()
		v := vault.New(st, kr, vault.Options{CacheTTL: 10 * time.Second, Now: clk.Now})
		mustPut(t, v, "a", "", "A")
		v.Get(ctx, "a", "")
		base := st.Gets()
		clk.Advance(9 * time.Second)
		v.Get(ctx, "a", "")
		if st.Gets() != base {
			t.Fatal("store read before the TTL")
		}
		clk.Advance(time.Second)
		v.Get(ctx, "a", "")
		if st.Gets() != base+1 {
			t.Fatal("no store read after the TTL")
		}
	})

	t.Run("invalidation during a read", func(t *testing.T) {
		// A Get that read the old record before an invalidation must not
		// cache it afterwards.
		st := vaulttest.NewMemStore()
		v := vault.New(st, kr, vault.Options{})
		mustPut(t, v, "a", "", "A")
		v.Invalidate("a")
		var once sync.Once
		st.BeforeGet = func(string, string) { once.Do(func() { v.Invalidate("a") }) }
		v.Get(ctx, "a", "")
		base := st.Gets()
		v.Get(ctx, "a", "")
		if st.Gets() != base+1 {
			t.Fatal("a value read before an invalidation was cached")
		}
	})

	t.Run("disabled", func(t *testing.T) {
		st := vaulttest.NewMemStore()
		v := vault.New(st, kr, vault.Options{CacheSize: -1})
		mustPut(t, v, "a", "", "A")
		base := st.Gets()
		v.Get(ctx, "a", "")
		v.Get(ctx, "a", "")
		if st.Gets() != base+2 {
			t.Fatal("cache used although disabled")
		}
		v.Invalidate("a")
		v.HandleChange(store.Change{Kind: "resync"})
	})
}

func TestVaultExpand(t *testing.T) {
	ctx := context.Background()
	v := vault.New(vaulttest.NewMemStore(), newKeyring(t, testKey(1)), vault.Options{})
	mustPut(t, v, "github-token", "", "shared")
	mustPut(t, v, "github-token", "agt_1", "mine")
	for agent, want := range map[string]string{"agt_1": "Bearer mine", "agt_2": "Bearer shared", "": "Bearer shared"} {
		got, err := v.Expand(ctx, "Bearer {{vault:github-token}}", agent)
		if err != nil || got != want {
			t.Errorf("Expand for %q = %q, %v; want %q", agent, got, err, want)
		}
	}
	_, err := v.Expand(ctx, "Bearer {{vault:gitlab-token}}", "agt_1")
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "{{vault:gitlab-token}}") {
		t.Errorf("Expand of a missing secret: %v", err)
	}
}

// Benchmarks: Get served by the cache, and by the store (one GetSecret, one
// DEK unwrap, one value decryption).
func BenchmarkGet(b *testing.B) {
	for _, bc := range []struct {
		name      string
		cacheSize int
	}{{"cache", 0}, {"nocache", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			v := vault.New(vaulttest.NewMemStore(), newKeyring(b, testKey(1)), vault.Options{CacheSize: bc.cacheSize})
			mustPut(b, v, "github-token", "", "ghp_0123456789abcdefghijklmnopqrstuvwxyz")
			b.ReportAllocs()
			for b.Loop() {
				val, err := v.Get(ctx, "github-token", "")
				if err != nil {
					b.Fatal(err)
				}
				clear(val)
			}
		})
	}
}

// BenchmarkResolveFallback: an agent without its own entry falls back to
// the shared one (two store reads without the cache).
func BenchmarkResolveFallback(b *testing.B) {
	for _, bc := range []struct {
		name      string
		cacheSize int
	}{{"cache", 0}, {"nocache", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			v := vault.New(vaulttest.NewMemStore(), newKeyring(b, testKey(1)), vault.Options{CacheSize: bc.cacheSize})
			mustPut(b, v, "github-token", "", "ghp_0123456789abcdefghijklmnopqrstuvwxyz")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Resolve(ctx, "github-token", "agt_1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	v := vault.New(vaulttest.NewMemStore(), newKeyring(b, testKey(1)), vault.Options{})
	val := []byte("ghp_0123456789abcdefghijklmnopqrstuvwxyz")
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Put(ctx, "github-token", "", val); err != nil {
			b.Fatal(err)
		}
	}
}

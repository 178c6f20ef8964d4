package vault

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"gatehouse/internal/store"
)

// Store is what the vault needs of the store; store.Store satisfies it.
type Store interface {
	PutSecret(ctx context.Context, s store.VaultSecret) error
	GetSecret(ctx context.Context, name, agent string) (store.VaultSecret, error)
	ListSecrets(ctx context.Context) ([]store.VaultSecret, error)
	DeleteSecret(ctx context.Context, name, agent string) error
	Publish(ctx context.Context, c store.Change) error
}

// Change kinds the vault publishes and handles.
const (
	ChangeSecret = "secret"
	ChangeResync = "resync"
)

// Cache defaults.
const (
	DefaultCacheSize = 256
	DefaultCacheTTL  = time.Minute
)

// Options configures a Vault. The zero value is usable.
type Options struct {
	// CacheSize is the most decrypted values kept in memory (0:
	// DefaultCacheSize; negative: no cache).
	CacheSize int
	// CacheTTL is how long a cached value is used before the store is read
	// again (0: DefaultCacheTTL). It bounds how stale a value can get when
	// another process writes it and the change notification does not
	// arrive here (SQLite publishes changes in-process only).
	CacheTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives what the vault logs: rotations (default: discard).
	Logger *slog.Logger
}

// Entry describes a stored secret without its value.
type Entry struct {
	Name      string
	Agent     string // "" for the shared entry
	Version   int    // 1 when created, +1 on every Put
	KEKID     string // the key-encryption key that wraps its data key
	CreatedAt time.Time
	UpdatedAt time.Time // last Put, or last re-wrap by Rotate
}

// Vault stores secrets encrypted in a Store and decrypts them with a
// Keyring. It is safe for concurrent use.
type Vault struct {
	st    Store
	kr    *Keyring
	now   func() time.Time
	log   *slog.Logger
	cache *cache // nil: no cache
}

// New returns a vault over st that encrypts with kr. It panics if st or kr
// is nil. To keep the cache consistent with writes by other processes, feed
// it the store's change notifications (Watch or HandleChange).
func New(st Store, kr *Keyring, opts Options) *Vault {
	if st == nil || kr == nil {
		panic("vault.New: nil store or keyring")
	}
	v := &Vault{st: st, kr: kr, now: opts.Now, log: opts.Logger}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if opts.CacheSize >= 0 {
		size, ttl := cmp.Or(opts.CacheSize, DefaultCacheSize), cmp.Or(opts.CacheTTL, DefaultCacheTTL)
		v.cache = newCache(size, ttl, v.now)
	}
	return v
}

// Keyring returns the vault's keyring.
func (v *Vault) Keyring() *Keyring { return v.kr }

// Put creates or replaces the secret (name, agent) with value, under a
// fresh data key wrapped by the primary key-encryption key; agent "" is the
// shared entry. The version is one more than the entry's previous version
// (concurrent Puts of one entry are last-writer-wins and may repeat a
// version). Put publishes a store.Change of kind "secret"; when only that
// fails, the value is stored and the error says so.
func (v *Vault) Put(ctx context.Context, name, agent string, value []byte) error {
	if err := validateEntry(name, agent); err != nil {
		return fmt.Errorf("putting secret: %w", err)
	}
	what := describe(name, agent)
	if len(value) == 0 || len(value) > MaxValueSize {
		return fmt.Errorf("putting %s: %w: %d bytes (want 1 to %d)", what, ErrInvalidValue, len(value), MaxValueSize)
	}
	now := v.now().UTC()
	rec := store.VaultSecret{Name: name, Agent: agent, Version: 1, CreatedAt: now, UpdatedAt: now}
	switch old, err := v.st.GetSecret(ctx, name, agent); {
	case err == nil:
		rec.Version, rec.CreatedAt = old.Version+1, old.CreatedAt
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("putting %s: reading the current entry: %w", what, err)
	}
	var err error
	rec.Ciphertext, rec.WrappedDEK, rec.KEKID, err = v.kr.encryptSecret(name, agent, value)
	if err != nil {
		return fmt.Errorf("putting %s: %w", what, err)
	}
	if err := v.st.PutSecret(ctx, rec); err != nil {
		return fmt.Errorf("putting %s: %w", what, err)
	}
	return v.changed(ctx, name, "putting "+what)
}

// Delete removes the secret (name, agent); an error wrapping
// store.ErrNotFound if there is none.
func (v *Vault) Delete(ctx context.Context, name, agent string) error {
	if err := validateEntry(name, agent); err != nil {
		return fmt.Errorf("deleting secret: %w", err)
	}
	what := describe(name, agent)
	if err := v.st.DeleteSecret(ctx, name, agent); err != nil {
		return fmt.Errorf("deleting %s: %w", what, err)
	}
	return v.changed(ctx, name, "deleting "+what)
}

// changed drops the name from the local cache and tells other processes.
func (v *Vault) changed(ctx context.Context, name, doing string) error {
	v.cache.invalidate(name)
	if err := v.st.Publish(ctx, store.Change{Kind: ChangeSecret, ID: name}); err != nil {
		return fmt.Errorf("%s: done, but publishing the change failed, so other processes may use the old value until their cache expires: %w", doing, err)
	}
	return nil
}

// Get returns the value of exactly the secret (name, agent), without
// falling back to the shared entry; an error wrapping store.ErrNotFound if
// there is none. The result is the caller's copy: clear it when done.
func (v *Vault) Get(ctx context.Context, name, agent string) ([]byte, error) {
	if err := validateEntry(name, agent); err != nil {
		return nil, fmt.Errorf("getting secret: %w", err)
	}
	key := cacheKey{name: name, agent: agent}
	if val, ok := v.cache.get(key); ok {
		return val, nil
	}
	gen := v.cache.generation()
	rec, err := v.st.GetSecret(ctx, name, agent)
	if err != nil {
		return nil, fmt.Errorf("getting %s: %w", describe(name, agent), err)
	}
	val, err := v.decrypt(rec, name, agent)
	if err != nil {
		return nil, err
	}
	v.cache.add(key, val, gen)
	return val, nil
}

// Resolve returns the value of the secret name for the agent agentID: its
// agent-specific entry if there is one, else the shared entry (agent "");
// an error wrapping store.ErrNotFound if neither exists. The result is the
// caller's copy: clear it when done.
func (v *Vault) Resolve(ctx context.Context, name, agentID string) ([]byte, error) {
	if err := validateEntry(name, agentID); err != nil {
		return nil, fmt.Errorf("resolving secret: %w", err)
	}
	key := cacheKey{name: name, agent: agentID, resolved: true}
	if val, ok := v.cache.get(key); ok {
		return val, nil
	}
	gen := v.cache.generation()
	agent := agentID
	rec, err := v.st.GetSecret(ctx, name, agent)
	if agentID != "" && errors.Is(err, store.ErrNotFound) {
		agent = ""
		rec, err = v.st.GetSecret(ctx, name, agent)
	}
	switch {
	case errors.Is(err, store.ErrNotFound) && agentID != "":
		return nil, fmt.Errorf("resolving secret %q for agent %q: neither an entry for the agent nor a shared one: %w", name, agentID, store.ErrNotFound)
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("resolving secret %q: no shared entry: %w", name, store.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("resolving %s: %w", describe(name, agent), err)
	}
	val, err := v.decrypt(rec, name, agent)
	if err != nil {
		return nil, err
	}
	v.cache.add(key, val, gen)
	return val, nil
}

// Expand is Expand with the vault's Resolve.
func (v *Vault) Expand(ctx context.Context, template, agentID string) (string, error) {
	return Expand(ctx, template, agentID, v.Resolve)
}

// decrypt opens a record as the entry (name, agent) it was asked for.
func (v *Vault) decrypt(rec store.VaultSecret, name, agent string) ([]byte, error) {
	val, err := v.kr.decryptSecret(rec.KEKID, rec.WrappedDEK, rec.Ciphertext, name, agent)
	if err != nil {
		return nil, fmt.Errorf("decrypting %s (version %d): %w", describe(name, agent), rec.Version, err)
	}
	return val, nil
}

// List describes every stored secret, sorted by name and agent, without
// values.
func (v *Vault) List(ctx context.Context) ([]Entry, error) {
	recs, err := v.st.ListSecrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", err)
	}
	out := make([]Entry, 0, len(recs))
	for _, r := range recs {
		out = append(out, Entry{
			Name: r.Name, Agent: r.Agent, Version: r.Version, KEKID: r.KEKID,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Agent, b.Agent))
	})
	return out, nil
}

// Rotate re-wraps, with the primary key-encryption key, the data key of
// every secret that a previous key still wraps, and returns how many it
// re-wrapped. Values are not decrypted and versions do not change. It is
// idempotent and safe while the gateway serves: each record is rewritten
// whole, and readable before and after. A secret it cannot re-wrap (its
// key is not in the keyring, or it fails to authenticate) is left as it is
// and reported in the error, after the others are done.
//
// Each record is read again just before it is rewritten, which narrows
// (but, without a conditional write in the store, cannot close) the window
// in which a concurrent Put of the same entry could be overwritten by the
// re-wrapped previous value.
func (v *Vault) Rotate(ctx context.Context) (n int, err error) {
	recs, err := v.st.ListSecrets(ctx)
	if err != nil {
		return 0, fmt.Errorf("rotating: listing secrets: %w", err)
	}
	primary := v.kr.PrimaryID()
	var errs []error
	for _, listed := range recs {
		if listed.KEKID == primary {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		done, err := v.rewrap(ctx, listed.Name, listed.Agent)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if done {
			n++
		}
	}
	if n > 0 {
		v.log.Info("vault secrets re-wrapped", "count", n, "kek_id", primary)
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("rotating: re-wrapped %d secrets, %d failed: %w", n, len(errs), errors.Join(errs...))
	}
	return n, nil
}

// rewrap re-wraps one entry's data key with the primary key and reports
// whether it wrote the entry.
func (v *Vault) rewrap(ctx context.Context, name, agent string) (bool, error) {
	what := describe(name, agent)
	cur, err := v.st.GetSecret(ctx, name, agent)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil // deleted meanwhile
	case err != nil:
		return false, fmt.Errorf("%s: %w", what, err)
	case cur.KEKID == v.kr.PrimaryID():
		return false, nil // rewritten meanwhile
	}
	wrapped, err := v.kr.rewrapSecret(cur.KEKID, cur.WrappedDEK, name, agent)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	old := cur.KEKID
	cur.WrappedDEK, cur.KEKID, cur.UpdatedAt = wrapped, v.kr.PrimaryID(), v.now().UTC()
	if err := v.st.PutSecret(ctx, cur); err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	v.log.Debug("vault secret re-wrapped", "name", name, "agent", agent, "from_kek_id", old)
	return true, nil
}

// Invalidate drops the cached values of the secret name, for all agents;
// Invalidate("") drops every cached value (no secret has an empty name).
func (v *Vault) Invalidate(name string) {
	if name == "" {
		v.cache.invalidateAll()
		return
	}
	v.cache.invalidate(name)
}

// InvalidateAll drops every cached value.
func (v *Vault) InvalidateAll() { v.cache.invalidateAll() }

// HandleChange applies a store change notification to the cache: kind
// "secret" drops that name, "resync" drops everything, others are ignored.
func (v *Vault) HandleChange(c store.Change) {
	switch c.Kind {
	case ChangeSecret:
		v.cache.invalidate(c.ID)
	case ChangeResync:
		v.cache.invalidateAll()
	}
}

// Watch applies changes (from store.Store.Subscribe) to the cache until ctx
// ends or changes is closed. It empties the cache when it returns, as on
// "resync", because changes may have been missed; subscribe again and call
// Watch again to keep caching consistent (CacheTTL bounds staleness
// meanwhile).
func (v *Vault) Watch(ctx context.Context, changes <-chan store.Change) {
	defer v.cache.invalidateAll()
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			v.HandleChange(c)
		}
	}
}

// Interface guards.
var _ Store = store.Store(nil)

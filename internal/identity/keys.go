package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"gatehouse/internal/store"
)

// Sealer encrypts private keys at rest (the vault's keyring).
type Sealer interface {
	Seal(plaintext []byte, aad string) ([]byte, error)
	Open(sealed []byte, aad string) ([]byte, error)
}

// Rewrapper re-seals a blob under the current primary key-encryption key;
// changed is false when it already was.
type Rewrapper interface {
	Rewrap(sealed []byte, aad string) (out []byte, changed bool, err error)
}

// KeyStore is the part of the store the key manager uses.
type KeyStore interface {
	AddSigningKey(ctx context.Context, k store.SigningKey) error
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	UpdateSigningKey(ctx context.Context, k store.SigningKey) error
	DeleteSigningKey(ctx context.Context, kid string) error
	Publish(ctx context.Context, c store.Change) error
}

// KeyConfig configures signing keys.
type KeyConfig struct {
	Alg string // "ES256" (default) or "EdDSA"
	// RotateEvery is how long a key signs before the next takes over
	// (default 24h).
	RotateEvery time.Duration
	// Overlap is how long a new key is published before it signs, so that
	// verifiers that cache the JWKS learn it first (default 10m).
	Overlap time.Duration
	// MaxTokenTTL is the longest token lifetime: a retired key stays in the
	// JWKS this long after it stops signing (default 15m).
	MaxTokenTTL time.Duration
}

func (c *KeyConfig) defaults() {
	if c.Alg == "" {
		c.Alg = "ES256"
	}
	if c.RotateEvery <= 0 {
		c.RotateEvery = 24 * time.Hour
	}
	if c.Overlap <= 0 {
		c.Overlap = 10 * time.Minute
	}
	if c.MaxTokenTTL <= 0 {
		c.MaxTokenTTL = 15 * time.Minute
	}
}

// KeyManager holds the signing keys: the one that signs now, the ones
// published ahead of signing, and retired ones still in the JWKS. Keys
// live in the store, private parts sealed; every replica loads the same
// set and reloads it when a "signing_key" change is published. It is safe
// for concurrent use.
type KeyManager struct {
	st   KeyStore
	seal Sealer
	cfg  KeyConfig
	log  *slog.Logger
	now  func() time.Time

	mu   sync.RWMutex
	keys map[string]*signingKey // by kid
	jwks []byte
}

type signingKey struct {
	rec    store.SigningKey
	public crypto.PublicKey
	signer jose.Signer // nil when the private key is not usable here
}

// NewKeyManager returns a key manager; call Load before use.
func NewKeyManager(st KeyStore, seal Sealer, cfg KeyConfig, log *slog.Logger) *KeyManager {
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	return &KeyManager{st: st, seal: seal, cfg: cfg, log: log, now: time.Now, keys: map[string]*signingKey{}}
}

const keyAAD = "gatehouse/signing-key/"

// Load reads the keys from the store and makes sure one is signing,
// creating the first key when there is none.
func (km *KeyManager) Load(ctx context.Context) error {
	recs, err := km.st.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("loading signing keys: %w", err)
	}
	keys := make(map[string]*signingKey, len(recs))
	for _, r := range recs {
		k, err := km.decode(r)
		if err != nil {
			km.log.Warn("ignoring a signing key that cannot be used", "kid", r.KID, "error", err)
			continue
		}
		keys[r.KID] = k
	}
	km.mu.Lock()
	km.keys = keys
	km.jwks = buildJWKS(keys, km.now())
	km.mu.Unlock()
	if _, _, ok := km.Current(); !ok {
		if _, err := km.Rotate(ctx, true); err != nil {
			return err
		}
	}
	return nil
}

func (km *KeyManager) decode(r store.SigningKey) (*signingKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(r.PublicJWK); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	k := &signingKey{rec: r, public: jwk.Key}
	der, err := km.seal.Open(r.Private, keyAAD+r.KID)
	if err != nil {
		// The JWKS still publishes it; this replica just cannot sign with
		// it (e.g. a key-encryption key it does not hold).
		return k, nil
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(r.Alg), Key: jose.JSONWebKey{Key: priv, KeyID: r.KID, Algorithm: r.Alg}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, err
	}
	k.signer = signer
	return k, nil
}

// Current returns the key that signs now: the most recently activated one
// not yet retired.
func (km *KeyManager) Current() (jose.Signer, string, bool) {
	now := km.now()
	km.mu.RLock()
	defer km.mu.RUnlock()
	var best *signingKey
	for _, k := range km.keys {
		if k.signer == nil || now.Before(k.rec.ActivateAt) || !now.Before(k.rec.RetiresAt) {
			continue
		}
		if best == nil || k.rec.ActivateAt.After(best.rec.ActivateAt) {
			best = k
		}
	}
	if best == nil {
		return nil, "", false
	}
	return best.signer, best.rec.KID, true
}

// PublicKey returns the verification key for kid.
func (km *KeyManager) PublicKey(kid string) (crypto.PublicKey, string, bool) {
	km.mu.RLock()
	defer km.mu.RUnlock()
	k, ok := km.keys[kid]
	if !ok || !km.now().Before(k.rec.ExpiresAt) {
		return nil, "", false
	}
	return k.public, k.rec.Alg, true
}

// JWKS returns the published key set (RFC 7517) as JSON.
func (km *KeyManager) JWKS() []byte {
	km.mu.RLock()
	defer km.mu.RUnlock()
	return km.jwks
}

// Rotate creates a new key. With immediate, it signs at once (the first
// key); otherwise it is published now and signs after the overlap, and the
// current key retires then.
func (km *KeyManager) Rotate(ctx context.Context, immediate bool) (string, error) {
	now := km.now().UTC().Truncate(time.Millisecond)
	activate := now
	if !immediate {
		activate = now.Add(km.cfg.Overlap)
	}
	rec, err := km.generate(now, activate)
	if err != nil {
		return "", err
	}
	if err := km.st.AddSigningKey(ctx, rec); err != nil {
		return "", fmt.Errorf("storing signing key: %w", err)
	}
	// Retire the keys signing now when the new one takes over.
	km.mu.RLock()
	var retire []store.SigningKey
	for _, k := range km.keys {
		if k.rec.RetiresAt.After(activate) {
			r := k.rec
			r.RetiresAt = activate
			r.ExpiresAt = activate.Add(km.cfg.MaxTokenTTL + time.Minute)
			retire = append(retire, r)
		}
	}
	km.mu.RUnlock()
	for _, r := range retire {
		if err := km.st.UpdateSigningKey(ctx, r); err != nil {
			return "", fmt.Errorf("retiring signing key %s: %w", r.KID, err)
		}
	}
	_ = km.st.Publish(ctx, store.Change{Kind: "signing_key", ID: rec.KID})
	if err := km.reload(ctx); err != nil {
		return "", err
	}
	km.log.Info("signing key created", "kid", rec.KID, "alg", rec.Alg, "signs_from", activate)
	return rec.KID, nil
}

func (km *KeyManager) reload(ctx context.Context) error {
	recs, err := km.st.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("loading signing keys: %w", err)
	}
	keys := make(map[string]*signingKey, len(recs))
	km.mu.RLock()
	old := km.keys
	km.mu.RUnlock()
	for _, r := range recs {
		if k, ok := old[r.KID]; ok && k.rec.RetiresAt.Equal(r.RetiresAt) && k.rec.ExpiresAt.Equal(r.ExpiresAt) {
			keys[r.KID] = k
			continue
		}
		k, err := km.decode(r)
		if err != nil {
			km.log.Warn("ignoring a signing key that cannot be used", "kid", r.KID, "error", err)
			continue
		}
		keys[r.KID] = k
	}
	km.mu.Lock()
	km.keys = keys
	km.jwks = buildJWKS(keys, km.now())
	km.mu.Unlock()
	return nil
}

// Reload is called when another replica changed the keys.
func (km *KeyManager) Reload(ctx context.Context) error { return km.reload(ctx) }

// Rewrap re-seals every signing key's private part under the primary
// key-encryption key (step of a key-encryption key rotation). It returns
// how many keys changed.
func (km *KeyManager) Rewrap(ctx context.Context, rw Rewrapper) (int, error) {
	recs, err := km.st.ListSigningKeys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		out, changed, err := rw.Rewrap(r.Private, keyAAD+r.KID)
		if err != nil {
			return n, fmt.Errorf("re-sealing signing key %s: %w", r.KID, err)
		}
		if !changed {
			continue
		}
		r.Private = out
		if err := km.st.UpdateSigningKey(ctx, r); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 {
		_ = km.st.Publish(ctx, store.Change{Kind: "signing_key"})
	}
	return n, km.reload(ctx)
}

// Maintain rotates the signing key on schedule and drops expired keys. It
// is called periodically.
func (km *KeyManager) Maintain(ctx context.Context) error {
	now := km.now()
	km.mu.RLock()
	var newest time.Time
	var expired []string
	for _, k := range km.keys {
		if k.rec.ActivateAt.After(newest) {
			newest = k.rec.ActivateAt
		}
		if !now.Before(k.rec.ExpiresAt) {
			expired = append(expired, k.rec.KID)
		}
	}
	km.mu.RUnlock()
	for _, kid := range expired {
		if err := km.st.DeleteSigningKey(ctx, kid); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if now.Sub(newest) >= km.cfg.RotateEvery-km.cfg.Overlap {
		_, err := km.Rotate(ctx, false)
		return err
	}
	if len(expired) > 0 {
		_ = km.st.Publish(ctx, store.Change{Kind: "signing_key"})
		return km.reload(ctx)
	}
	return nil
}

func (km *KeyManager) generate(now, activate time.Time) (store.SigningKey, error) {
	var priv crypto.Signer
	switch km.cfg.Alg {
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return store.SigningKey{}, err
		}
		priv = k
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return store.SigningKey{}, err
		}
		priv = k
	default:
		return store.SigningKey{}, fmt.Errorf("unsupported signing algorithm %q", km.cfg.Alg)
	}
	pubJWK := jose.JSONWebKey{Key: priv.Public(), Algorithm: km.cfg.Alg, Use: "sig"}
	thumb, err := pubJWK.Thumbprint(crypto.SHA256)
	if err != nil {
		return store.SigningKey{}, err
	}
	kid := base64.RawURLEncoding.EncodeToString(thumb)[:16]
	pubJWK.KeyID = kid
	pub, err := pubJWK.MarshalJSON()
	if err != nil {
		return store.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, err
	}
	sealed, err := km.seal.Seal(der, keyAAD+kid)
	clear(der)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("sealing signing key: %w", err)
	}
	far := activate.Add(100 * 365 * 24 * time.Hour)
	return store.SigningKey{
		KID: kid, Alg: km.cfg.Alg, Private: sealed, PublicJWK: pub,
		CreatedAt: now, ActivateAt: activate, RetiresAt: far, ExpiresAt: far,
	}, nil
}

func buildJWKS(keys map[string]*signingKey, now time.Time) []byte {
	kids := make([]string, 0, len(keys))
	for kid, k := range keys {
		if now.Before(k.rec.ExpiresAt) {
			kids = append(kids, kid)
		}
	}
	sort.Strings(kids)
	set := struct {
		Keys []json.RawMessage `json:"keys"`
	}{Keys: []json.RawMessage{}}
	for _, kid := range kids {
		set.Keys = append(set.Keys, keys[kid].rec.PublicJWK)
	}
	b, _ := json.Marshal(set)
	return b
}

// tokenHash is the cache key of a token.
func tokenHash(raw string) [32]byte { return sha256.Sum256([]byte(raw)) }

package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Format constants; the layouts are in the package documentation.
const (
	formatV1 byte = 1

	kekIDSize  = 8
	nonceSize  = 12
	tagSize    = 16
	gcmExtra   = nonceSize + tagSize // what an AEAD with random nonces adds
	dekBoxSize = KeySize + gcmExtra  // nonce + encrypted DEK + tag: 60

	// WrappedDEKSize is the length of VaultSecret.WrappedDEK.
	WrappedDEKSize = 1 + dekBoxSize
	// CiphertextOverhead is len(VaultSecret.Ciphertext) - len(value).
	CiphertextOverhead = 1 + gcmExtra
	// SealOverhead is len(Seal(p)) - len(p).
	SealOverhead = sealHeaderSize + dekBoxSize + gcmExtra

	sealHeaderSize = 1 + kekIDSize
)

// Additional-data prefixes; see the package documentation.
const (
	aadSecret = "gatehouse/vault/v1|"
	aadDEK    = "gatehouse/vault/v1/dek|"
	aadSeal   = "gatehouse/vault/v1/seal|"
)

// secretAAD is the additional data of a secret's value.
func secretAAD(name, agent string) string { return aadSecret + name + "|" + agent }

// sealAAD is the additional data of a sealed blob's payload.
func sealAAD(aad string) string { return aadSeal + aad }

// dekAAD is the additional data of a DEK wrapped by kekID for the payload
// whose additional data is payloadAAD.
func dekAAD(kekID, payloadAAD string) string { return aadDEK + kekID + "|" + payloadAAD }

// kek is one key-encryption key.
type kek struct {
	id    string
	rawID [kekIDSize]byte
	aead  cipher.AEAD // AES-256-GCM, random nonces
}

func newKEK(key []byte) (*kek, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("want %d bytes, got %d", KeySize, len(key))
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	k := &kek{id: KEKID(key), aead: aead}
	if _, err := hex.Decode(k.rawID[:], []byte(k.id)); err != nil {
		return nil, fmt.Errorf("key id: %w", err)
	}
	return k, nil
}

// wrap appends nonce || AES-256-GCM(kek, dek) to dst.
func (k *kek) wrap(dst, dek []byte, payloadAAD string) []byte {
	return k.aead.Seal(dst, nil, dek, []byte(dekAAD(k.id, payloadAAD)))
}

// unwrap opens a nonce || encrypted DEK box. The caller clears the result.
func (k *kek) unwrap(box []byte, payloadAAD string) ([]byte, error) {
	if len(box) != dekBoxSize {
		return nil, fmt.Errorf("%w: wrapped data key is %d bytes, want %d", ErrMalformed, len(box), dekBoxSize)
	}
	dek, err := k.aead.Open(make([]byte, 0, KeySize), nil, box, []byte(dekAAD(k.id, payloadAAD)))
	if err != nil {
		return nil, fmt.Errorf("unwrapping data key with key-encryption key %s: %w", k.id, ErrDecrypt)
	}
	return dek, nil
}

// newAEAD returns AES-256-GCM that prepends a random 12-byte nonce to what
// it seals.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

// newDEK returns a fresh random data key and its AEAD. The caller clears
// the key.
func newDEK() ([]byte, cipher.AEAD, error) {
	dek := make([]byte, KeySize)
	if _, err := rand.Read(dek); err != nil {
		return nil, nil, fmt.Errorf("generating data key: %w", err)
	}
	aead, err := newAEAD(dek)
	if err != nil {
		clear(dek)
		return nil, nil, err
	}
	return dek, aead, nil
}

// openBox opens nonce || ciphertext || tag under dek.
func openBox(dek, box []byte, aad string) ([]byte, error) {
	aead, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	if len(box) < gcmExtra {
		return nil, fmt.Errorf("%w: ciphertext too short", ErrMalformed)
	}
	pt, err := aead.Open(nil, nil, box, []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("decrypting with the data key: %w", ErrDecrypt)
	}
	return pt, nil
}

// encryptSecret encrypts value as the secret (name, agent) under a fresh
// DEK wrapped by the primary key, returning VaultSecret's Ciphertext,
// WrappedDEK and KEKID.
func (k *Keyring) encryptSecret(name, agent string, value []byte) (ciphertext, wrapped []byte, kekID string, err error) {
	dek, aead, err := newDEK()
	if err != nil {
		return nil, nil, "", err
	}
	defer clear(dek)
	aad := secretAAD(name, agent)
	ciphertext = make([]byte, 1, CiphertextOverhead+len(value))
	ciphertext[0] = formatV1
	ciphertext = aead.Seal(ciphertext, nil, value, []byte(aad))
	wrapped = make([]byte, 1, WrappedDEKSize)
	wrapped[0] = formatV1
	wrapped = k.primary.wrap(wrapped, dek, aad)
	return ciphertext, wrapped, k.primary.id, nil
}

// unwrapSecretDEK returns the DEK of the secret (name, agent). The caller
// clears it.
func (k *Keyring) unwrapSecretDEK(kekID string, wrapped []byte, name, agent string) ([]byte, error) {
	kk, err := k.lookup(kekID)
	if err != nil {
		return nil, err
	}
	if len(wrapped) == 0 || wrapped[0] != formatV1 {
		return nil, fmt.Errorf("%w: wrapped data key: %s", ErrMalformed, versionProblem(wrapped))
	}
	return kk.unwrap(wrapped[1:], secretAAD(name, agent))
}

// decryptSecret returns the value of the secret (name, agent) from its
// stored fields. The identity comes from the caller, not the record, so a
// record copied to another name or agent does not decrypt.
func (k *Keyring) decryptSecret(kekID string, wrapped, ciphertext []byte, name, agent string) ([]byte, error) {
	dek, err := k.unwrapSecretDEK(kekID, wrapped, name, agent)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	if len(ciphertext) == 0 || ciphertext[0] != formatV1 {
		return nil, fmt.Errorf("%w: ciphertext: %s", ErrMalformed, versionProblem(ciphertext))
	}
	return openBox(dek, ciphertext[1:], secretAAD(name, agent))
}

// rewrapSecret returns the secret's DEK wrapped by the primary key.
func (k *Keyring) rewrapSecret(kekID string, wrapped []byte, name, agent string) ([]byte, error) {
	dek, err := k.unwrapSecretDEK(kekID, wrapped, name, agent)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	out := make([]byte, 1, WrappedDEKSize)
	out[0] = formatV1
	return k.primary.wrap(out, dek, secretAAD(name, agent)), nil
}

func versionProblem(b []byte) string {
	if len(b) == 0 {
		return "empty"
	}
	return fmt.Sprintf("unsupported format version %d", b[0])
}

// Seal encrypts plaintext under a fresh data key wrapped by the primary
// key-encryption key, bound to aad: Open needs the same aad. The result is
// self-describing (format version, KEK id, wrapped data key, ciphertext);
// the layout is in the package documentation.
func (k *Keyring) Seal(plaintext []byte, aad string) ([]byte, error) {
	dek, aead, err := newDEK()
	if err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	defer clear(dek)
	payloadAAD := sealAAD(aad)
	out := make([]byte, 0, SealOverhead+len(plaintext))
	out = append(out, formatV1)
	out = append(out, k.primary.rawID[:]...)
	out = k.primary.wrap(out, dek, payloadAAD)
	out = aead.Seal(out, nil, plaintext, []byte(payloadAAD))
	return out, nil
}

// Open decrypts what Seal returned for the same aad, with whichever key of
// the keyring sealed it.
func (k *Keyring) Open(sealed []byte, aad string) ([]byte, error) {
	kk, box, payload, err := k.parseSealed(sealed)
	if err != nil {
		return nil, fmt.Errorf("opening sealed data: %w", err)
	}
	payloadAAD := sealAAD(aad)
	dek, err := kk.unwrap(box, payloadAAD)
	if err != nil {
		return nil, fmt.Errorf("opening sealed data: %w", err)
	}
	defer clear(dek)
	pt, err := openBox(dek, payload, payloadAAD)
	if err != nil {
		return nil, fmt.Errorf("opening sealed data: %w", err)
	}
	return pt, nil
}

// Rewrap returns sealed with its data key wrapped by the primary key, and
// whether it changed: sealed itself when the primary key already wraps it.
// Only the data key is decrypted (which authenticates it and its binding to
// aad); the payload is copied as it is. Use it on sealed signing keys when
// rotating the key-encryption key.
func (k *Keyring) Rewrap(sealed []byte, aad string) ([]byte, bool, error) {
	kk, box, payload, err := k.parseSealed(sealed)
	if err != nil {
		return nil, false, fmt.Errorf("rewrapping sealed data: %w", err)
	}
	if kk == k.primary {
		return sealed, false, nil
	}
	payloadAAD := sealAAD(aad)
	dek, err := kk.unwrap(box, payloadAAD)
	if err != nil {
		return nil, false, fmt.Errorf("rewrapping sealed data: %w", err)
	}
	defer clear(dek)
	out := make([]byte, 0, len(sealed))
	out = append(out, formatV1)
	out = append(out, k.primary.rawID[:]...)
	out = k.primary.wrap(out, dek, payloadAAD)
	out = append(out, payload...)
	return out, true, nil
}

// SealedKEKID returns the id of the key-encryption key that sealed the
// data.
func SealedKEKID(sealed []byte) (string, error) {
	if err := checkSealed(sealed); err != nil {
		return "", err
	}
	return hex.EncodeToString(sealed[1:sealHeaderSize]), nil
}

func checkSealed(sealed []byte) error {
	if len(sealed) > 0 && sealed[0] != formatV1 {
		return fmt.Errorf("%w: %s", ErrMalformed, versionProblem(sealed))
	}
	if len(sealed) < SealOverhead {
		return fmt.Errorf("%w: %d bytes, shorter than the minimum %d", ErrMalformed, len(sealed), SealOverhead)
	}
	return nil
}

// parseSealed splits sealed data into its key, wrapped-DEK box and payload
// box.
func (k *Keyring) parseSealed(sealed []byte) (kk *kek, box, payload []byte, err error) {
	if err := checkSealed(sealed); err != nil {
		return nil, nil, nil, err
	}
	kk, err = k.lookup(hex.EncodeToString(sealed[1:sealHeaderSize]))
	if err != nil {
		return nil, nil, nil, err
	}
	return kk, sealed[sealHeaderSize : sealHeaderSize+dekBoxSize], sealed[sealHeaderSize+dekBoxSize:], nil
}

package vault

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
)

// KeySize is the size of a key-encryption key and of a data key, in bytes.
const KeySize = 32

// maxKeyFileSize bounds what is read from a key file.
const maxKeyFileSize = 4096

// Errors callers branch on. They are wrapped with context.
var (
	// ErrUnknownKEK: the data was encrypted with a key-encryption key that is
	// not in the keyring. The error text continues with the KEK id.
	ErrUnknownKEK = errors.New("unknown key-encryption key")
	// ErrDecrypt: authentication failed: the key is wrong, or the data was
	// altered or moved to another record.
	ErrDecrypt = errors.New("decryption failed (wrong key, or the data was altered or moved)")
	// ErrMalformed: the data is too short or in an unknown format version.
	ErrMalformed = errors.New("malformed encrypted data")
)

// KEKID returns the id of a key-encryption key: the first 8 bytes of
// SHA-256 of the key, in hex. The id is not secret.
func KEKID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:kekIDSize])
}

// GenerateKEK returns a new random key-encryption key in standard base64,
// the form LoadKeyring reads from files and environment variables.
func GenerateKEK() (string, error) {
	key := make([]byte, KeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generating key-encryption key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// Keyring holds the primary key-encryption key, which encrypts, and the
// previous ones, which only decrypt. A Keyring is immutable and safe for
// concurrent use; it keeps no copy of the raw keys, only the AES ciphers
// made from them.
type Keyring struct {
	primary *kek
	byID    map[string]*kek
	ids     []string // primary first, then previous in the order given
}

// NewKeyring returns a keyring with primary as the primary key and previous
// as the previous keys. Every key must be KeySize bytes; a previous key that
// repeats the primary or another previous key is ignored. The slices are not
// retained; the caller may clear them.
func NewKeyring(primary []byte, previous ...[]byte) (*Keyring, error) {
	p, err := newKEK(primary)
	if err != nil {
		return nil, fmt.Errorf("primary key-encryption key: %w", err)
	}
	k := &Keyring{primary: p, byID: map[string]*kek{p.id: p}, ids: []string{p.id}}
	for i, key := range previous {
		pk, err := newKEK(key)
		if err != nil {
			return nil, fmt.Errorf("previous key-encryption key %d: %w", i+1, err)
		}
		if _, dup := k.byID[pk.id]; dup {
			continue
		}
		k.byID[pk.id] = pk
		k.ids = append(k.ids, pk.id)
	}
	return k, nil
}

// LoadOption changes how LoadKeyring reads keys.
type LoadOption func(*loadOptions)

type loadOptions struct {
	allowInsecureFile bool
}

// AllowInsecureFile lets LoadKeyring read key files that group or others
// may access. It is meant for tests.
func AllowInsecureFile() LoadOption {
	return func(o *loadOptions) { o.allowInsecureFile = true }
}

// LoadKeyring loads the primary and previous key-encryption keys from their
// references and returns a keyring of them. A reference is file:PATH (a
// file holding exactly 32 raw bytes, or the standard base64 of 32 bytes;
// refused if group or others may access it, unless AllowInsecureFile is
// given) or env:NAME (an environment variable, looked up with lookupEnv,
// holding the standard base64 of 32 bytes). Errors never contain key
// material, nor a reference that is not of either form (it might be a key
// pasted in the wrong place).
func LoadKeyring(primary string, previous []string, lookupEnv func(string) (string, bool), opts ...LoadOption) (*Keyring, error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	p, err := loadKEK(primary, lookupEnv, o)
	if err != nil {
		return nil, fmt.Errorf("loading primary key-encryption key: %w", err)
	}
	defer clear(p)
	prev := make([][]byte, 0, len(previous))
	defer func() {
		for _, b := range prev {
			clear(b)
		}
	}()
	for i, ref := range previous {
		b, err := loadKEK(ref, lookupEnv, o)
		if err != nil {
			return nil, fmt.Errorf("loading previous key-encryption key %d: %w", i+1, err)
		}
		prev = append(prev, b)
	}
	return NewKeyring(p, prev...)
}

// PrimaryID returns the id of the primary key-encryption key.
func (k *Keyring) PrimaryID() string { return k.primary.id }

// IDs returns the ids of all keys, the primary first.
func (k *Keyring) IDs() []string { return append([]string(nil), k.ids...) }

// Has reports whether the key with the given id is in the keyring.
func (k *Keyring) Has(id string) bool {
	_, ok := k.byID[id]
	return ok
}

// String describes the keyring by key ids.
func (k *Keyring) String() string {
	return fmt.Sprintf("keyring(primary %s, previous %v)", k.ids[0], k.ids[1:])
}

// LogValue describes the keyring by key ids.
func (k *Keyring) LogValue() slog.Value {
	return slog.GroupValue(slog.String("primary", k.ids[0]), slog.Any("previous", k.ids[1:]))
}

// lookup returns the key with the given id.
func (k *Keyring) lookup(id string) (*kek, error) {
	if kk, ok := k.byID[id]; ok {
		return kk, nil
	}
	if len(id) != 2*kekIDSize {
		// Not an id this package wrote; keep the message bounded.
		if len(id) > 2*kekIDSize {
			id = id[:2*kekIDSize] + "…"
		}
		return nil, fmt.Errorf("%w: key-encryption key id %q is not %d hex digits", ErrMalformed, id, 2*kekIDSize)
	}
	return nil, fmt.Errorf("%w %s (not in the keyring)", ErrUnknownKEK, id)
}

// loadKEK reads one key from its reference. The caller clears the result.
func loadKEK(ref string, lookupEnv func(string) (string, bool), o loadOptions) ([]byte, error) {
	scheme, rest, ok := strings.Cut(ref, ":")
	switch {
	case ref == "":
		return nil, errors.New("no reference given (want file:PATH or env:NAME)")
	case ok && scheme == "file" && rest != "":
		return readKEKFile(rest, o.allowInsecureFile)
	case ok && scheme == "env" && rest != "":
		if lookupEnv == nil {
			return nil, fmt.Errorf("env:%s: no environment lookup function given", rest)
		}
		v, set := lookupEnv(rest)
		if !set {
			return nil, fmt.Errorf("environment variable %s is not set", rest)
		}
		key, err := decodeBase64Key([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("environment variable %s: %w", rest, err)
		}
		return key, nil
	default:
		// The reference is not shown: it may be a key pasted in the wrong place.
		return nil, errors.New("reference is not of the form file:PATH or env:NAME")
	}
}

// readKEKFile reads a key file, refusing one that group or others may access.
func readKEKFile(path string, allowInsecure bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && !allowInsecure && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("key file %s has mode %04o, which lets group or others access it: restrict it with chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	defer clear(data)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("key file %s is larger than %d bytes; want 32 raw bytes or their standard base64", path, maxKeyFileSize)
	}
	if len(data) == KeySize {
		return append([]byte(nil), data...), nil
	}
	key, err := decodeBase64Key(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w (or exactly 32 raw bytes)", path, err)
	}
	return key, nil
}

// decodeBase64Key decodes the standard base64 of a 32-byte key, ignoring
// surrounding white space. Its errors contain no input.
func decodeBase64Key(b []byte) ([]byte, error) {
	b = trimSpace(b)
	key := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Decode(key, b)
	if err != nil || n != KeySize {
		clear(key)
		if err != nil {
			return nil, errors.New("want the standard base64 encoding of 32 bytes: not valid base64")
		}
		return nil, fmt.Errorf("want the standard base64 encoding of 32 bytes, got %d bytes", n)
	}
	return key[:n], nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

var _ slog.LogValuer = (*Keyring)(nil)

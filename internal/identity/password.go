package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Password hashing parameters for new hashes (argon2id, RFC 9106's second
// recommended option with a smaller memory cost: 64 MiB, 3 passes).
const (
	argonMemory  = 64 * 1024 // KiB
	argonTime    = 3
	argonThreads = 2
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Bounds on the parameters VerifyPassword accepts, so that a corrupted or
// hostile hash string cannot make a login allocate gigabytes or spin for
// minutes.
const (
	maxArgonMemory  = 1024 * 1024 // KiB (1 GiB)
	maxArgonTime    = 32
	minArgonSaltLen = 8
	minArgonKeyLen  = 16
	maxArgonKeyLen  = 128
)

// ErrMalformedHash is returned by VerifyPassword for a string that is not
// an argon2id hash it can check.
var ErrMalformedHash = errors.New("malformed password hash")

// HashPassword hashes pw with argon2id and a random 16-byte salt and
// returns it in the PHC string format:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash> (unpadded standard base64).
func HashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("generating salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches hash, a PHC string produced by
// HashPassword (the cost parameters are read from the string, so hashes
// made with older parameters keep working). The comparison is constant
// time. A malformed hash is an error wrapping ErrMalformedHash.
func VerifyPassword(hash, pw string) (bool, error) {
	p, err := parseArgon2id(hash)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(pw), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func parseArgon2id(hash string) (argonParams, error) {
	var p argonParams
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, key
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, fmt.Errorf("%w: not a PHC string", ErrMalformedHash)
	}
	if parts[1] != "argon2id" {
		return p, fmt.Errorf("%w: algorithm %q, want argon2id", ErrMalformedHash, parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("%w: unsupported argon2 version %q", ErrMalformedHash, parts[2])
	}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return p, fmt.Errorf("%w: parameter %q", ErrMalformedHash, kv)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, fmt.Errorf("%w: parameter %q", ErrMalformedHash, kv)
		}
		switch k {
		case "m":
			p.memory, seen[0] = uint32(n), true
		case "t":
			p.time, seen[1] = uint32(n), true
		case "p":
			if n > 255 {
				return p, fmt.Errorf("%w: parallelism %d", ErrMalformedHash, n)
			}
			p.threads, seen[2] = uint8(n), true
		default:
			return p, fmt.Errorf("%w: unknown parameter %q", ErrMalformedHash, k)
		}
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return p, fmt.Errorf("%w: parameters m, t and p are required", ErrMalformedHash)
	}
	if p.time < 1 || p.time > maxArgonTime || p.threads < 1 || p.memory < 8*uint32(p.threads) || p.memory > maxArgonMemory {
		return p, fmt.Errorf("%w: parameters out of range (m=%d,t=%d,p=%d)", ErrMalformedHash, p.memory, p.time, p.threads)
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < minArgonSaltLen {
		return p, fmt.Errorf("%w: salt", ErrMalformedHash)
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < minArgonKeyLen || len(p.key) > maxArgonKeyLen {
		return p, fmt.Errorf("%w: hash", ErrMalformedHash)
	}
	return p, nil
}

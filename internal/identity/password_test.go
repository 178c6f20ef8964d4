package identity

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestHashPasswordFormat(t *testing.T) {
	h1, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=3,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(h1) {
		t.Fatalf("hash %q is not in the expected PHC format", h1)
	}
	h2, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestVerifyPassword(t *testing.T) {
	h, err := HashPassword("s3cret pässwörd")
	if err != nil {
		t.Fatal(err)
	}
	// A hash made with other (cheaper) parameters: VerifyPassword must read
	// them from the string.
	salt := []byte("0123456789abcdef")
	cheap := fmt.Sprintf("$argon2id$v=19$m=1024,t=1,p=1$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte("pw"), salt, 1, 1024, 1, 32)))

	for _, tc := range []struct {
		name, hash, pw string
		want           bool
	}{
		{"right password", h, "s3cret pässwörd", true},
		{"wrong password", h, "s3cret passwort", false},
		{"empty password", h, "", false},
		{"case differs", h, "S3cret pässwörd", false},
		{"other parameters, right", cheap, "pw", true},
		{"other parameters, wrong", cheap, "pW", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyPassword(tc.hash, tc.pw)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("VerifyPassword = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	salt := base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef"))
	key := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct{ name, hash string }{
		{"empty", ""},
		{"plain text", "hunter2"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", "$argon2i$v=19$m=1024,t=1,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=1024,t=1,p=1$" + salt + "$" + key},
		{"missing parameter", "$argon2id$v=19$m=1024,t=1$" + salt + "$" + key},
		{"unknown parameter", "$argon2id$v=19$m=1024,t=1,p=1,x=2$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=1024,t=0,p=1$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"huge time", "$argon2id$v=19$m=1024,t=100000,p=1$" + salt + "$" + key},
		{"zero threads", "$argon2id$v=19$m=1024,t=1,p=0$" + salt + "$" + key},
		{"too many threads", "$argon2id$v=19$m=1024,t=1,p=256$" + salt + "$" + key},
		{"negative", "$argon2id$v=19$m=-1,t=1,p=1$" + salt + "$" + key},
		{"bad salt", "$argon2id$v=19$m=1024,t=1,p=1$!!!$" + key},
		{"short salt", "$argon2id$v=19$m=1024,t=1,p=1$YWJj$" + key},
		{"short key", "$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$YWJj"},
		{"extra field", "$argon2id$v=19$m=1024,t=1,p=1$" + salt + "$" + key + "$x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := VerifyPassword(tc.hash, "pw")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("VerifyPassword(%q) = %v, %v; want false, ErrMalformedHash", tc.hash, ok, err)
			}
		})
	}
}

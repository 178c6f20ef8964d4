package vault_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gatehouse/internal/vault"
)

func TestKEKID(t *testing.T) {
	// SHA-256 of 32 zero bytes starts 66687aadf862bd77.
	if got := vault.KEKID(make([]byte, 32)); got != "66687aadf862bd77" {
		t.Fatalf("KEKID(zeros) = %s", got)
	}
}

func TestGenerateKEK(t *testing.T) {
	a, err := vault.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := vault.GenerateKEK()
	key, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(key) != vault.KeySize {
		t.Fatalf("GenerateKEK = %d bytes, %v", len(key), err)
	}
	if a == b {
		t.Fatal("two generated keys are equal")
	}
	kr, err := vault.LoadKeyring("env:KEK", nil, env(map[string]string{"KEK": a}))
	if err != nil || kr.PrimaryID() != vault.KEKID(key) {
		t.Fatalf("LoadKeyring of a generated key: %v", err)
	}
}

func TestNewKeyring(t *testing.T) {
	kA, kB := testKey(0xA), testKey(0xB)
	kr, err := vault.NewKeyring(kA, kB, kA, kB)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{vault.KEKID(kA), vault.KEKID(kB)}; !slices.Equal(kr.IDs(), want) {
		t.Fatalf("IDs = %v, want %v (duplicates dropped)", kr.IDs(), want)
	}
	if !kr.Has(vault.KEKID(kB)) || kr.Has(vault.KEKID(testKey(0xC))) {
		t.Fatal("Has is wrong")
	}
	for _, s := range []string{kr.String(), kr.LogValue().String()} {
		if !strings.Contains(s, vault.KEKID(kA)) || !strings.Contains(s, vault.KEKID(kB)) {
			t.Fatalf("description %q lacks the ids", s)
		}
	}
	if _, err := vault.NewKeyring(make([]byte, 16)); err == nil {
		t.Fatal("16-byte primary accepted")
	}
	if _, err := vault.NewKeyring(kA, make([]byte, 33)); err == nil || !strings.Contains(err.Error(), "previous key-encryption key 1") {
		t.Fatalf("33-byte previous key: %v", err)
	}
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestLoadKeyring(t *testing.T) {
	dir := t.TempDir()
	kA, kB, kC := testKey(0xA1), testKey(0xB2), testKey(0xC3)
	b64 := base64.StdEncoding.EncodeToString
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is subject to umask
			t.Fatal(err)
		}
		return "file:" + p
	}
	fileB64 := write("a.b64", []byte(b64(kA)+"\n"), 0o600)
	fileRaw := write("b.raw", kB, 0o400)
	fileWorld := write("world", []byte(b64(kC)), 0o644)
	fileGroup := write("group", []byte(b64(kC)), 0o640)
	fileShort := write("short", []byte(b64(kA[:16])), 0o600)
	fileJunk := write("junk", []byte("this is not base64 !!"), 0o600)
	fileBig := write("big", bytes.Repeat([]byte("A"), 5000), 0o600)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	lookup := env(map[string]string{
		"KEK_A":   " " + b64(kA) + "\n",
		"KEK_C":   b64(kC),
		"KEK_BAD": "%%%",
		"KEK_RAW": string(kB), // raw bytes are not accepted from the environment
	})

	tests := []struct {
		name      string
		primary   string
		previous  []string
		opts      []vault.LoadOption
		lookup    func(string) (string, bool)
		wantIDs   []string
		wantErr   string
		wantErrIs error
	}{
		{name: "file base64", primary: fileB64, wantIDs: []string{vault.KEKID(kA)}},
		{name: "file raw", primary: fileRaw, wantIDs: []string{vault.KEKID(kB)}},
		{name: "env", primary: "env:KEK_A", wantIDs: []string{vault.KEKID(kA)}},
		{name: "primary and previous", primary: fileRaw, previous: []string{"env:KEK_A", "env:KEK_C", fileB64},
			wantIDs: []string{vault.KEKID(kB), vault.KEKID(kA), vault.KEKID(kC)}},
		{name: "world-readable file", primary: fileWorld, wantErr: "mode 0644, which lets group or others access it: restrict it with chmod 600"},
		{name: "group-readable file", primary: fileGroup, wantErr: "mode 0640"},
		{name: "insecure file allowed", primary: fileWorld, opts: []vault.LoadOption{vault.AllowInsecureFile()}, wantIDs: []string{vault.KEKID(kC)}},
		{name: "insecure previous file", primary: fileB64, previous: []string{fileWorld},
			wantErr: "loading previous key-encryption key 1: key file"},
		{name: "short key", primary: fileShort, wantErr: "got 16 bytes"},
		{name: "not base64", primary: fileJunk, wantErr: "not valid base64"},
		{name: "too big", primary: fileBig, wantErr: "larger than 4096 bytes"},
		{name: "missing file", primary: "file:" + filepath.Join(dir, "nope"), wantErrIs: fs.ErrNotExist},
		{name: "directory", primary: "file:" + filepath.Join(dir, "sub"), wantErr: "not a regular file"},
		{name: "env unset", primary: "env:NOPE", wantErr: "environment variable NOPE is not set"},
		{name: "env not base64", primary: "env:KEK_BAD", wantErr: "environment variable KEK_BAD: want the standard base64"},
		{name: "env raw bytes", primary: "env:KEK_RAW", wantErr: "environment variable KEK_RAW"},
		{name: "env without lookup", primary: "env:KEK_A", lookup: func(string) (string, bool) { return "", false }, wantErr: "not set"},
		{name: "empty", primary: "", wantErr: "loading primary key-encryption key: no reference given"},
		{name: "empty path", primary: "file:", wantErr: "not of the form file:PATH or env:NAME"},
		{name: "key pasted as reference", primary: b64(kA), wantErr: "not of the form file:PATH or env:NAME"},
		{name: "unknown scheme", primary: "vault:x", wantErr: "not of the form"},
		{name: "bad previous", primary: fileB64, previous: []string{"env:KEK_C", "env:NOPE"},
			wantErr: "loading previous key-encryption key 2: environment variable NOPE is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lk := lookup
			if tt.lookup != nil {
				lk = tt.lookup
			}
			kr, err := vault.LoadKeyring(tt.primary, tt.previous, lk, tt.opts...)
			if tt.wantErr == "" && tt.wantErrIs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(kr.IDs(), tt.wantIDs) {
					t.Fatalf("IDs = %v, want %v", kr.IDs(), tt.wantIDs)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || (tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs)) {
				t.Fatalf("err = %q, want it to contain %q / wrap %v", err, tt.wantErr, tt.wantErrIs)
			}
			for _, k := range [][]byte{kA, kB, kC} {
				if strings.Contains(err.Error(), b64(k)) || strings.Contains(err.Error(), string(k)) {
					t.Fatalf("error contains key material: %q", err)
				}
			}
		})
	}

	t.Run("nil lookup", func(t *testing.T) {
		_, err := vault.LoadKeyring("env:KEK_A", nil, nil)
		if err == nil || !strings.Contains(err.Error(), "no environment lookup function") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSealOpen(t *testing.T) {
	kA, kB := testKey(0xA), testKey(0xB)
	krA := newKeyring(t, kA)
	tests := []struct {
		name      string
		plaintext []byte
		aad       string
	}{
		{"empty", nil, ""},
		{"ed25519 seed", bytes.Repeat([]byte{7}, 32), "signing-key:k1"},
		{"pem", []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI...\n-----END EC PRIVATE KEY-----\n"), "signing-key:2026-03"},
		{"large", bytes.Repeat([]byte("x"), 100_000), "big"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := krA.Seal(tt.plaintext, tt.aad)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != len(tt.plaintext)+vault.SealOverhead {
				t.Fatalf("len = %d, want %d", len(sealed), len(tt.plaintext)+vault.SealOverhead)
			}
			if id, err := vault.SealedKEKID(sealed); err != nil || id != krA.PrimaryID() {
				t.Fatalf("SealedKEKID = %s, %v", id, err)
			}
			if len(tt.plaintext) >= 8 && bytes.Contains(sealed, tt.plaintext[:8]) {
				t.Fatal("sealed data contains the plaintext")
			}
			got, err := krA.Open(sealed, tt.aad)
			if err != nil || !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("Open = %d bytes, %v", len(got), err)
			}
			// Any key of a keyring opens it.
			if got, err := newKeyring(t, kB, kA).Open(sealed, tt.aad); err != nil || !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("Open with A as previous: %v", err)
			}
			// The additional data binds.
			for _, aad := range []string{tt.aad + "x", "other", strings.ToUpper(tt.aad) + " "} {
				if _, err := krA.Open(sealed, aad); !errors.Is(err, vault.ErrDecrypt) {
					t.Fatalf("Open with aad %q: %v, want ErrDecrypt", aad, err)
				}
			}
			// A keyring without the key says which key is missing.
			_, err = newKeyring(t, kB).Open(sealed, tt.aad)
			if !errors.Is(err, vault.ErrUnknownKEK) || !strings.Contains(err.Error(), "unknown key-encryption key "+vault.KEKID(kA)) {
				t.Fatalf("Open without the key: %v", err)
			}
		})
	}

	t.Run("tamper every byte", func(t *testing.T) {
		sealed, _ := krA.Seal([]byte("private-key-bytes"), "k")
		krAB := newKeyring(t, kA, kB)
		for i := range sealed {
			b := bytes.Clone(sealed)
			b[i] ^= 0x04
			if got, err := krAB.Open(b, "k"); err == nil {
				t.Fatalf("byte %d: opened to %q", i, got)
			}
		}
		for _, n := range []int{0, 1, 9, vault.SealOverhead - 1} {
			if _, err := krA.Open(sealed[:n], "k"); !errors.Is(err, vault.ErrMalformed) {
				t.Fatalf("length %d: %v, want ErrMalformed", n, err)
			}
		}
		if _, err := krA.Open(append(bytes.Clone(sealed), 0), "k"); !errors.Is(err, vault.ErrDecrypt) {
			t.Fatalf("extended: %v", err)
		}
		v2 := bytes.Clone(sealed)
		v2[0] = 2
		if _, err := krA.Open(v2, "k"); !errors.Is(err, vault.ErrMalformed) || !strings.Contains(err.Error(), "version 2") {
			t.Fatalf("version 2: %v", err)
		}
	})
}

func TestRewrap(t *testing.T) {
	kA, kB := testKey(0xA), testKey(0xB)
	pt := []byte("ed25519-private-key-material...")
	sealed, err := newKeyring(t, kA).Seal(pt, "signing-key:k1")
	if err != nil {
		t.Fatal(err)
	}
	krBA := newKeyring(t, kB, kA)
	out, changed, err := krBA.Rewrap(sealed, "signing-key:k1")
	if err != nil || !changed {
		t.Fatalf("Rewrap = %v, %v", changed, err)
	}
	if id, _ := vault.SealedKEKID(out); id != vault.KEKID(kB) {
		t.Fatalf("rewrapped by %s, want %s", id, vault.KEKID(kB))
	}
	if !bytes.Equal(out[len(out)-len(pt)-28:], sealed[len(sealed)-len(pt)-28:]) {
		t.Fatal("Rewrap changed the payload")
	}
	if got, err := newKeyring(t, kB).Open(out, "signing-key:k1"); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open rewrapped with B alone: %v", err)
	}
	again, changed, err := krBA.Rewrap(out, "signing-key:k1")
	if err != nil || changed || !bytes.Equal(again, out) {
		t.Fatalf("second Rewrap = %v, %v", changed, err)
	}
	if _, _, err := krBA.Rewrap(sealed, "signing-key:k2"); !errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("Rewrap with the wrong aad: %v", err)
	}
	if _, _, err := newKeyring(t, kB).Rewrap(sealed, "signing-key:k1"); !errors.Is(err, vault.ErrUnknownKEK) {
		t.Fatalf("Rewrap without the old key: %v", err)
	}
}

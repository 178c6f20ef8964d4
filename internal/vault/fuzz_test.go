package vault_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"gatehouse/internal/vault"
)

// Fuzz keys. The seeds under testdata/fuzz/FuzzOpen were sealed with
// fuzzSealKey and the additional data "signing-key:k1".
var (
	fuzzSealKey    = bytes.Repeat([]byte{0x42}, vault.KeySize)
	fuzzPrimaryKey = bytes.Repeat([]byte{0x24}, vault.KeySize)
)

// FuzzOpen feeds arbitrary bytes to Open, Rewrap and SealedKEKID: they
// must not panic, and whatever opens must also re-wrap and open again to
// the same plaintext.
func FuzzOpen(f *testing.F) {
	kr, err := vault.NewKeyring(fuzzPrimaryKey, fuzzSealKey)
	if err != nil {
		f.Fatal(err)
	}
	old, _ := vault.NewKeyring(fuzzSealKey)
	for _, pt := range []string{"", "k", "private key bytes"} {
		sealed, err := old.Seal([]byte(pt), "signing-key:k1")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed, "signing-key:k1")
	}
	f.Add([]byte{}, "")
	f.Add([]byte{1}, "")
	f.Add(make([]byte, vault.SealOverhead), "")

	f.Fuzz(func(t *testing.T, data []byte, aad string) {
		input := bytes.Clone(data)
		pt, err := kr.Open(data, aad)
		if !bytes.Equal(data, input) {
			t.Fatal("Open modified its input")
		}
		if err != nil && !errors.Is(err, vault.ErrMalformed) && !errors.Is(err, vault.ErrDecrypt) && !errors.Is(err, vault.ErrUnknownKEK) {
			t.Fatalf("unexpected error class: %v", err)
		}
		out, _, rerr := kr.Rewrap(data, aad)
		_, _ = vault.SealedKEKID(data)
		if err != nil {
			return
		}
		if rerr != nil {
			t.Fatalf("Open succeeded but Rewrap failed: %v", rerr)
		}
		pt2, err := kr.Open(out, aad)
		if err != nil || !bytes.Equal(pt, pt2) {
			t.Fatalf("rewrapped data opens to %q, %v; want %q", pt2, err, pt)
		}
	})
}

// FuzzExpand checks that template parsing never panics and that Refs and
// Expand agree.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "Bearer {{vault:github-token}}", "{{{{vault:a}}", "{{ vault:a }}{{vault:b}}", "{{", "}}{{x}}", "{{{{{{vault:a}}}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		var resolved []string
		resolve := func(_ context.Context, name, _ string) ([]byte, error) {
			resolved = append(resolved, name)
			return []byte("<" + name + ">"), nil
		}
		out, err := vault.Expand(context.Background(), tmpl, "agt", resolve)
		refs, rerr := vault.Refs(tmpl)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("Expand error %v, Refs error %v", err, rerr)
		}
		if err != nil {
			return
		}
		if len(refs) != len(resolved) {
			t.Fatalf("Refs found %d, Expand resolved %d", len(refs), len(resolved))
		}
		for i, r := range refs {
			if r.Name != resolved[i] {
				t.Fatalf("ref %d: %q vs %q", i, r.Name, resolved[i])
			}
		}
		if len(refs) == 0 && !strings.Contains(tmpl, "{{") && out != tmpl {
			t.Fatalf("template without refs changed: %q -> %q", tmpl, out)
		}
	})
}

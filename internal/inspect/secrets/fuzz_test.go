package secrets

import (
	"slices"
	"testing"
)

// FuzzScan checks that Scan never panics, keeps findings inside the text,
// and that windows find what whole-text scanning finds.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		"", "key", "ey", "s.", "api_key = \"h7Fq93kLmZ2xWv8Rt4Yp1Ns6Bd0Hc5Ja\"",
		"AKIAZ3MHQ7X2LP4RTW5N", "ghp_4f8Kq2LmZx9Wv3Rt7Yp1Ns6Bd0Hc5Ja8Ue2X",
		"postgres://app:Xk29fLq8mZ@db:5432/app", "password: \"hT7q!Lm2#Zp9Wv\"",
		"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV",
		"\u212Aey = \"h7Fq93kLmZ2xWv8Rt4Yp1Ns6Bd0Hc5Ja\"", "token\xff\xfe= \"abc\x00def1234567\"",
		"ghk_Xq3Lm9Zp2Rt7Wv4Yk8Ns1Bd6Hc0Ja5Ue3Xf7Gq2Lm9Z",
	} {
		f.Add(s)
	}
	d, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	whole, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	whole.wholeText = true
	f.Fuzz(func(t *testing.T, text string) {
		fs := d.Scan(text, nil)
		checkFindings(t, text, fs)
		if want := whole.Scan(text, nil); !slices.Equal(fs, want) {
			t.Fatalf("windows found %+v, whole text %+v", fs, want)
		}
	})
}

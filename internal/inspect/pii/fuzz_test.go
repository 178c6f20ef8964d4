package pii

import (
	"testing"
)

// checkFindings fails on a finding outside the text, empty or out of order.
func checkFindings(t *testing.T, d *Detector, text string) {
	fs := d.Scan(text, nil)
	last := 0
	for _, f := range fs {
		if f.Start < 0 || f.End > len(text) || f.Start >= f.End {
			t.Fatalf("finding %+v out of bounds for %d bytes of %q", f, len(text), text)
		}
		if f.Start < last {
			t.Fatalf("findings out of order or overlapping: %+v in %q", fs, text)
		}
		last = f.End
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range []string{
		"write to Jane.Doe+crm@acme-corp.com.", "git@github.com:org/repo.git", "icon@2x.png",
		"card 4556 7375 8689 9855 exp 12/27", "3782-822463-10005", "SSN: 536-22-8471",
		"social security number 536228471", "IBAN DE89 3704 0044 0532 0130 00", "GB29NWBK60161331926819",
		"+44 (0)20 7946 0958", "(415) 555-0132", "mobile: 4155550132", "2001:db8:85a3::8a2e:370:7334.",
		"DOB: 1985-03-14", "born on March 3, 1985", "AB 12 34 56 C", "SIN 130 692 544",
		"Aadhaar: 2345 6789 0124", "2024-01-15T10:30:00Z", `"note":"see\nbob@example.com"`, "+(", "@", "::",
	} {
		f.Add(s)
	}
	d, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) { checkFindings(t, d, text) })
}

func FuzzEmailAt(f *testing.F) {
	for _, s := range []string{"a@b.co", "@", "x@", "@y.com", "a..b@c.com", "://u@h.com", `\nq@w.org`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for a := 0; a < len(text); a++ {
			if text[a] != '@' {
				continue
			}
			if s, e, ok := emailAt(text, a); ok && (s < 0 || e > len(text) || s >= a || e <= a+1) {
				t.Fatalf("emailAt(%q, %d) = %d, %d", text, a, s, e)
			}
		}
	})
}

func FuzzValidators(f *testing.F) {
	for _, s := range []string{"4111111111111111", "GB82WEST12345698765432", "536228471", "2363", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		digits := true
		for _, c := range b {
			if !isDigit(c) {
				digits = false
			}
		}
		if digits {
			luhn(b)
			verhoeff(b)
			validSSN(b)
			issuerLength(b)
			if len(b) > 7 {
				testCard(b)
			}
		}
		ibanChecksum(b)
		monthNameDate(s, len(s))
		if len(s) > 0 {
			dayBefore(s, len(s))
		}
	})
}

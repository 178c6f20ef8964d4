package pii

import (
	"fmt"
	"strings"
	"testing"

	"gatehouse/internal/inspect"
)

func newDetector(t testing.TB, opts Options) *Detector {
	t.Helper()
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// found renders findings as "type:matched text:confidence" for comparison.
func found(text string, fs []inspect.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s:%s:%s", f.Type, text[f.Start:f.End], f.Confidence))
	}
	return out
}

func TestScan(t *testing.T) {
	d := newDetector(t, Options{})
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"email", "write to Jane.Doe+crm@acme-corp.com.", []string{"email:Jane.Doe+crm@acme-corp.com:high"}},
		{"email_uppercase_tld", "JDOE@EXAMPLE.CO.UK", []string{"email:JDOE@EXAMPLE.CO.UK:high"}},
		{"email_in_json", `{"email":"bob_92@mail.example.org"}`, []string{"email:bob_92@mail.example.org:high"}},
		{"email_raw_json_escape", `"note":"see\nbob@example.com"`, []string{"email:bob@example.com:high"}},
		{"ssh_remote", "git clone git@github.com:org/repo.git", nil},
		{"retina_image", `<img src="icon@2x.png">`, nil},
		{"package_version", "npm i lodash@4.17.21 and react@18.2.0", nil},
		{"localhost", "name@localhost", nil},
		{"decorator", "@app.route('/x')\ndef f(): pass", nil},
		{"mention", "thanks @alice.smith for the fix", nil},
		{"url_userinfo", "https://deploy@git.example.com/repo", nil},
		{"visa", "card 4556 7375 8689 9855 exp 12/27", []string{"card:4556 7375 8689 9855:high"}},
		{"visa_test_number", "use 4111 1111 1111 1111 in staging", []string{"card:4111 1111 1111 1111:medium"}},
		{"amex_test", "amex 378282246310005", []string{"card:378282246310005:medium"}},
		{"amex_grouped", "amex 3782-822463-10005", []string{"card:3782-822463-10005:medium"}},
		{"mastercard_2series", "mc 2221000000000009", []string{"card:2221000000000009:medium"}},
		{"bad_luhn", "order 4556737586899856 shipped", nil},
		{"mixed_separators", "4556-7375 8689-9855", nil},
		{"ssn", "SSN: 536-22-8471", []string{"ssn:536-22-8471:high"}},
		{"ssn_bare_context", "social security number 536228471", []string{"ssn:536228471:medium"}},
		{"ssn_bare_no_context", "ref 536228471", nil},
		{"ssn_bad_area", "id 666-22-8471 and 912-22-8471 and 000-12-3456", nil},
		{"ssn_advertised", "078-05-1120 and 123-45-6789", nil},
		{"iban", "IBAN DE89 3704 0044 0532 0130 00 please", []string{"iban:DE89 3704 0044 0532 0130 00:high"}},
		{"iban_compact", "GB29NWBK60161331926819", []string{"iban:GB29NWBK60161331926819:high"}},
		{"iban_bad_checksum", "GB28NWBK60161331926819", nil},
		{"phone_intl", "call +44 20 7946 0958 today", []string{"phone:+44 20 7946 0958:high"}},
		{"phone_e164", `"phone":"+14155550132"`, []string{"phone:+14155550132:high"}},
		{"phone_national", "(415) 555-0132 or 212.555.0199", []string{"phone:(415) 555-0132:medium", "phone:212.555.0199:medium"}},
		{"phone_trunk", "+44 (0)20 7946 0958", []string{"phone:+44 (0)20 7946 0958:high"}},
		{"phone_bare_context", "mobile: 4155550132", []string{"phone:4155550132:medium"}},
		{"phone_bare_no_context", "order 4155550132", nil},
		{"phone_invalid", "(123) 456-7890", nil},
		{"date_not_phone", "2024-01-15 10:30:45", nil},
		{"ipv4", "client 203.0.113.42 connected", []string{"ip-address:203.0.113.42:low"}},
		{"ipv4_loopback", "listen 127.0.0.1:8080 and 0.0.0.0", nil},
		{"version_like", "v1.2.3.4 and version 10.0.0.1", nil},
		{"ipv6", "from 2001:db8:85a3::8a2e:370:7334.", []string{"ip-address:2001:db8:85a3::8a2e:370:7334:low"}},
		{"ipv6_loopback", "bind ::1 and std::vector and 10:30:00", nil},
		{"dob", "DOB: 1985-03-14", []string{"date-of-birth:1985-03-14:medium"}},
		{"dob_words", "She was born on March 3, 1985 in Ohio", []string{"date-of-birth:March 3, 1985:medium"}},
		{"dob_words_dmy", "date of birth 14 Mar 1985", []string{"date-of-birth:14 Mar 1985:medium"}},
		{"date_no_context", "released 1985-03-14", nil},
		{"nino", "NI number: QQ 12 34 56 C is invalid but AB 12 34 56 C is fine", []string{"national-id:AB 12 34 56 C:high"}},
		{"sin", "SIN 130 692 544", []string{"national-id:130 692 544:medium"}},
		{"sin_bad_luhn", "SIN 130 692 545", nil},
		{"aadhaar", "Aadhaar: 2345 6789 0124", []string{"national-id:2345 6789 0124:medium"}},
		{"aadhaar_bad_verhoeff", "Aadhaar: 2345 6789 0125", nil},
		{"uuid", "id 550e8400-e29b-41d4-a716-446655440000", nil},
		{"hash", "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := found(tt.text, d.Scan(tt.text, nil))
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Scan(%q)\n got %q\nwant %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestValidators(t *testing.T) {
	if !verhoeff([]byte("2363")) || verhoeff([]byte("2364")) {
		t.Error("verhoeff")
	}
	if !luhn([]byte("79927398713")) || luhn([]byte("79927398710")) {
		t.Error("luhn")
	}
	if !ibanChecksum([]byte("GB82WEST12345698765432")) || ibanChecksum([]byte("GB82WEST12345698765433")) {
		t.Error("iban")
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(Options{DefaultRegion: "XX"}); err == nil {
		t.Error("bad region accepted")
	}
	if _, err := New(Options{Types: []string{"passport"}}); err == nil {
		t.Error("unknown type accepted")
	}
	d := newDetector(t, Options{Types: []string{TypeEmail}})
	text := "bob@example.com +44 20 7946 0958"
	if got := found(text, d.Scan(text, nil)); len(got) != 1 || got[0] != "email:bob@example.com:high" {
		t.Errorf("only email enabled: got %q", got)
	}
	gb := newDetector(t, Options{DefaultRegion: "gb"})
	text = "ring 020 7946 0958"
	if got := found(text, gb.Scan(text, nil)); len(got) != 1 {
		t.Errorf("GB national number: got %q", got)
	}
}

func TestEmailSupersedesNumber(t *testing.T) {
	d := newDetector(t, Options{})
	text := "sms 4155550132@vtext.com"
	got := found(text, d.Scan(text, nil))
	if len(got) != 1 || got[0] != "email:4155550132@vtext.com:high" {
		t.Errorf("got %q", got)
	}
}

func TestScanAppends(t *testing.T) {
	d := newDetector(t, Options{})
	prior := []inspect.Finding{{Category: inspect.CategorySecret, Type: "x", Start: 0, End: 50}}
	out := d.Scan("sms 4155550132@vtext.com", prior)
	if len(out) != 2 || out[0] != prior[0] {
		t.Errorf("caller's findings changed: %+v", out)
	}
}

func TestNoAllocsWithoutFindings(t *testing.T) {
	d := newDetector(t, Options{})
	text := strings.Repeat(`{"id":"550e8400-e29b-41d4-a716-446655440000","status":"ok","count":42,"at":"2024-01-15T10:30:00Z","v":"1.2.3","remote":"git@github.com:org/repo.git","icon":"icon@2x.png","log":"10:22:31.123 up at 10:30:00, mac aa:bb:cc:dd:ee:ff"} `, 20)
	dst := make([]inspect.Finding, 0, 4)
	if fs := d.Scan(text, dst); len(fs) != 0 {
		t.Fatalf("test text has findings: %q", found(text, fs))
	}
	if n := testing.AllocsPerRun(100, func() { dst = d.Scan(text, dst[:0]) }); n != 0 {
		t.Errorf("Scan allocated %v times on text without personal data", n)
	}
}

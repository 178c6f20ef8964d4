// Package pii finds personal data in text: email addresses, phone numbers,
// payment card numbers, US social security numbers, IBANs, a few national
// identity numbers, IP addresses and dates of birth.
//
// The detector is on the gateway's hot path, so it does not run regular
// expressions over the text. One linear pass over the bytes finds
// candidates (runs of digits, '@', upper-case words, ':' for IPv6) and each
// candidate is then validated by the rules of its kind: Luhn and issuer
// ranges for cards, area/group/serial rules for SSNs, mod-97 for IBANs,
// libphonenumber metadata for phones. A scan that finds nothing allocates
// nothing.
//
// Decisions worth knowing when reading findings:
//   - Email: `git@github.com:org/repo` (an ssh user, not a person), URL user
//     info (`https://user@host`), image names such as `icon@2x.png` and
//     package versions such as `foo@1.2.3` are not emails. The last label
//     of the domain must be a real (ICANN) top-level domain, so addresses at
//     `localhost`, `.local` or `.internal` hosts are not reported either.
//   - Card: documented test numbers (4111 1111 1111 1111 and the like) are
//     reported as cards with Medium confidence: they are valid card formats
//     and a DLP tool must catch them, but they are rarely real data.
//   - SSN: dashed numbers are High; bare or space-separated nine digits
//     only next to a context word ("ssn", "social security"), Medium.
//   - IP address: Low confidence; loopback, unspecified and 255.x.x.x
//     (netmask) addresses are not reported, since they identify no host,
//     and neither are dotted numbers that read as versions ("v1.2.3.4",
//     "version 1.2.3.4") or section numbers.
//   - National ids: the UK National Insurance number (format and prefix
//     rules; High with a context word, else Medium); the Canadian SIN
//     (Luhn) and the Indian Aadhaar number (Verhoeff) only next to their
//     context words, Medium.
//   - Date of birth: a date only next to "dob", "date of birth", "born",
//     "birthday" or "birth date", Medium.
package pii

import (
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"gatehouse/internal/inspect"
)

// Finding types reported by the detector.
const (
	TypeEmail       = "email"
	TypePhone       = "phone"
	TypeCard        = "card"
	TypeSSN         = "ssn"
	TypeIBAN        = "iban"
	TypeNationalID  = "national-id"
	TypeIPAddress   = "ip-address"
	TypeDateOfBirth = "date-of-birth"
)

// Types lists every finding type, in a stable order.
var Types = []string{TypeEmail, TypePhone, TypeCard, TypeSSN, TypeIBAN, TypeNationalID, TypeIPAddress, TypeDateOfBirth}

// typeSet is a bit set of enabled finding types, indexed like Types.
type typeSet uint16

const (
	bitEmail typeSet = 1 << iota
	bitPhone
	bitCard
	bitSSN
	bitIBAN
	bitNationalID
	bitIPAddress
	bitDateOfBirth
	allTypes = bitEmail | bitPhone | bitCard | bitSSN | bitIBAN | bitNationalID | bitIPAddress | bitDateOfBirth
)

func typeBit(name string) (typeSet, bool) {
	for i, t := range Types {
		if t == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// Options configure a Detector. The zero value enables every type with US
// as the default phone region.
type Options struct {
	// DefaultRegion is the ISO 3166 region used to read phone numbers
	// written without a country code, e.g. "(415) 555-0132". Default "US".
	DefaultRegion string
	// Types lists the finding types to report; empty means all.
	Types []string
}

// Detector finds personal data. It is immutable after New and safe for
// concurrent use.
type Detector struct {
	enabled  typeSet
	region   string
	ndd      string // national (trunk) prefix of region, e.g. "1" for US, "0" for GB
	regionCC int32
}

// New builds a detector.
func New(opts Options) (*Detector, error) {
	d := &Detector{region: strings.ToUpper(strings.TrimSpace(opts.DefaultRegion))}
	if d.region == "" {
		d.region = "US"
	}
	if !phonenumbers.GetSupportedRegions()[d.region] {
		return nil, fmt.Errorf("pii: default region %q: not a region libphonenumber knows", opts.DefaultRegion)
	}
	d.regionCC = int32(phonenumbers.GetCountryCodeForRegion(d.region))
	d.ndd = phonenumbers.GetNddPrefixForRegion(d.region, true)
	for _, t := range opts.Types {
		b, ok := typeBit(t)
		if !ok {
			return nil, fmt.Errorf("pii: type %q: want one of %s", t, strings.Join(Types, ", "))
		}
		d.enabled |= b
	}
	if d.enabled == 0 {
		d.enabled = allTypes
	}
	return d, nil
}

// Name is "pii".
func (d *Detector) Name() string { return "pii" }

// Scan appends the personal data found in text to dst, in order of
// position. It allocates only to grow dst, to validate phone-shaped
// candidates and to look up the top-level domain of an address-shaped one.
func (d *Detector) Scan(text string, dst []inspect.Finding) []inspect.Finding {
	s := scanner{d: d, text: text, dst: dst, base: len(dst)}
	s.scan()
	return s.dst
}

var _ inspect.Detector = (*Detector)(nil)

// Package piigen generates synthetic personal data and the labelled
// corpus the pii detector is evaluated on (testdata/inspect/pii.jsonl).
// Every value is random and valid by its own rules (Luhn, mod-97, SSA
// rules, libphonenumber metadata); names and domains are made up or
// reserved. Nothing here comes from real people.
package piigen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Gen draws values from a seeded source, so the corpus is reproducible.
type Gen struct{ r *rand.Rand }

// New returns a generator seeded with seed.
func New(seed uint64) *Gen { return &Gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

func (g *Gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g *Gen) intn(n int) int           { return g.r.IntN(n) }

func (g *Gen) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

var (
	firstNames = []string{"dana", "marek", "priya", "tomas", "aiko", "lucia", "omar", "greta", "kwame", "ines", "rafael", "yuki", "soren", "leila", "nikolai", "amara", "felix", "hana", "diego", "freya"}
	lastNames  = []string{"okafor", "lindqvist", "brennan", "castellano", "nakamura", "whitfield", "haddad", "novak", "mbeki", "fontaine", "kowalski", "ferreira", "oyelaran", "tanaka", "marsh", "delacroix", "varga", "holloway", "quintero", "ashby"}
	domains    = []string{"example.com", "example.org", "example.net", "acme-corp.com", "mail.globex.io", "initech.de", "umbrella-health.org", "contoso.com", "fabrikam.fr", "northwind.com.au", "tailspin.co.uk", "wayne-ent.net", "hooli.dev", "piedpiper.app", "stark.industries", "cyberdyne.ai", "vandelay.nl", "soylent.es", "gringotts.bank", "krusty-krab.us"}
)

// Name is a made-up full name.
func (g *Gen) Name() string {
	f, l := g.pick(firstNames...), g.pick(lastNames...)
	return strings.ToUpper(f[:1]) + f[1:] + " " + strings.ToUpper(l[:1]) + l[1:]
}

// Email is a random address at a made-up or reserved domain.
func (g *Gen) Email() string {
	f, l := g.pick(firstNames...), g.pick(lastNames...)
	var local string
	switch g.intn(7) {
	case 0:
		local = f + "." + l
	case 1:
		local = f[:1] + l
	case 2:
		local = f + "_" + l + strconv.Itoa(g.intn(99))
	case 3:
		local = f + "+" + g.pick("crm", "billing", "news", "test")
	case 4:
		local = strings.ToUpper(f[:1]) + f[1:] + "." + strings.ToUpper(l[:1]) + l[1:]
	case 5:
		local = l + "-" + f
	default:
		local = f + strconv.Itoa(1950+g.intn(60))
	}
	return local + "@" + g.pick(domains...)
}

// Phone is a random valid number and whether it is written in
// international form. US numbers use the fictional 555-01XX block.
func (g *Gen) Phone() (string, bool) {
	if g.intn(2) == 0 {
		area := g.pick("415", "212", "312", "617", "206", "303", "512", "646", "718", "404", "213", "702")
		line := fmt.Sprintf("01%02d", g.intn(100))
		switch g.intn(8) {
		case 0:
			return "(" + area + ") 555-" + line, false
		case 1:
			return area + "-555-" + line, false
		case 2:
			return area + ".555." + line, false
		case 3:
			return "+1 " + area + "-555-" + line, true
		case 4:
			return "+1" + area + "555" + line, true
		case 5:
			return "+1 (" + area + ") 555-" + line, true
		case 6:
			return "1-" + area + "-555-" + line, false
		default:
			return area + " 555 " + line, false
		}
	}
	region := g.pick("GB", "DE", "FR", "IN", "BR", "JP", "AU", "ES", "IT", "NL", "MX", "ZA", "SG", "SE", "PL")
	typ := phonenumbers.MOBILE
	if g.intn(2) == 0 {
		typ = phonenumbers.FIXED_LINE
	}
	ex := phonenumbers.GetExampleNumberForType(region, typ)
	nsn := phonenumbers.GetNationalSignificantNumber(ex)
	for range 100 {
		cand := nsn[:len(nsn)-4] + g.digits(4)
		num, err := phonenumbers.Parse("+"+strconv.Itoa(int(ex.GetCountryCode()))+cand, "")
		if err != nil || !phonenumbers.IsValidNumber(num) {
			continue
		}
		if g.intn(3) == 0 {
			return phonenumbers.Format(num, phonenumbers.E164), true
		}
		return phonenumbers.Format(num, phonenumbers.INTERNATIONAL), true
	}
	return phonenumbers.Format(ex, phonenumbers.INTERNATIONAL), true
}

// luhnDigit is the check digit that makes body+digit pass Luhn.
func luhnDigit(body string) byte {
	sum := 0
	for i := len(body) - 1; i >= 0; i-- {
		v := int(body[i] - '0')
		if (len(body)-1-i)%2 == 0 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return byte('0' + (10-sum%10)%10)
}

type brand struct {
	name    string
	prefix  []string
	lengths []int
}

var brands = []brand{
	{"Visa", []string{"4"}, []int{16, 16, 16, 13, 19}},
	{"Mastercard", []string{"51", "52", "53", "54", "55", "2221", "2300", "2720", "2500"}, []int{16}},
	{"American Express", []string{"34", "37"}, []int{15}},
	{"Discover", []string{"6011", "65", "644", "649"}, []int{16}},
	{"JCB", []string{"3528", "3540", "3589"}, []int{16}},
	{"Diners Club", []string{"36", "300", "305", "38"}, []int{14}},
	{"UnionPay", []string{"62"}, []int{16, 19}},
	{"Maestro", []string{"6759", "5018", "6304"}, []int{16, 12, 19}},
}

// Card is a random valid card number, its brand and how it is printed.
func (g *Gen) Card() (number, brandName string) {
	b := brands[g.intn(len(brands))]
	p := b.prefix[g.intn(len(b.prefix))]
	n := b.lengths[g.intn(len(b.lengths))]
	body := p + g.digits(n-1-len(p))
	d := body + string(luhnDigit(body))
	return g.formatCard(d), b.name
}

// InvalidCard is a number with an issuer prefix and length that fails Luhn.
func (g *Gen) InvalidCard() string {
	num, _ := g.Card()
	d := strings.NewReplacer(" ", "", "-", "").Replace(num)
	last := (int(d[len(d)-1]-'0') + 1 + g.intn(9)) % 10
	return g.formatCard(d[:len(d)-1] + strconv.Itoa(last))
}

func (g *Gen) formatCard(d string) string {
	sep := g.pick("", " ", "-", " ")
	if sep == "" {
		return d
	}
	var groups []string
	if len(d) == 15 {
		groups = []string{d[:4], d[4:10], d[10:]}
	} else if len(d) == 14 && g.intn(2) == 0 {
		groups = []string{d[:4], d[4:10], d[10:]}
	} else {
		for i := 0; i < len(d); i += 4 {
			groups = append(groups, d[i:min(i+4, len(d))])
		}
	}
	return strings.Join(groups, sep)
}

// TestCards are documented test numbers (networks' and payment providers'
// published examples).
var TestCards = []string{"4111 1111 1111 1111", "4242 4242 4242 4242", "5555 5555 5555 4444", "378282246310005", "4012888888881881", "5105 1051 0510 5100", "6011 1111 1111 1117", "3530 1113 3330 0000", "4000-0566-5566-5556", "371449635398431"}

// SSN is a random number valid by the SSA's rules, "AAA-GG-SSSS".
func (g *Gen) SSN() string {
	for {
		area := 1 + g.intn(899)
		if area == 666 {
			continue
		}
		s := fmt.Sprintf("%03d-%02d-%04d", area, 1+g.intn(99), 1+g.intn(9999))
		if s == "078-05-1120" || s == "123-45-6789" {
			continue
		}
		return s
	}
}

// InvalidSSN is SSN-shaped but breaks a rule, and says which.
func (g *Gen) InvalidSSN() (string, string) {
	switch g.intn(6) {
	case 0:
		return fmt.Sprintf("000-%02d-%04d", 1+g.intn(99), 1+g.intn(9999)), "area 000"
	case 1:
		return fmt.Sprintf("666-%02d-%04d", 1+g.intn(99), 1+g.intn(9999)), "area 666"
	case 2:
		return fmt.Sprintf("%03d-%02d-%04d", 900+g.intn(100), 1+g.intn(99), 1+g.intn(9999)), "area 900-999 (ITIN range)"
	case 3:
		return fmt.Sprintf("%03d-00-%04d", 1+g.intn(665), 1+g.intn(9999)), "group 00"
	case 4:
		return fmt.Sprintf("%03d-%02d-0000", 1+g.intn(665), 1+g.intn(99)), "serial 0000"
	}
	return g.pick("078-05-1120", "123-45-6789", "219-09-9999"), "advertised or placeholder number"
}

type ibanFormat struct {
	country string
	letters int // leading bank-code letters
	digits  int
}

var ibanFormats = []ibanFormat{
	{"DE", 0, 18}, {"GB", 4, 14}, {"FR", 0, 23}, {"ES", 0, 20}, {"IT", 1, 22}, {"NL", 4, 10},
	{"BE", 0, 12}, {"CH", 0, 17}, {"AT", 0, 16}, {"PL", 0, 24}, {"SE", 0, 20}, {"IE", 4, 14},
	{"PT", 0, 21}, {"NO", 0, 11}, {"DK", 0, 14}, {"FI", 0, 14}, {"LU", 0, 16},
}

func mod97(s string) int {
	r := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A'+10)) % 97
		}
	}
	return r
}

// IBAN is a random IBAN with correct check digits, compact or in groups
// of four.
func (g *Gen) IBAN() string {
	f := ibanFormats[g.intn(len(ibanFormats))]
	var bban strings.Builder
	for range f.letters {
		bban.WriteByte(byte('A' + g.intn(26)))
	}
	bban.WriteString(g.digits(f.digits))
	check := 98 - mod97(bban.String()+f.country+"00")
	return g.formatIBAN(fmt.Sprintf("%s%02d%s", f.country, check, bban.String()))
}

// BadIBAN is IBAN-shaped with a wrong checksum.
func (g *Gen) BadIBAN() string {
	s := strings.ReplaceAll(g.IBAN(), " ", "")
	b := []byte(s)
	i := 4 + g.intn(len(b)-4)
	for b[i] < '0' || b[i] > '9' {
		i = 4 + g.intn(len(b)-4)
	}
	b[i] = byte('0' + (int(b[i]-'0')+1+g.intn(8))%10)
	if mod97(string(b[4:])+string(b[:4])) == 1 {
		b[i] = byte('0' + (int(b[i]-'0')+1)%10)
	}
	return g.formatIBAN(string(b))
}

func (g *Gen) formatIBAN(s string) string {
	if g.intn(2) == 0 {
		return s
	}
	var parts []string
	for i := 0; i < len(s); i += 4 {
		parts = append(parts, s[i:min(i+4, len(s))])
	}
	return strings.Join(parts, " ")
}

// NINO is a UK National Insurance number with an allocated prefix.
func (g *Gen) NINO() string {
	first := "ABCEGHJKLMNPRSTWXYZ"
	second := "ABCEGHJKLMNPRSTWXYZ"
	for {
		p := string([]byte{first[g.intn(len(first))], second[g.intn(len(second))]})
		switch p {
		case "BG", "GB", "KN", "NK", "NT", "TN", "ZZ":
			continue
		}
		d := g.digits(6)
		suffix := string(rune('A' + g.intn(4)))
		if g.intn(2) == 0 {
			return p + " " + d[:2] + " " + d[2:4] + " " + d[4:] + " " + suffix
		}
		return p + d + suffix
	}
}

// SIN is a Canadian social insurance number (Luhn), "123 456 789".
func (g *Gen) SIN() string {
	body := strconv.Itoa(1+g.intn(7)) + g.digits(7)
	d := body + string(luhnDigit(body))
	return d[:3] + " " + d[3:6] + " " + d[6:]
}

var (
	verD   = [10][10]int{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5}, {2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7}, {4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1}, {6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3}, {8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}}
	verP   = [8][10]int{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4}, {5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7}, {9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1}, {2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8}}
	verInv = [10]int{0, 4, 3, 2, 1, 5, 6, 7, 8, 9}
)

// Aadhaar is an Indian Aadhaar number (Verhoeff), "2345 6789 0123".
func (g *Gen) Aadhaar() string {
	body := strconv.Itoa(2+g.intn(8)) + g.digits(10)
	c := 0
	for i := 0; i < len(body); i++ {
		c = verD[c][verP[(i+1)%8][body[len(body)-1-i]-'0']]
	}
	d := body + strconv.Itoa(verInv[c])
	return d[:4] + " " + d[4:8] + " " + d[8:]
}

// IPv4 is a random public-looking address (documentation and private
// ranges included, loopback excluded).
func (g *Gen) IPv4() string {
	switch g.intn(4) {
	case 0:
		return fmt.Sprintf("10.%d.%d.%d", g.intn(256), g.intn(256), 1+g.intn(254))
	case 1:
		return fmt.Sprintf("192.168.%d.%d", g.intn(256), 1+g.intn(254))
	case 2:
		return fmt.Sprintf("203.0.113.%d", 1+g.intn(254))
	}
	return fmt.Sprintf("%d.%d.%d.%d", 11+g.intn(180), g.intn(256), g.intn(256), 1+g.intn(254))
}

// IPv6 is a random global unicast or documentation address.
func (g *Gen) IPv6() string {
	if g.intn(2) == 0 {
		return fmt.Sprintf("2001:db8:%x:%x::%x", g.intn(0xffff), g.intn(0xffff), 1+g.intn(0xfff))
	}
	return fmt.Sprintf("2a0%x:%x:%x:%x:%x:%x:%x:%x", g.intn(16), g.intn(0xffff), g.intn(0xffff), g.intn(0xffff), g.intn(0xffff), g.intn(0xffff), g.intn(0xffff), 1+g.intn(0xffff))
}

var monthNames = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}

// Date is a random date between 1940 and 2005 in one of the usual forms.
func (g *Gen) Date() string {
	y, m, d := 1940+g.intn(66), 1+g.intn(12), 1+g.intn(28)
	switch g.intn(5) {
	case 0:
		return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
	case 1:
		return fmt.Sprintf("%02d/%02d/%04d", m, d, y)
	case 2:
		return fmt.Sprintf("%02d.%02d.%04d", d, m, y)
	case 3:
		return fmt.Sprintf("%s %d, %d", monthNames[m-1], d, y)
	}
	return fmt.Sprintf("%d %s %d", d, monthNames[m-1][:3], y)
}

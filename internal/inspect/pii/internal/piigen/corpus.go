package piigen

import (
	"fmt"
	"strings"

	"gatehouse/internal/inspect"
)

// item is one value placed in a text: the text shown and its label (empty
// type for a hard negative).
type item struct {
	text   string
	typ    string
	source string
}

func label(typ, match string) inspect.Expected {
	return inspect.Expected{Category: inspect.CategoryPII, Type: typ, Match: match}
}

// filler values that carry no personal data.
func (g *Gen) uuid() string {
	h := fmt.Sprintf("%016x%016x", g.r.Uint64(), g.r.Uint64())
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

func (g *Gen) timestamp() string {
	return fmt.Sprintf("2024-%02d-%02dT%02d:%02d:%02dZ", 1+g.intn(12), 1+g.intn(28), g.intn(24), g.intn(60), g.intn(60))
}

func (g *Gen) hexHash(n int) string {
	var b strings.Builder
	for b.Len() < n {
		fmt.Fprintf(&b, "%016x", g.r.Uint64())
	}
	return b.String()[:n]
}

// field names a value by its type in JSON keys, CSV headers and prose.
func field(typ string) (key, words string) {
	switch typ {
	case "email":
		return "email", "email address"
	case "phone":
		return "phone", "phone number"
	case "card":
		return "card_number", "card number"
	case "ssn":
		return "ssn", "SSN"
	case "iban":
		return "iban", "IBAN"
	case "national-id":
		return "national_id", "ID number"
	case "ip-address":
		return "client_ip", "IP address"
	}
	return "value", "number"
}

// embed places v in one of the kinds of text the gateway sees. key and
// words name the value's field (for negatives: what the value really is).
func (g *Gen) embed(v, key, words string) (text, kind string) {
	name := g.Name()
	switch g.intn(7) {
	case 0:
		return fmt.Sprintf(`{"id":"cnt_%s","name":%q,%q:%q,"owner":"usr_%d","updated_at":%q,"tags":["lead","q%d"]}`,
			g.hexHash(10), name, key, v, 1000+g.intn(9000), g.timestamp(), 1+g.intn(4)), "JSON tool result"
	case 1:
		return fmt.Sprintf("Call with %s on %s: asked us to update the %s on file to %s. Follow up after the %d-day grace period.",
			name, g.pick("Monday", "Tuesday", "Thursday"), words, v, 7+g.intn(23)), "CRM note"
	case 2:
		return fmt.Sprintf("Ticket #%d (priority P%d)\nFrom: %s\nSubject: payment failed\n\nHi, the %s I gave you is %s. Can you check why the charge of $%d.%02d failed?",
			40000+g.intn(50000), 1+g.intn(4), name, words, v, 10+g.intn(900), g.intn(100)), "support ticket"
	case 3:
		return fmt.Sprintf("id,name,%s,created_at,plan\n%d,%s,%s,%s,%s", key, 100+g.intn(9000), name, v, g.timestamp(), g.pick("free", "pro", "team")), "CSV row"
	case 4:
		return fmt.Sprintf("%s INFO billing.sync request_id=%s %s=%s status=ok latency_ms=%d", g.timestamp(), g.uuid(), key, v, 3+g.intn(400)), "log line"
	case 5:
		return fmt.Sprintf(`{"result":{"content":[{"type":"text","text":"Found 1 record for %s: %s %s (account created %s)."}],"isError":false}}`, name, words, v, g.timestamp()[:10]), "MCP tool result"
	}
	return fmt.Sprintf("Hello team,\n\nFor the migration please use %s as the %s for %s. The batch runs at %02d:%02d UTC, %d records so far.\n\nThanks", v, words, name, g.intn(24), g.intn(60), 100+g.intn(5000)), "email body"
}

// Corpus builds the labelled samples. Positives and hard negatives of the
// five main types come in equal numbers; national ids, IP addresses and
// dates of birth get a smaller set.
func Corpus(seed uint64) []inspect.Sample {
	g := New(seed)
	var out []inspect.Sample
	add := func(prefix string, n int, sample func() inspect.Sample) {
		for i := range n {
			s := sample()
			s.ID = fmt.Sprintf("%s-%03d", prefix, i+1)
			out = append(out, s)
		}
	}
	positive := func(typ string, value func() (string, string)) func() inspect.Sample {
		return func() inspect.Sample {
			v, src := value()
			key, words := field(typ)
			text, kind := g.embed(v, key, words)
			return inspect.Sample{Text: text, Expect: []inspect.Expected{label(typ, v)}, Source: "synthetic (piigen): " + src + ", in a " + kind}
		}
	}
	negative := func(value func() (v, key, words, src string, labels []inspect.Expected)) func() inspect.Sample {
		return func() inspect.Sample {
			v, key, words, src, labels := value()
			text, kind := g.embed(v, key, words)
			return inspect.Sample{Text: text, Expect: labels, Source: "hard negative (piigen): " + src + ", in a " + kind}
		}
	}

	add("email-pos", 70, positive("email", func() (string, string) { return g.Email(), "random address at a made-up domain" }))
	add("email-neg", 70, negative(g.emailNegative))
	add("phone-pos", 70, positive("phone", func() (string, string) {
		v, intl := g.Phone()
		if intl {
			return v, "valid number in international format, random"
		}
		return v, "valid US number in national format, fictional 555-01XX block"
	}))
	add("phone-neg", 70, negative(g.phoneNegative))
	add("card-pos", 70, positive("card", func() (string, string) {
		if g.intn(7) == 0 {
			return g.pick(TestCards...), "documented test card number"
		}
		v, b := g.Card()
		return v, "valid " + b + " number (Luhn, issuer range), random"
	}))
	add("card-neg", 70, negative(g.cardNegative))
	add("ssn-pos", 70, positive("ssn", func() (string, string) {
		v := g.SSN()
		if g.intn(5) == 0 {
			return strings.ReplaceAll(v, "-", ""), "valid SSN without dashes, random, under an ssn key"
		}
		return v, "valid SSN (SSA rules), random"
	}))
	add("ssn-neg", 70, negative(g.ssnNegative))
	add("iban-pos", 70, positive("iban", func() (string, string) { return g.IBAN(), "IBAN with correct mod-97 check digits, random" }))
	add("iban-neg", 70, negative(g.ibanNegative))

	add("mixed", 30, func() inspect.Sample {
		email, iban := g.Email(), g.IBAN()
		phone, _ := g.Phone()
		card, _ := g.Card()
		name := g.Name()
		var text string
		var exp []inspect.Expected
		switch g.intn(3) {
		case 0:
			text = fmt.Sprintf(`{"contacts":[{"id":%q,"name":%q,"email":%q,"phone":%q,"created":%q,"score":%d.%d}],"next_cursor":%q}`,
				g.uuid(), name, email, phone, g.timestamp(), g.intn(100), g.intn(10), g.hexHash(24))
			exp = []inspect.Expected{label("email", email), label("phone", phone)}
		case 1:
			text = fmt.Sprintf("Refund for %s: card %s, then wire to IBAN %s. Confirmation sent to %s (order #%d, ref %s).",
				name, card, iban, email, 100000+g.intn(900000), g.uuid())
			exp = []inspect.Expected{label("card", card), label("iban", iban), label("email", email)}
		default:
			ssn := g.SSN()
			text = fmt.Sprintf("name,email,phone,ssn,updated\n%q,%s,%q,%s,%s", name, email, phone, ssn, g.timestamp())
			exp = []inspect.Expected{label("email", email), label("phone", phone), label("ssn", ssn)}
		}
		return inspect.Sample{Text: text, Expect: exp, Source: "synthetic (piigen): several random values in one record", Note: "mixed"}
	})
	add("nid-pos", 24, func() inspect.Sample {
		var v, key, ctx, src string
		switch g.intn(3) {
		case 0:
			v, key, ctx, src = g.NINO(), "ni_number", g.pick("National Insurance number", "NI number", "NINO"), "UK National Insurance number, allocated prefix, random"
		case 1:
			v, key, ctx, src = g.SIN(), "sin", g.pick("SIN", "social insurance number"), "Canadian SIN (Luhn), random"
		default:
			v, key, ctx, src = g.Aadhaar(), "aadhaar_number", g.pick("Aadhaar", "Aadhaar no.", "UIDAI number"), "Aadhaar number (Verhoeff), random"
		}
		text, kind := g.embed(v, key, ctx)
		return inspect.Sample{Text: text, Expect: []inspect.Expected{label("national-id", v)}, Source: "synthetic (piigen): " + src + ", in a " + kind}
	})
	add("nid-neg", 12, negative(func() (string, string, string, string, []inspect.Expected) {
		switch g.intn(3) {
		case 0:
			return g.pick("QQ", "DF", "BG", "GB") + g.digits(6) + "A", "ni_number", "NI number", "NINO-shaped with an unallocated prefix", nil
		case 1:
			s := g.SIN()
			return s[:len(s)-1] + string(rune('0'+(s[len(s)-1]-'0'+1)%10)), "sin", "SIN", "SIN-shaped, fails Luhn", nil
		}
		return g.digits(3) + " " + g.digits(3) + " " + g.digits(3), "batch", "batch code", "nine digits with no national-id context", nil
	}))
	add("ip-pos", 24, func() inspect.Sample {
		v := g.IPv4()
		if g.intn(3) == 0 {
			v = g.IPv6()
		}
		text, kind := g.embed(v, "client_ip", "IP address")
		return inspect.Sample{Text: text, Expect: []inspect.Expected{label("ip-address", v)}, Source: "synthetic (piigen): random IP address, in a " + kind}
	})
	add("ip-neg", 16, negative(func() (string, string, string, string, []inspect.Expected) {
		switch g.intn(5) {
		case 0:
			return fmt.Sprintf("v%d.%d.%d.%d", 1+g.intn(9), g.intn(20), g.intn(20), g.intn(200)), "version", "release", "version string", nil
		case 1:
			return g.pick("127.0.0.1", "0.0.0.0", "::1", "255.255.255.0"), "bind", "listen address", "loopback, unspecified or netmask", nil
		case 2:
			return fmt.Sprintf("%02d:%02d:%02d", g.intn(24), g.intn(60), g.intn(60)), "time", "time", "time of day", nil
		case 3:
			return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", g.intn(256), g.intn(256), g.intn(256), g.intn(256), g.intn(256), g.intn(256)), "mac", "MAC address", "MAC address", nil
		}
		return fmt.Sprintf("Chrome/%d.0.%d.%d", 100+g.intn(30), 5000+g.intn(1000), g.intn(200)), "user_agent", "browser", "user-agent version", nil
	}))
	add("dob-pos", 20, func() inspect.Sample {
		v := g.Date()
		name := g.Name()
		var text string
		switch g.intn(4) {
		case 0:
			text = fmt.Sprintf(`{"patient":{"name":%q,"dob":%q,"mrn":"MRN-%d"}}`, name, v, 100000+g.intn(900000))
		case 1:
			text = fmt.Sprintf("Patient %s, date of birth %s, seen for follow-up.", name, v)
		case 2:
			text = fmt.Sprintf("%s was born on %s and joined in %d.", name, v, 2010+g.intn(14))
		default:
			text = fmt.Sprintf("Verification: name=%s; DOB: %s; plan=gold", name, v)
		}
		return inspect.Sample{Text: text, Expect: []inspect.Expected{label("date-of-birth", v)}, Source: "synthetic (piigen): random date next to a date-of-birth context word"}
	})
	add("dob-neg", 12, func() inspect.Sample {
		v := g.Date()
		text := g.pick(
			fmt.Sprintf("Invoice due %s, amount $%d.00", v, 10+g.intn(900)),
			fmt.Sprintf("Release 3.%d shipped on %s with %d fixes.", g.intn(20), v, g.intn(50)),
			fmt.Sprintf(`{"created":%q,"status":"closed"}`, v),
		)
		return inspect.Sample{Text: text, Source: "hard negative (piigen): a date with no date-of-birth context"}
	})
	return out
}

// Hard negatives. Each returns the value, the key and words the text uses
// for it, a description, and labels for any real personal data it holds
// (a card number among phone negatives is still a card).

func (g *Gen) emailNegative() (string, string, string, string, []inspect.Expected) {
	user := g.pick(firstNames...)
	switch g.intn(14) {
	case 0:
		return fmt.Sprintf("git@github.com:%s/%s.git", g.pick("acme", "globex", "initech"), g.pick("api", "web", "infra")), "repo", "remote", "scp-style ssh remote", nil
	case 1:
		return fmt.Sprintf("%s@%dx.%s", g.pick("icon", "logo", "avatar", "hero"), 2+g.intn(2), g.pick("png", "webp", "jpg")), "asset", "image", "retina image file name", nil
	case 2:
		return fmt.Sprintf("%s@%d.%d.%d", g.pick("lodash", "react", "express", "left-pad", "@types/node"), g.intn(20), g.intn(30), g.intn(40)), "package", "package", "npm package version", nil
	case 3:
		return user + "@localhost", "user", "local account", "user at localhost", nil
	case 4:
		return "@" + g.pick("app.route('/health')", "pytest.fixture", "dataclass", "property", "functools.lru_cache(maxsize=128)"), "decorator", "decorator", "Python decorator", nil
	case 5:
		return "@" + user + "." + g.pick(lastNames...), "mention", "mention", "@mention", nil
	case 6:
		return "@Override", "annotation", "annotation", "Java annotation", nil
	case 7:
		return fmt.Sprintf("https://medium.com/@%s/%s-%s", user, g.pick("scaling", "notes", "why"), g.hexHash(8)), "url", "link", "URL with @handle path", nil
	case 8:
		return fmt.Sprintf("nginx@sha256:%s", g.hexHash(64)), "image", "image", "container image digest", nil
	case 9:
		return fmt.Sprintf("golang.org/x/net@v0.%d.0", g.intn(70)), "module", "module", "Go module version", nil
	case 10:
		return "@media (max-width: 600px)", "css", "rule", "CSS at-rule", nil
	case 11:
		return user + "@" + g.pick("build-server", "db01", "prod"), "login", "login", "user@host without a domain", nil
	case 12:
		return fmt.Sprintf("y = X@W.%s + b", g.pick("T", "transpose()", "shape")), "expr", "expression", "numpy matrix product", nil
	}
	return fmt.Sprintf("https://%s@git.example.com/%s.git", g.pick("deploy", "ci-bot", "oauth2"), g.pick("api", "web")), "remote", "remote", "URL user info", nil
}

func (g *Gen) phoneNegative() (string, string, string, string, []inspect.Expected) {
	switch g.intn(21) {
	case 16:
		return fmt.Sprintf("%dx%d", 640+g.intn(3000), 480+g.intn(2000)), "resolution", "resolution", "screen resolution", nil
	case 17:
		return fmt.Sprintf("%d %d %d", 1000+g.intn(9000), 1000+g.intn(9000), 1000+g.intn(9000)), "ports", "ports", "list of port numbers", nil
	case 18:
		return fmt.Sprintf("%d.%d.%d-%d", g.intn(5), g.intn(30), g.intn(30), 1000+g.intn(9000)), "version", "version", "semver with build number", nil
	case 19:
		v, b := g.Card()
		return v, "payment", b + " card", "a card number, not a phone", []inspect.Expected{label("card", v)}
	case 20:
		return fmt.Sprintf("%02d:%02d:%02d.%03d", g.intn(24), g.intn(60), g.intn(60), g.intn(1000)), "elapsed", "elapsed time", "duration with milliseconds", nil
	case 0:
		return g.timestamp()[:10], "date", "date", "ISO date", nil
	case 1:
		return fmt.Sprintf("%02d:%02d:%02d", g.intn(24), g.intn(60), g.intn(60)), "time", "time", "time of day", nil
	case 2:
		return fmt.Sprintf("%d.%d.%d", g.intn(5), g.intn(40), g.intn(300)), "version", "version", "version string", nil
	case 3:
		return fmt.Sprintf("#%d", 1000000000+g.intn(900000000)), "order", "order number", "order number", nil
	case 4:
		return fmt.Sprintf("%.4f, %.4f", 20+g.r.Float64()*30, -70-g.r.Float64()*50), "location", "coordinates", "coordinates", nil
	case 5:
		return fmt.Sprintf("$%d,%03d,%03d.%02d", 1+g.intn(9), g.intn(1000), g.intn(1000), g.intn(100)), "amount", "amount", "price", nil
	case 6:
		return fmt.Sprintf("%d %03d %03d", 1+g.intn(9), g.intn(1000), g.intn(1000)), "population", "population", "number with thousands separators", nil
	case 7:
		return "978-" + g.digits(1) + "-" + g.digits(3) + "-" + g.digits(5) + "-" + g.digits(1), "isbn", "ISBN", "ISBN-13", nil
	case 8:
		return fmt.Sprintf("(%d%02d) %03d-%04d", g.intn(2), g.intn(100), g.intn(1000), g.intn(10000)), "phone", "phone number", "phone-shaped, invalid area code (starts 0/1)", nil
	case 9:
		return fmt.Sprintf("555-%04d", g.intn(10000)), "ext", "extension", "seven digits without area code", nil
	case 10:
		return fmt.Sprintf("1Z%s%s", strings.ToUpper(g.hexHash(6)), g.digits(10)), "tracking", "tracking number", "UPS tracking number", nil
	case 11:
		return fmt.Sprintf("%d", 1600000000+g.intn(200000000)), "ts", "timestamp", "Unix timestamp", nil
	case 12:
		return g.uuid(), "request_id", "request id", "UUID v4", nil
	case 13:
		return fmt.Sprintf("%05d-%04d", 10000+g.intn(89999), g.intn(10000)), "zip", "ZIP+4 code", "ZIP+4 code", nil
	case 14:
		return fmt.Sprintf("INV-%d-%06d", 2020+g.intn(5), g.intn(1000000)), "invoice", "invoice number", "invoice number", nil
	}
	return fmt.Sprintf("%d.%d.%d.%d", 1+g.intn(20), g.intn(10), g.intn(100), 1000+g.intn(9000)), "build", "build", "four-part build number", nil
}

func (g *Gen) cardNegative() (string, string, string, string, []inspect.Expected) {
	switch g.intn(13) {
	case 11, 12:
		body := g.pick("7", "8", "9", "1") + g.digits(14)
		d := body + string(luhnDigit(body))
		return g.formatCard(d), "gift_card", "gift card number", "Luhn-valid 16 digits outside every issuer range", nil
	case 0, 1, 2:
		return g.InvalidCard(), "card_number", "card number", "card-shaped number failing Luhn", nil
	case 3:
		return "9400 " + g.digits(4) + " " + g.digits(4) + " " + g.digits(4) + " " + g.digits(4) + " " + g.digits(2), "tracking", "tracking number", "USPS tracking number", nil
	case 4:
		return fmt.Sprintf("1%s", g.digits(18)), "message_id", "message id", "19-digit snowflake id", nil
	case 5:
		return fmt.Sprintf("%d", 1600000000000+g.intn(200000000000)), "ts_ms", "timestamp", "Unix time in milliseconds", nil
	case 6:
		return fmt.Sprintf("%s **** **** %s", g.pick("4111", "5500", "3782"), g.digits(4)), "card_masked", "card", "masked card number", nil
	case 7:
		return "ending in " + g.digits(4), "card_last4", "card", "last four digits only", nil
	case 8:
		return g.hexHash(40), "commit", "commit", "git commit hash", nil
	case 9:
		return fmt.Sprintf("35%s", g.digits(13)), "imei", "IMEI", "15-digit IMEI", nil
	}
	return fmt.Sprintf("ORD-%s-%s", g.digits(8), g.digits(8)), "order_id", "order id", "16 digits in an order id", nil
}

func (g *Gen) ssnNegative() (string, string, string, string, []inspect.Expected) {
	switch g.intn(10) {
	case 8:
		v, _ := g.Phone()
		return v, "phone", "phone number", "a phone number, not an SSN", []inspect.Expected{label("phone", v)}
	case 9:
		return fmt.Sprintf("%02d-%02d-%04d", 1+g.intn(12), 1+g.intn(28), 1950+g.intn(70)), "date", "date", "MM-DD-YYYY date", nil
	case 0, 1, 2:
		v, why := g.InvalidSSN()
		return v, "ssn", "SSN", "SSN-shaped, " + why, nil
	case 3:
		return g.digits(9), "ref", "reference", "nine digits without SSN context", nil
	case 4:
		return fmt.Sprintf("%02d-%07d", 10+g.intn(89), g.intn(10000000)), "ein", "EIN", "employer identification number", nil
	case 5:
		return fmt.Sprintf("%03d-%03d-%03d", g.intn(1000), g.intn(1000), g.intn(1000)), "part", "part number", "3-3-3 part number", nil
	case 6:
		return fmt.Sprintf("%s-%02d-%04d", g.pick("PRJ", "REQ", "BUG"), g.intn(100), g.intn(10000)), "issue", "issue key", "issue key", nil
	}
	return fmt.Sprintf("%03d-%02d-%04d-%02d", 1+g.intn(899), 1+g.intn(99), 1+g.intn(9999), g.intn(100)), "lot", "lot number", "longer dashed lot number", nil
}

func (g *Gen) ibanNegative() (string, string, string, string, []inspect.Expected) {
	switch g.intn(9) {
	case 0, 1, 2, 3:
		return g.BadIBAN(), "iban", "IBAN", "IBAN-shaped with a bad mod-97 checksum", nil
	case 4:
		s := strings.ReplaceAll(g.IBAN(), " ", "")
		return s[:len(s)-1], "iban", "IBAN", "valid IBAN with its last character cut (wrong length)", nil
	case 5:
		return fmt.Sprintf("%s%s%s", g.pick("XX", "ZZ", "QA9", "US"), g.digits(2), g.digits(16)), "account", "account", "IBAN-shaped with a non-IBAN country code", nil
	case 6:
		return fmt.Sprintf("%s%s%s", g.pick("DEUT", "NWBK", "BNPA", "COBA"), g.pick("DE", "GB", "FR"), g.pick("FF", "2L", "PP")), "bic", "BIC", "BIC/SWIFT code", nil
	case 7:
		return fmt.Sprintf("%s%s", g.pick("DE", "GB", "FR", "NL"), g.digits(9)), "vat", "VAT number", "VAT number", nil
	}
	return fmt.Sprintf("%s%s", g.pick("MSCU", "MAEU", "CMAU"), g.digits(7)), "container", "container number", "shipping container number", nil
}

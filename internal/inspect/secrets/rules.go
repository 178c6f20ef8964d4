package secrets

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"

	re2 "github.com/wasilibs/go-re2"

	"gatehouse/internal/inspect"
)

// rule is one compiled detection rule.
type rule struct {
	id          string
	re          *re2.Regexp
	secretGroup int // 0: the first non-empty group, or the whole match
	entropy     float64
	keywords    []string
	allow       []*allowlist
	confidence  inspect.Confidence
	kind        ruleKind

	// windowed: the rule runs over windows around keyword hits (see
	// analysis.go); otherwise over the whole text.
	windowed    bool
	left, right extent
	// follow, when set, must match the text right after a keyword hit for
	// the hit to get a window (see followCheck).
	follow followSet
}

// ruleKind orders rules by how specific their format is, to choose between
// findings of several rules on one span.
type ruleKind int8

const (
	kindGeneric    ruleKind = iota // generic-api-key: a key-like name and a random value
	kindContextual                 // a service name near an assignment of a value of some shape
	kindFormat                     // a token with its own recognisable format (prefix, structure)
	kindGatehouse                  // Gatehouse's own credentials
)

// Confidence, by rule:
//
//   - High: tokens with a format of their own: a vendor prefix or structure
//     (AWS AKIA…, GitHub ghp_…, Slack xox…, Stripe sk_live_…, PEM private
//     keys, JWTs, Gatehouse's ghk_/ghs_/… credentials), i.e. every gitleaks
//     rule that is not one of the two kinds below, except a few listed in
//     weakFormatRules.
//   - Medium: generic-api-key (a secret-like name assigned a value that
//     passed its entropy check), contextual rules (a service name such as
//     "datadog" near an assignment of a value of the right shape) that
//     gitleaks gives an entropy minimum, and the formats in weakFormatRules.
//   - Low: contextual rules without an entropy minimum, whose value shape
//     alone (e.g. 32 lower-case hex digits) proves little.
func classify(id, regex string, entropy float64) (ruleKind, inspect.Confidence) {
	switch {
	case id == "generic-api-key":
		return kindGeneric, inspect.Medium
	case strings.Contains(regex, semiGenericOperator):
		if entropy > 0 {
			return kindContextual, inspect.Medium
		}
		return kindContextual, inspect.Low
	case weakFormatRules[id]:
		return kindFormat, inspect.Medium
	}
	return kindFormat, inspect.High
}

// semiGenericOperator is the assignment part of the regexes gitleaks
// generates for "identifier near a value" rules.
const semiGenericOperator = `(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)`

// weakFormatRules have a format of their own that ordinary text can also
// take, or that does not prove a live credential.
var weakFormatRules = map[string]bool{
	"curl-auth-header":           true, // any Authorization header value in a curl line
	"curl-auth-user":             true, // user:password in a curl line, often placeholders
	"facebook-page-access-token": true,
	"sidekiq-sensitive-url":      true,
	"sourcegraph-access-token":   true, // 40 hex digits after "sgp_" or alone
	"kubernetes-secret-yaml":     true,
}

// allowlist is a compiled gitleaks allowlist: a finding is dropped when its
// target matches one of the regexes or its secret contains a stop word.
type allowlist struct {
	target    string         // "" (the secret), "match" or "line"
	regexes   *regexp.Regexp // nil: none
	stopwords *keywordMatcher
}

// compileAllowlist compiles a TOML allowlist. It returns nil when the list
// cannot apply to scanned text: lists of paths or commits only, and "AND"
// lists that require a path or commit as well.
//
// Allowlist regexes use the standard library: they run on short strings
// (one secret, one line) and only for candidates, where RE2's call overhead
// would dominate.
func compileAllowlist(a tomlAllowlist) (*allowlist, error) {
	if strings.EqualFold(a.Condition, "AND") && (len(a.Paths) > 0 || len(a.Commits) > 0) {
		return nil, nil
	}
	if len(a.Regexes) == 0 && len(a.StopWords) == 0 {
		return nil, nil
	}
	out := &allowlist{target: a.RegexTarget}
	if len(a.Regexes) > 0 {
		re, err := regexp.Compile("(?:" + strings.Join(a.Regexes, ")|(?:") + ")")
		if err != nil {
			return nil, fmt.Errorf("allowlist regexes: %w", err)
		}
		out.regexes = re
	}
	if len(a.StopWords) > 0 {
		out.stopwords = newKeywordMatcher(append([]string(nil), a.StopWords...))
	}
	return out, nil
}

// allows reports whether the allowlist drops a finding.
func (a *allowlist) allows(secret, match, line string) bool {
	if a.regexes != nil {
		target := secret
		switch a.target {
		case "match":
			target = match
		case "line":
			target = line
		}
		if a.regexes.MatchString(target) {
			return true
		}
	}
	return a.stopwords != nil && a.stopwords.contains(secret)
}

// ruleSource is a rule before compilation.
type ruleSource struct {
	id, regex   string
	secretGroup int
	entropy     float64
	keywords    []string
	allowlists  []tomlAllowlist
}

// compileRule compiles one rule with RE2 and analyses whether it can run on
// windows.
func compileRule(src ruleSource, kind ruleKind, conf inspect.Confidence) (*rule, error) {
	re, err := re2.Compile(src.regex)
	if err != nil {
		return nil, err
	}
	if src.secretGroup > re.NumSubexp() {
		return nil, fmt.Errorf("secretGroup %d, but the regex has %d groups", src.secretGroup, re.NumSubexp())
	}
	r := &rule{id: src.id, re: re, secretGroup: src.secretGroup, entropy: src.entropy,
		keywords: lowerAll(src.keywords), confidence: conf, kind: kind}
	for _, a := range src.allowlists {
		al, err := compileAllowlist(a)
		if err != nil {
			return nil, err
		}
		if al != nil {
			r.allow = append(r.allow, al)
		}
	}
	if len(r.keywords) > 0 {
		if tree, err := syntax.Parse(src.regex, syntax.Perl); err == nil {
			r.windowed = containsKeyword(tree, r.keywords)
			r.left, r.right = splitExtent(tree, r.keywords)
			if fs, ok := followCheck(tree, r.keywords); ok && r.windowed {
				r.follow = fs
			}
		}
	}
	return r, nil
}

func lowerAll(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s = strings.ToLower(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// gatehouseRules detect Gatehouse's own credentials (see internal/identity
// and internal/identity/oauth): a tag and 32 random bytes in unpadded
// base64url (43 characters), or for the admin token two 18-byte halves (48).
// A client id (ghc_) is public and not detected.
var gatehouseRules = []ruleSource{
	{id: "gatehouse-api-key", regex: gatehouseRegex("ghk_", 43), keywords: []string{"ghk_"}, entropy: gatehouseEntropy},
	{id: "gatehouse-client-secret", regex: gatehouseRegex("ghs_", 43), keywords: []string{"ghs_"}, entropy: gatehouseEntropy},
	{id: "gatehouse-admin-token", regex: gatehouseRegex("gha_", 48), keywords: []string{"gha_"}, entropy: gatehouseEntropy},
	{id: "gatehouse-refresh-token", regex: gatehouseRegex("ghr_", 43), keywords: []string{"ghr_"}, entropy: gatehouseEntropy},
	{id: "gatehouse-authorization-code", regex: gatehouseRegex("ghac_", 43), keywords: []string{"ghac_"}, entropy: gatehouseEntropy},
	{id: "gatehouse-oauth-client-secret", regex: gatehouseRegex("ghcs_", 43), keywords: []string{"ghcs_"}, entropy: gatehouseEntropy},
}

// extraRules are not in gitleaks but matter for text crossing an agent
// gateway: a password in a connection string or URL
// (postgres://app:s3cret@db:5432/app). Placeholders (${DB_PASSWORD},
// "password", "changeme", <…> is excluded by the regex) are allowlisted.
var extraRules = []ruleSource{{
	id: "url-password",
	regex: `(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle|clickhouse|cockroachdb|couchdb|neo4j|ldaps?|ftps?|sftp|smtps?|https?)://` +
		`[^\s:/@'"<>]{0,128}:([^\s:/@'"<>]{3,128})@[\w.-]{1,253}`,
	keywords: []string{"postgres://", "postgresql://", "mysql://", "mariadb://", "mongodb://", "mongodb+srv://",
		"redis://", "rediss://", "amqp://", "amqps://", "mssql://", "sqlserver://", "oracle://", "clickhouse://",
		"cockroachdb://", "couchdb://", "neo4j://", "ldap://", "ldaps://", "ftp://", "ftps://", "sftp://",
		"smtp://", "smtps://", "http://", "https://"},
	entropy: 1.5,
	allowlists: []tomlAllowlist{{Regexes: []string{
		`(?i)^(?:pass(?:word|wd)?|pwd|secret|changeme|change_me|example|test|dummy|placeholder|redacted|\[redacted\]|x+|\*+|\.+|%s|\$\w+|\$\{[^}]*\}|\{\{[^}]*\}\}|%\(\w+\)s|your[_-]?pass(?:word)?)$`,
	}}},
}}

// passwordRule finds quoted passwords with characters gitleaks'
// generic-api-key does not accept (password: "hunter2!x#Q9"). Values
// starting like a template or variable (${…}, {{…}}, <…>, %(…)s) are not
// matched at all, which keeps configuration templates cheap to scan.
var passwordRule = ruleSource{
	id: "password-assignment",
	regex: `(?i)[\w.-]{0,50}?(?:passw(?:or)?d|pwd|passphrase)(?:[ \t\w.-]{0,20})[\s'"]{0,3}(?:=|:|=>|:=)[ \t]{0,5}` +
		`(?:"([^"\s\\$<{%][^"\s\\]{7,63})"|'([^'\s\\$<{%][^'\s\\]{7,63})')`,
	keywords: []string{"password", "passwd", "pwd", "passphrase"},
	entropy:  3,
	allowlists: []tomlAllowlist{
		{Regexes: []string{
			`(?i)^(?:\*+|x+|\.+|<[^>]*>|\$\{[^}]*\}|\{\{.*\}\}|%\(?\w*\)?s|your[_-]?\w*|change[_-]?me\w*|passw(?:or|0r)?d\w*|secret\w*|example\w*|redacted|dummy\w*|test\w*|placeholder\w*)$`,
			`^\$(?:2[aby]?|argon2(?:id|i|d)|scrypt|pbkdf2[-\w]*|[156])\$`, // password hashes
		}},
		{RegexTarget: "match", Regexes: []string{
			`(?i)passw(?:or)?d[_.-]?(?:hash|digest|salt|policy|rules?|field|label|prompt|reset|length|min|max|hint)`,
		}},
	},
}

// extraAllowlists add to gitleaks rules' allowlists: names of values that
// look random but are not secrets (pagination cursors, idempotency and
// cache keys) which gitleaks does not list.
var extraAllowlists = map[string][]tomlAllowlist{
	"generic-api-key": {{RegexTarget: "match", Regexes: []string{
		`(?i)(?:next|prev(?:ious)?|page|cursor|continuation|pagination|sync|resume)[_.-]?(?:page[_.-]?)?(?:token|key)`,
		`(?i)(?:idempotency|cache|partition|sort|range|request|correlation|dedup(?:lication)?|row|object|routing|shard)[_.-]?key`,
	}}},
}

func gatehouseRegex(tag string, n int) string {
	return fmt.Sprintf(`(?:^|[^0-9A-Za-z_-])(%s[0-9A-Za-z_-]{%d})(?:[^0-9A-Za-z_-]|$)`, tag, n)
}

// gatehouseEntropy is the entropy minimum of Gatehouse credentials: random
// 43-character base64url bodies are near 5; placeholders like ghk_xxxx… are 0.
const gatehouseEntropy = 3.5

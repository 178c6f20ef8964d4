package injection

import (
	"strings"

	"gatehouse/internal/inspect"
)

// Exfiltration links. A markdown image or link, or an HTML element that
// loads or links a URL, is scored on its URL; images (and iframes, video,
// ...) load without a click, so they weigh more. Cues:
//
//   - a template placeholder in the path or query ({data}, {{conversation}},
//     ${TOKEN}, $SECRET, <API_KEY>, [CHAT_HISTORY], INSERT_..._HERE): the
//     text tells the model to fill in data (+6);
//   - a host built to receive requests (webhook.site, request bins, tunnels,
//     out-of-band collaborator domains) (+4), or a bare IP address (+1);
//   - a query value that looks like data: a known secret prefix (+4), long
//     mixed-case base64 (+3, +4 from 64 bytes), or URL-encoded prose (+2),
//     plus +2 when the parameter is named like data (data, secret, token,
//     history, msg, ...) and +1 for a one-letter name; parameters of signed
//     URLs, CDNs and trackers (X-Amz-*, sig, utm_*, ixid, ...) don't count;
//   - a long mixed-case base64 path segment (+3), except on content hosts
//     whose paths are opaque ids (googleusercontent, githubusercontent, ...).
//
// A score of 4 is Low, 5 Medium, 7 High; plain documentation links, badges,
// signed image URLs and photos score below 4.
const (
	linkMinScore  = 4
	maxTagScan    = 2048
	maxLinkLength = 4096
)

var exfilHosts = []string{
	"webhook.site", "webhook.cool", "requestbin.com", "requestbin.net", "pipedream.net", "ngrok.io", "ngrok.app",
	"ngrok-free.app", "ngrok-free.dev", "ngrok.dev", "burpcollaborator.net", "oastify.com", "oast.fun", "oast.pro",
	"oast.live", "oast.site", "oast.online", "oast.me", "interact.sh", "interactsh.com", "canarytokens.com",
	"canarytokens.org", "hookbin.com", "beeceptor.com", "requestcatcher.com", "postb.in", "ptsv2.com", "ptsv3.com",
	"trycloudflare.com", "serveo.net", "loca.lt", "localtunnel.me", "xss.ht", "requestinspector.com", "mockbin.org",
	"dnslog.cn", "ceye.io",
}

var contentHosts = []string{
	"googleusercontent.com", "githubusercontent.com", "gravatar.com", "ytimg.com", "twimg.com", "wikimedia.org",
	"imgur.com", "unsplash.com", "shields.io", "github.com", "gitlab.com", "googleapis.com", "gstatic.com", "google.com",
}

var dataParams = []string{
	"data", "exfil", "leak", "payload", "secret", "secrets", "key", "apikey", "api_key", "token", "tok", "password",
	"pwd", "pass", "creds", "cred", "credential", "credentials", "conversation", "conv", "chat", "history", "hist",
	"msg", "message", "messages", "content", "ctx", "context", "memory", "mem", "summary", "info", "prompt", "env",
	"cookie", "cookies", "session", "sess", "email", "mail", "text", "body", "log",
}

var benignParams = []string{
	"signature", "sig", "se", "sp", "sv", "sr", "st", "skoid", "sktid", "skt", "ske", "sks", "skv", "expires",
	"key-pair-id", "policy", "ixid", "ixlib", "v", "t", "w", "h", "s", "q", "width", "height", "size", "fit", "crop",
	"auto", "fm", "dl", "raw", "usp", "branch", "style", "label", "color", "logo", "logocolor", "tab", "ref", "page",
	"lang", "hl", "format", "rel",
}

var secretPrefixes = []string{"ghp_", "gho_", "ghs_", "github_pat_", "sk-", "sk_live_", "xoxb-", "xoxp-", "AKIA", "eyJ", "AIza"}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix) &&
		(len(s) == len(suffix) || s[len(s)-len(suffix)-1] == '.' || s[len(s)-len(suffix)-1] == '-')
}

func hostIn(host string, list []string) bool {
	for _, h := range list {
		if hasSuffixFold(host, h) {
			return true
		}
	}
	return false
}

func nameIn(name string, list []string) bool {
	for _, n := range list {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// urlScore scores one URL found in a link or image.
func urlScore(u string, image bool) int {
	var rest string
	switch {
	case hasPrefixFold(u, "https://"):
		rest = u[8:]
	case hasPrefixFold(u, "http://"):
		rest = u[7:]
	case strings.HasPrefix(u, "//"):
		rest = u[2:]
	default:
		return 0 // relative, mailto:, data: and the like carry nothing out
	}
	h := strings.IndexAny(rest, "/?#\\")
	if h < 0 {
		h = len(rest)
	}
	host, tail := rest[:h], rest[h:]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	if c := strings.LastIndexByte(host, ':'); c >= 0 && !strings.HasPrefix(host, "[") {
		host = host[:c]
	}
	if f := strings.IndexByte(tail, '#'); f >= 0 {
		tail = tail[:f] // fragments are not sent to the server
	}
	score := 0
	if image {
		score++
	}
	if hostIn(host, exfilHosts) {
		score += 4
	}
	if ipHost(host) {
		score++
	}
	if hasPlaceholder(tail) {
		score += 6
	}
	path, query, _ := strings.Cut(tail, "?")
	if !hostIn(host, contentHosts) {
		for seg := range strings.SplitSeq(path, "/") {
			if dot := strings.LastIndexByte(seg, '.'); dot > 0 && len(seg)-dot <= 5 {
				seg = seg[:dot]
			}
			if len(seg) >= 32 && base64Like(seg) {
				score += 3
				break
			}
		}
	}
	best := 0
	for param := range strings.SplitSeq(query, "&") {
		name, v, _ := strings.Cut(param, "=")
		if nameIn(name, benignParams) || hasPrefixFold(name, "x-amz-") || hasPrefixFold(name, "x-goog-") || hasPrefixFold(name, "utm_") {
			continue
		}
		ps := 0
		if len(v) >= 8 {
			if nameIn(name, dataParams) {
				ps += 2
			} else if len(name) == 1 {
				ps++
			}
		}
		switch {
		case hasSecretPrefix(v):
			ps += 4
		case len(v) >= 64 && base64Like(v):
			ps += 4
		case len(v) >= 24 && base64Like(v):
			ps += 3
		case len(v) >= 24 && encodedWords(v) >= 4:
			ps += 2
		}
		best = max(best, ps)
	}
	return score + best
}

func ipHost(host string) bool {
	if strings.HasPrefix(host, "[") {
		return true
	}
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		if (host[i] < '0' || host[i] > '9') && host[i] != '.' {
			return false
		}
	}
	return true
}

func hasSecretPrefix(v string) bool {
	for _, p := range secretPrefixes {
		if strings.HasPrefix(v, p) && len(v) >= len(p)+12 {
			return true
		}
	}
	return false
}

// base64Like: only base64/base64url/percent characters, with upper case,
// lower case and digits all present (hex digests and words are not).
func base64Like(s string) bool {
	var up, low, dig bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			up = true
		case c >= 'a' && c <= 'z':
			low = true
		case c >= '0' && c <= '9':
			dig = true
		case c == '+' || c == '/' || c == '=' || c == '_' || c == '-' || c == '%':
		default:
			return false
		}
	}
	return up && low && dig
}

func encodedWords(v string) int {
	return strings.Count(v, "%20") + strings.Count(v, "+")
}

// hasPlaceholder finds template placeholders a model is meant to fill in.
func hasPlaceholder(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '{':
			if j := strings.IndexByte(s[i+1:], '}'); j > 0 && j <= 64 {
				return true
			}
		case '%':
			// "%7B" then, within 80 bytes, a first "%7D" not right after it.
			if hasPrefixFold(s[i:], "%7B") {
				w := s[i:min(len(s), i+80)]
				for k := 3; k+3 <= len(w); k++ {
					if hasPrefixFold(w[k:], "%7D") {
						if k > 3 {
							return true
						}
						break
					}
				}
			}
		case '$':
			if i+1 < len(s) && s[i+1] == '{' {
				return true
			}
			if n := upperRun(s[i+1:]); n >= 3 {
				return true
			}
		case '<', '[':
			closer := byte('>')
			if c == '[' {
				closer = ']'
			}
			if n := upperRun(s[i+1:]); n >= 3 && i+1+n < len(s) && s[i+1+n] == closer {
				return true
			}
		}
	}
	return strings.Contains(s, "_HERE") || strings.Contains(s, "INSERT_") || strings.Contains(s, "PLACEHOLDER")
}

// upperRun is the length of the run of A–Z and _ at the start of s.
func upperRun(s string) int {
	n := 0
	for n < len(s) && (s[n] >= 'A' && s[n] <= 'Z' || s[n] == '_') {
		n++
	}
	return n
}

func linkConfidence(score int) inspect.Confidence {
	switch {
	case score >= 7:
		return inspect.High
	case score >= 5:
		return inspect.Medium
	}
	return inspect.Low
}

// markdownLink looks at the link whose text ends with the ']' at i (text
// [i+1] is '('). Each byte is read by at most one URL parse (sc.linkEnd),
// which keeps nested or repeated brackets linear.
func (sc *scanner) markdownLink(i int) {
	text := sc.text
	if i < sc.linkEnd {
		return // inside the URL of the previous link
	}
	start, depth := -1, 0
	for j := i - 1; j >= sc.linkEnd && j >= i-1024; j-- {
		if text[j] == ']' {
			depth++
		} else if text[j] == '[' {
			if depth == 0 {
				start = j
				break
			}
			depth--
		} else if text[j] == '\n' {
			break
		}
	}
	if start < 0 {
		sc.linkEnd = i // later searches for '[' need not look further back
		return
	}
	image := start > 0 && text[start-1] == '!'
	if image {
		start--
	}
	k := i + 2
	for k < len(text) && (text[k] == ' ' || text[k] == '<') {
		k++
	}
	u0, paren := k, 0
	for k < len(text) && k-u0 < maxLinkLength {
		c := text[k]
		if c == ' ' || c == '\n' || c == '\t' || c == '"' {
			break
		}
		if c == '(' {
			paren++
		} else if c == ')' {
			if paren == 0 {
				break
			}
			paren--
		}
		k++
	}
	u := strings.TrimSuffix(text[u0:k], ">")
	sc.linkEnd = k
	end := k
	if c := strings.IndexByte(text[k:min(len(text), k+256)], ')'); c >= 0 {
		end = k + c + 1
	}
	if s := urlScore(u, image); s >= linkMinScore {
		sc.emit(typeExfil, start, end, linkConfidence(s))
	}
}

// linkTags are the HTML elements that fetch or link a URL; all but "a"
// fetch without a click.
var linkTags = []string{"img", "image", "a", "iframe", "frame", "source", "video", "audio", "embed", "object", "link", "script", "input"}

var urlAttrs = []string{"src", "href", "data", "srcset", "poster", "action", "background", "lowsrc", "formaction"}

// htmlTag scores the URLs in the attributes of the tag opened at i.
func (sc *scanner) htmlTag(i int, name string) {
	text := sc.text
	if i < sc.tagEnd {
		return // inside the attributes of the previous tag
	}
	limit := min(len(text), i+maxTagScan)
	k := i + 1 + len(name)
	best := 0
	end := -1
	for k < limit {
		c := text[k]
		if c == '>' {
			end = k + 1
			break
		}
		if !isASCIILetter(c) {
			k++
			continue
		}
		a := k
		for k < limit && (isASCIILetter(text[k]) || text[k] == '-' || text[k] == ':') {
			k++
		}
		attr := text[a:k]
		if k >= limit || text[k] != '=' {
			continue
		}
		k++
		for k < limit && (text[k] == '\\' || text[k] == ' ') {
			k++
		}
		var quote byte
		if k < limit && (text[k] == '"' || text[k] == '\'') {
			quote = text[k]
			k++
		}
		v0 := k
		for k < limit {
			c := text[k]
			if quote != 0 && (c == quote || c == '\\' && k+1 < limit && text[k+1] == quote) {
				break
			}
			if quote == 0 && (c == ' ' || c == '>' || c == '\\') {
				break
			}
			k++
		}
		if nameIn(attr, urlAttrs) {
			best = max(best, urlScore(text[v0:k], !strings.EqualFold(name, "a")))
		}
		if quote != 0 && k < limit {
			if text[k] == '\\' {
				k++
			}
			k++
		}
	}
	sc.tagEnd = k
	if best >= linkMinScore {
		if end < 0 {
			end = limit
		}
		sc.emit(typeExfil, i, end, linkConfidence(best))
	}
}

// Command corpusgen writes the labelled secrets corpus
// (testdata/inspect/secrets.jsonl): synthetic credentials in the documented
// formats of each service with random bodies, embedded in realistic text
// (.env files, JSON tool results, shell history, logs, code), and hard
// negatives that look like secrets but are not (UUIDs, hashes, placeholders,
// documentation examples, ids, code that reads a secret from elsewhere).
//
// Every credential is random: none is or was ever valid. The output is
// deterministic (fixed seed), so regenerating gives the same file:
//
//	go run ./internal/inspect/secrets/internal/corpusgen > testdata/inspect/secrets.jsonl
package main

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
)

var rng = rand.New(rand.NewPCG(20251126, 6))

const (
	upper    = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower    = "abcdefghijklmnopqrstuvwxyz"
	digits   = "0123456789"
	alnum    = upper + lower + digits
	lowalnum = lower + digits
	hexLower = "0123456789abcdef"
	b64url   = alnum + "-_"
	b64std   = alnum + "+/"
	word     = alnum + "_"
	base32   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	bech32   = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
)

func rnd(set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[rng.IntN(len(set))]
	}
	return string(b)
}

func between(lo, hi int) int { return lo + rng.IntN(hi-lo+1) }

type expect struct {
	Category string `json:"category"`
	Type     string `json:"type"`
	Match    string `json:"match,omitempty"`
}

type sample struct {
	ID     string   `json:"id"`
	Text   string   `json:"text"`
	Expect []expect `json:"expect"`
	Source string   `json:"source"`
	Note   string   `json:"note,omitempty"`
}

// family is one credential format: the rule that should find it, the
// environment variable name people give it, and a generator.
type family struct {
	rule, envVar, format string
	gen                  func() string
	contexts             []string // context names; default: a mix
}

func jwt() string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := fmt.Sprintf(`{"sub":"%s","iat":%d,"exp":%d,"scope":"read write"}`, rnd(alnum, 12), 1760000000+rng.IntN(1e6), 1770000000+rng.IntN(1e6))
	return header + "." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + "." + rnd(b64url, 43)
}

func pemBody(lines int) []string {
	out := make([]string, lines)
	for i := range out {
		out[i] = rnd(b64std, 64)
	}
	out[lines-1] = rnd(b64std, 40) + "=="
	return out
}

func pem(kind string, lines int) string {
	return "-----BEGIN " + kind + "-----\n" + strings.Join(pemBody(lines), "\n") + "\n-----END " + kind + "-----"
}

var families = []family{
	{rule: "aws-access-token", envVar: "AWS_ACCESS_KEY_ID", format: "AKIA + 16 base32", gen: func() string { return "AKIA" + rnd(upper+"234567", 16) }},
	{rule: "aws-access-token", envVar: "AWS_ACCESS_KEY_ID", format: "ASIA (temporary) + 16 base32", gen: func() string { return "ASIA" + rnd(upper+"234567", 16) }},
	{rule: "gcp-api-key", envVar: "GOOGLE_API_KEY", format: "AIza + 35 [\\w-]", gen: func() string { return "AIza" + rnd(b64url, 35) }},
	{rule: "azure-ad-client-secret", envVar: "AZURE_CLIENT_SECRET", format: "3 chars, digit, Q~, 34 chars", gen: func() string {
		return rnd(alnum, 3) + rnd(digits, 1) + "Q~" + rnd(alnum+"_~.-", 34)
	}},
	{rule: "github-pat", envVar: "GITHUB_TOKEN", format: "ghp_ + 36 alnum", gen: func() string { return "ghp_" + rnd(alnum, 36) }},
	{rule: "github-oauth", envVar: "GH_OAUTH_TOKEN", format: "gho_ + 36 alnum", gen: func() string { return "gho_" + rnd(alnum, 36) }},
	{rule: "github-app-token", envVar: "GITHUB_APP_TOKEN", format: "ghu_ + 36 alnum", gen: func() string { return "ghu_" + rnd(alnum, 36) }},
	{rule: "github-fine-grained-pat", envVar: "GITHUB_PAT", format: "github_pat_ + 22 + _ + 59", gen: func() string { return "github_pat_" + rnd(alnum, 22) + "_" + rnd(alnum, 59) }},
	{rule: "gitlab-pat", envVar: "GITLAB_TOKEN", format: "glpat- + 20", gen: func() string { return "glpat-" + rnd(alnum+"-_", 20) }},
	{rule: "gitlab-runner-authentication-token", envVar: "RUNNER_TOKEN", format: "glrt- + 20", gen: func() string { return "glrt-" + rnd(alnum, 20) }},
	{rule: "slack-bot-token", envVar: "SLACK_BOT_TOKEN", format: "xoxb-digits-digits-24 alnum", gen: func() string {
		return "xoxb-" + rnd(digits, 12) + "-" + rnd(digits, 13) + "-" + rnd(alnum, 24)
	}},
	{rule: "slack-user-token", envVar: "SLACK_USER_TOKEN", format: "xoxp-digits x3-32 hex", gen: func() string {
		return "xoxp-" + rnd(digits, 12) + "-" + rnd(digits, 12) + "-" + rnd(digits, 13) + "-" + rnd(hexLower, 32)
	}},
	{rule: "slack-webhook-url", envVar: "SLACK_WEBHOOK_URL", format: "hooks.slack.com/services/T…/B…/24", gen: func() string {
		return "https://hooks.slack.com/services/T" + rnd(upper+digits, 8) + "/B" + rnd(upper+digits, 10) + "/" + rnd(alnum, 24)
	}},
	{rule: "stripe-access-token", envVar: "STRIPE_SECRET_KEY", format: "sk_live_ + 24..99 alnum", gen: func() string { return "sk_live_" + rnd(alnum, between(24, 99)) }},
	{rule: "stripe-access-token", envVar: "STRIPE_RESTRICTED_KEY", format: "rk_live_ + alnum", gen: func() string { return "rk_live_" + rnd(alnum, 99) }},
	{rule: "twilio-api-key", envVar: "TWILIO_API_KEY", format: "SK + 32 hex", gen: func() string { return "SK" + rnd(hexLower, 32) }},
	{rule: "sendgrid-api-token", envVar: "SENDGRID_API_KEY", format: "SG.22.43", gen: func() string { return "SG." + rnd(b64url, 22) + "." + rnd(b64url, 43) }},
	{rule: "openai-api-key", envVar: "OPENAI_API_KEY", format: "sk-proj-58 T3BlbkFJ 58", gen: func() string {
		return "sk-proj-" + rnd(b64url, 58) + "T3BlbkFJ" + rnd(b64url, 58)
	}},
	{rule: "anthropic-api-key", envVar: "ANTHROPIC_API_KEY", format: "sk-ant-api03- + 93 + AA", gen: func() string { return "sk-ant-api03-" + rnd(b64url, 93) + "AA" }},
	{rule: "anthropic-admin-api-key", envVar: "ANTHROPIC_ADMIN_KEY", format: "sk-ant-admin01- + 93 + AA", gen: func() string { return "sk-ant-admin01-" + rnd(b64url, 93) + "AA" }},
	{rule: "huggingface-access-token", envVar: "HF_TOKEN", format: "hf_ + 34 letters", gen: func() string { return "hf_" + rnd(upper+lower, 34) }},
	{rule: "npm-access-token", envVar: "NPM_TOKEN", format: "npm_ + 36", gen: func() string { return "npm_" + rnd(alnum, 36) }},
	{rule: "pypi-upload-token", envVar: "PYPI_TOKEN", format: "pypi-AgEIcHlwaS5vcmc + base64url", gen: func() string { return "pypi-AgEIcHlwaS5vcmc" + rnd(b64url, 120) }},
	{rule: "jwt", envVar: "ACCESS_TOKEN", format: "JWT header.claims.signature", gen: jwt},
	{rule: "shopify-access-token", envVar: "SHOPIFY_ACCESS_TOKEN", format: "shpat_ + 32 hex", gen: func() string { return "shpat_" + rnd(hexLower, 32) }},
	{rule: "digitalocean-pat", envVar: "DIGITALOCEAN_TOKEN", format: "dop_v1_ + 64 hex", gen: func() string { return "dop_v1_" + rnd(hexLower, 64) }},
	{rule: "doppler-api-token", envVar: "DOPPLER_TOKEN", format: "dp.pt. + 43", gen: func() string { return "dp.pt." + rnd(alnum, 43) }},
	{rule: "databricks-api-token", envVar: "DATABRICKS_TOKEN", format: "dapi + 32 hex", gen: func() string { return "dapi" + rnd(hexLower, 32) }},
	{rule: "linear-api-key", envVar: "LINEAR_API_KEY", format: "lin_api_ + 40", gen: func() string { return "lin_api_" + rnd(alnum, 40) }},
	{rule: "postman-api-token", envVar: "POSTMAN_API_KEY", format: "PMAK-24hex-34hex", gen: func() string { return "PMAK-" + rnd(hexLower, 24) + "-" + rnd(hexLower, 34) }},
	{rule: "pulumi-api-token", envVar: "PULUMI_ACCESS_TOKEN", format: "pul- + 40 hex", gen: func() string { return "pul-" + rnd(hexLower, 40) }},
	{rule: "grafana-service-account-token", envVar: "GRAFANA_TOKEN", format: "glsa_32_8hex", gen: func() string { return "glsa_" + rnd(alnum, 32) + "_" + rnd(hexLower, 8) }},
	{rule: "telegram-bot-api-token", envVar: "TELEGRAM_BOT_TOKEN", format: "digits:AA + 33", gen: func() string { return rnd(digits, 10) + ":AA" + rnd(b64url, 33) }, contexts: []string{"env", "yaml", "json"}},
	{rule: "dynatrace-api-token", envVar: "DT_API_TOKEN", format: "dt0c01.24.64", gen: func() string { return "dt0c01." + rnd(upper+digits, 24) + "." + rnd(upper+digits, 64) }},
	{rule: "age-secret-key", envVar: "SOPS_AGE_KEY", format: "AGE-SECRET-KEY-1 + 58 bech32", gen: func() string { return "AGE-SECRET-KEY-1" + rnd(bech32, 58) }},
	{rule: "alibaba-access-key-id", envVar: "ALIBABA_CLOUD_ACCESS_KEY_ID", format: "LTAI + 20", gen: func() string { return "LTAI" + rnd(alnum, 20) }},
	{rule: "planetscale-api-token", envVar: "PLANETSCALE_TOKEN", format: "pscale_tkn_ + 43", gen: func() string { return "pscale_tkn_" + rnd(b64url, 43) }},
	{rule: "prefect-api-token", envVar: "PREFECT_API_KEY", format: "pnu_ + 36", gen: func() string { return "pnu_" + rnd(alnum, 36) }},
	{rule: "rubygems-api-token", envVar: "GEM_HOST_API_KEY", format: "rubygems_ + 48 hex", gen: func() string { return "rubygems_" + rnd(hexLower, 48) }},
	{rule: "shippo-api-token", envVar: "SHIPPO_API_TOKEN", format: "shippo_live_ + 40 hex", gen: func() string { return "shippo_live_" + rnd(hexLower, 40) }},
	{rule: "sentry-user-token", envVar: "SENTRY_AUTH_TOKEN", format: "sntryu_ + 64 hex", gen: func() string { return "sntryu_" + rnd(hexLower, 64) }},
	{rule: "vault-service-token", envVar: "VAULT_TOKEN", format: "hvs. + 95", gen: func() string { return "hvs." + rnd(b64url, 95) }},
	{rule: "heroku-api-key-v2", envVar: "HEROKU_API_KEY", format: "HRKU-AA + 58", gen: func() string { return "HRKU-AA" + rnd(b64url, 58) }},
	{rule: "notion-api-token", envVar: "NOTION_TOKEN", format: "ntn_ + 11 digits + 35", gen: func() string { return "ntn_" + rnd(digits, 11) + rnd(alnum, 35) }},
	{rule: "mailgun-private-api-token", envVar: "MAILGUN_API_KEY", format: "key- + 32 hex next to 'mailgun'", gen: func() string { return "key-" + rnd(hexLower, 32) }, contexts: []string{"env", "yaml", "json"}},
	{rule: "perplexity-api-key", envVar: "PPLX_API_KEY", format: "pplx- + 48", gen: func() string { return "pplx-" + rnd(alnum, 48) }},
	{rule: "square-access-token", envVar: "SQUARE_ACCESS_TOKEN", format: "EAAA + 60", gen: func() string { return "EAAA" + rnd(b64url, 60) }},
	{rule: "easypost-api-token", envVar: "EASYPOST_API_KEY", format: "EZAK + 54", gen: func() string { return "EZAK" + rnd(alnum, 54) }},
	{rule: "duffel-api-token", envVar: "DUFFEL_ACCESS_TOKEN", format: "duffel_live_ + 43", gen: func() string { return "duffel_live_" + rnd(b64url, 43) }},
	{rule: "readme-api-token", envVar: "README_API_KEY", format: "rdme_ + 70", gen: func() string { return "rdme_" + rnd(lowalnum, 70) }},
	{rule: "flyio-access-token", envVar: "FLY_API_TOKEN", format: "fo1_ + 43", gen: func() string { return "fo1_" + rnd(b64url, 43) }},
	{rule: "infracost-api-token", envVar: "INFRACOST_API_KEY", format: "ico- + 32", gen: func() string { return "ico-" + rnd(alnum, 32) }},
	{rule: "gatehouse-api-key", envVar: "GATEHOUSE_API_KEY", format: "Gatehouse ghk_ + 43 base64url", gen: func() string { return "ghk_" + rnd(b64url, 43) }},
	{rule: "gatehouse-client-secret", envVar: "GATEHOUSE_CLIENT_SECRET", format: "Gatehouse ghs_ + 43 base64url", gen: func() string { return "ghs_" + rnd(b64url, 43) }},
	{rule: "gatehouse-admin-token", envVar: "GATEHOUSE_ADMIN_TOKEN", format: "Gatehouse gha_ + 48 base64url", gen: func() string { return "gha_" + rnd(b64url, 48) }},
	{rule: "gatehouse-refresh-token", envVar: "GATEHOUSE_REFRESH_TOKEN", format: "Gatehouse ghr_ + 43 base64url", gen: func() string { return "ghr_" + rnd(b64url, 43) }},
}

// contexts embed a secret s (whose environment variable is v) in text.
var contexts = map[string]func(v, s string) string{
	"env": func(v, s string) string {
		return fmt.Sprintf("# production settings\nAPP_ENV=production\nLOG_LEVEL=info\n%s=%s\nPORT=8080\n", v, s)
	},
	"json": func(v, s string) string {
		content, _ := json.Marshal(fmt.Sprintf("NODE_ENV=production\n%s=%s\nREDIS_HOST=cache.internal\n", v, s))
		return fmt.Sprintf(`{"tool":"read_file","path":"/srv/app/.env","content":%s,"size":%d}`, content, 60+len(s))
	},
	"shell": func(v, s string) string {
		return fmt.Sprintf("  501  cd ~/src/billing\n  502  export %s=%s\n  503  make deploy\n  504  git status\n", v, s)
	},
	"bearer": func(v, s string) string {
		return fmt.Sprintf("$ curl -sS -H \"Authorization: Bearer %s\" -H 'Accept: application/json' https://api.internal.example/v2/projects\n{\"projects\":[]}\n", s)
	},
	"log": func(v, s string) string {
		return fmt.Sprintf("2025-10-14T09:12:44.512Z ERROR client.go:212 upstream call failed status=401 config={\"endpoint\":\"https://api.internal.example\",\"%s\":\"%s\",\"timeout\":30}\n", strings.ToLower(v), s)
	},
	"trace": func(v, s string) string {
		return fmt.Sprintf("Traceback (most recent call last):\n  File \"/app/sync.py\", line 88, in run\n    client = Client(token=\"%s\", retries=3)\n  File \"/app/client.py\", line 17, in __init__\n    raise AuthError(\"invalid credentials\")\nAuthError: invalid credentials\n", s)
	},
	"python": func(v, s string) string {
		return fmt.Sprintf("import requests\n\n%s = \"%s\"\n\ndef fetch(path):\n    return requests.get(BASE + path, headers={\"Authorization\": f\"Bearer {%s}\"})\n", v, s, v)
	},
	"go": func(v, s string) string {
		return fmt.Sprintf("package main\n\nconst defaultToken = \"%s\" // TODO: move to vault\n\nfunc main() {\n\trun(defaultToken)\n}\n", s)
	},
	"yaml": func(v, s string) string {
		return fmt.Sprintf("services:\n  worker:\n    image: registry.example/worker:1.4.2\n    environment:\n      %s: %s\n      LOG_LEVEL: debug\n", v, s)
	},
	"js": func(v, s string) string {
		return fmt.Sprintf("const config = {\n  region: 'eu-west-1',\n  apiKey: '%s',\n  retries: 2,\n};\nmodule.exports = config;\n", s)
	},
}

var defaultContexts = []string{"env", "json", "shell", "bearer", "log", "trace", "python", "go", "yaml", "js"}

func main() {
	var out []sample
	add := func(s sample) { out = append(out, s) }

	// Positives: every family in three or four contexts.
	for fi, f := range families {
		ctxs := f.contexts
		if ctxs == nil {
			ctxs = defaultContexts
		}
		n := 3
		if fi%3 == 0 {
			n = 4
		}
		start := rng.IntN(len(ctxs))
		for k := 0; k < n; k++ {
			name := ctxs[(start+k)%len(ctxs)]
			s := f.gen()
			add(sample{
				ID:     fmt.Sprintf("pos-%s-%s-%d", f.rule, name, k),
				Text:   contexts[name](f.envVar, s),
				Expect: []expect{{Category: "secret", Type: f.rule, Match: s}},
				Source: "synthetic: format of " + f.format + ", random body, in " + name + " text",
			})
		}
	}
	addStructuredPositives(add)
	addNegatives(add)

	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for _, s := range out {
		if err := enc.Encode(s); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

// addStructuredPositives adds secrets whose surrounding format matters:
// private keys, service-account JSON, connection strings, generic
// "name = value" assignments.
func addStructuredPositives(add func(sample)) {
	pos := func(id, rule, match, text, source string) {
		add(sample{ID: id, Text: text, Expect: []expect{{Category: "secret", Type: rule, Match: match}}, Source: source})
	}
	// PEM private keys.
	for i, kind := range []string{"RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY"} {
		k := pem(kind, between(8, 25))
		var text string
		switch i % 3 {
		case 0:
			text = "$ cat ~/.ssh/deploy_key\n" + k + "\n$ ls -la ~/.ssh\n"
		case 1:
			text = "tls:\n  cert_file: /etc/ssl/server.crt\n  key: |\n    " + strings.ReplaceAll(k, "\n", "\n    ") + "\n"
			k = strings.ReplaceAll(k, "\n", "\n    ")
		default:
			text = "Here is the key you asked for:\n\n```\n" + k + "\n```\n"
		}
		pos(fmt.Sprintf("pos-private-key-%d", i), "private-key", k, text, "synthetic: PEM "+kind+" with random base64 body")
	}
	// GCP service-account key files, as a tool result (JSON escapes the newlines).
	for i := 0; i < 4; i++ {
		k := strings.ReplaceAll(pem("PRIVATE KEY", 26), "\n", `\n`) + `\n`
		proj := "acme-" + rnd(lower, 6) + "-" + rnd(digits, 6)
		text := fmt.Sprintf(`{"type": "service_account", "project_id": "%s", "private_key_id": "%s", "private_key": "%s", "client_email": "ci-deployer@%s.iam.gserviceaccount.com", "client_id": "%s", "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token"}`,
			proj, rnd(hexLower, 40), k, proj, rnd(digits, 21))
		if i%2 == 1 {
			b, _ := json.Marshal(map[string]any{"tool": "read_file", "result": map[string]string{"path": "gcp-key.json", "content": text}})
			text = string(b)
			kk, _ := json.Marshal(k)
			k = strings.Trim(string(kk), `"`)
		}
		k = k[:40] // the label is the start of the key; any overlap counts
		pos(fmt.Sprintf("pos-gcp-service-account-%d", i), "private-key", k, text, "synthetic: GCP service-account key JSON, random key body")
	}
	// Connection strings with passwords.
	for i, f := range []string{
		"DATABASE_URL=postgres://billing:%s@db-primary.internal:5432/billing?sslmode=require\n",
		"spring.datasource.url=jdbc:mysql://10.0.3.17:3306/shop\n# migrated from mysql://shop_rw:%s@10.0.3.17:3306/shop\n",
		`{"mongo_uri": "mongodb+srv://analytics:%s@cluster0.abcd1.mongodb.net/events?retryWrites=true"}`,
		"CELERY_BROKER_URL=amqp://celery:%s@rabbitmq:5672/vhost\n",
		"redis-cli -u redis://:%s@cache.internal:6379/0 ping\n",
		"2025-10-14 09:12:44 WARN connecting to postgresql://reporting:%s@replica-2.db.internal/reports failed: timeout\n",
		"git remote add origin https://deploy-bot:%s@git.internal.example/platform/infra.git\n",
		"mysql://root:%s@127.0.0.1:3306/test_db",
	} {
		pw := rnd(alnum, between(12, 24))
		if i%3 == 0 {
			pw = rnd(alnum, 8) + "!" + rnd(digits, 3)
		}
		pos(fmt.Sprintf("pos-url-password-%d", i), "url-password", pw, fmt.Sprintf(f, pw), "synthetic: connection string with a random password")
	}
	// Generic name = value secrets in code, config, JSON and logs.
	generic := []string{
		"api_key = \"%s\"\n",
		"client_secret: %s\n",
		"SECRET_KEY='%s'\n",
		`{"name": "payments", "apiKey": "%s", "enabled": true}`,
		"  \"auth_token\": \"%s\",\n",
		"DB_PASSWORD=%s\n",
		"$config['encryption_key'] = '%s';\n",
		"2025-10-14T10:01:02Z DEBUG loaded settings access_token=%s region=eu-west-1\n",
		"webhook_secret := \"%s\"\n",
		"<add key=\"ApiSecret\" value=\"%s\" />\n",
		"export PAYMENT_GATEWAY_SECRET=%s\n",
		"password: \"%s\"\n",
		"let credentials = { user: 'svc-reports', password: '%s' };\n",
		"consumer_secret=%s\n",
		"x-api-key: %s\n",
		"private_token = \"%s\"\n",
	}
	for i, f := range generic {
		var v string
		switch i % 4 {
		case 0:
			v = rnd(alnum, 32)
		case 1:
			v = rnd(hexLower, 40)
		case 2:
			v = rnd(b64std, 40)
		default:
			v = rnd(alnum, 12) + "-" + rnd(alnum, 12)
		}
		if strings.Contains(f, "assword") && i%2 == 1 {
			v = rnd(alnum, 10) + rnd("!#%^*", 1) + rnd(alnum, 6)
		}
		pos(fmt.Sprintf("pos-generic-%d", i), "generic-api-key", v, fmt.Sprintf(f, v), "synthetic: generic secret assignment, random value")
	}
	// Several secrets in one tool result.
	gh, aws, sl := "ghp_"+rnd(alnum, 36), "AKIA"+rnd(upper+"234567", 16), "xoxb-"+rnd(digits, 11)+"-"+rnd(digits, 12)+"-"+rnd(alnum, 24)
	add(sample{ID: "pos-multi-0", Text: fmt.Sprintf(`{"results":[{"file":"ci/deploy.sh","line":12,"text":"GITHUB_TOKEN=%s"},{"file":"terraform/prod.tfvars","line":3,"text":"access_key = \"%s\""},{"file":"bot/config.json","line":7,"text":"\"slack\": \"%s\""}]}`, gh, aws, sl),
		Expect: []expect{{"secret", "github-pat", gh}, {"secret", "aws-access-token", aws}, {"secret", "slack-bot-token", sl}},
		Source: "synthetic: code-search tool result with three random credentials"})
	// Strings joined with newlines, as the engine passes JSON string values.
	ant := "sk-ant-api03-" + rnd(b64url, 93) + "AA"
	add(sample{ID: "pos-joined-0", Text: "Deploy notes\nrotate the key below after the demo\n" + ant + "\nowner: platform-team",
		Expect: []expect{{"secret", "anthropic-api-key", ant}}, Source: "synthetic: random Anthropic key among JSON string values joined by newlines"})
}

// addNegatives adds hard negatives: text that looks like secrets but is not.
func addNegatives(add func(sample)) {
	neg := func(id, text, source string) {
		add(sample{ID: id, Text: text, Expect: nil, Source: "hard negative: " + source})
	}
	uuid := func() string {
		return rnd(hexLower, 8) + "-" + rnd(hexLower, 4) + "-4" + rnd(hexLower, 3) + "-" + rnd("89ab", 1) + rnd(hexLower, 3) + "-" + rnd(hexLower, 12)
	}
	sha := func() string { h := sha1.Sum([]byte(rnd(alnum, 20))); return hex.EncodeToString(h[:]) }
	sha2 := func() string { h := sha256.Sum256([]byte(rnd(alnum, 20))); return hex.EncodeToString(h[:]) }
	lorem := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua."

	for i := 0; i < 12; i++ {
		neg(fmt.Sprintf("neg-uuid-%d", i), fmt.Sprintf(`{"id":"%s","request_id":"%s","status":"ok","items":[{"id":"%s","name":"Quarterly report"}]}`, uuid(), uuid(), uuid()), "UUID v4 ids in JSON")
	}
	for i := 0; i < 10; i++ {
		neg(fmt.Sprintf("neg-gitsha-%d", i), fmt.Sprintf("commit %s\nAuthor: Dev Example <dev@example.com>\nDate:   Tue Oct 14 09:12:44 2025 +0200\n\n    Fix token refresh race (#%d)\n\nMerge: %s %s\n", sha(), 1000+i, sha()[:7], sha()[:7]), "git log with commit SHAs")
	}
	for i := 0; i < 10; i++ {
		neg(fmt.Sprintf("neg-sha256-%d", i), fmt.Sprintf("%s  dist/gatehouse_1.%d.0_linux_amd64.tar.gz\n%s  dist/gatehouse_1.%d.0_darwin_arm64.tar.gz\n", sha2(), i, sha2(), i), "sha256 checksums file")
	}
	for i := 0; i < 6; i++ {
		neg(fmt.Sprintf("neg-digest-%d", i), fmt.Sprintf(`{"image":"registry.example/api","digest":"sha256:%s","layers":["sha256:%s"]}`, sha2(), sha2()), "container image digests")
	}
	for i := 0; i < 8; i++ {
		blob := base64.StdEncoding.EncodeToString([]byte(lorem[:40+i*10] + " " + rnd(lower, 10)))
		neg(fmt.Sprintf("neg-base64-%d", i), fmt.Sprintf(`{"attachment":{"filename":"notes.txt","content_type":"text/plain","data":"%s"}}`, blob), "base64 of plain text in an attachment")
	}
	for i := 0; i < 6; i++ {
		neg(fmt.Sprintf("neg-integrity-%d", i), fmt.Sprintf(`"node_modules/left-pad-%d": {"version": "1.3.%d", "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.%d.tgz", "integrity": "sha512-%s=="}`, i, i, i, rnd(b64std, 86)), "npm lockfile integrity hashes")
	}
	// Documentation examples and placeholders.
	docs := []string{
		"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
		"export AWS_ACCESS_KEY_ID=AKIAI44QH8DHBEXAMPLE\n",
		"OPENAI_API_KEY=your-api-key-here\n",
		"api_key = \"YOUR_API_KEY\"\n",
		"STRIPE_SECRET_KEY=sk_live_xxxxxxxxxxxxxxxxxxxxxxxx\n",
		"GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
		"Authorization: Bearer <token>\n",
		"Set the header `Authorization: Bearer ${API_TOKEN}` on every request.\n",
		"password: \"{{ vault_db_password }}\"\n",
		"token: ${{ secrets.GITHUB_TOKEN }}\n",
		"DB_PASSWORD=${DB_PASSWORD}\n",
		"client_secret: <your-client-secret>\n",
		"SLACK_BOT_TOKEN=xoxb-your-bot-token\n",
		"api_key: REPLACE_ME\n",
		"secret_key = \"changeme\"\n",
		"export ANTHROPIC_API_KEY=sk-ant-...\n",
		"password = \"********\"\n",
		"DATABASE_URL=postgres://user:password@localhost:5432/mydb\n",
		"DATABASE_URL=postgres://${DB_USER}:${DB_PASSWORD}@${DB_HOST}/app\n",
		"mongodb://<username>:<password>@cluster0.example.mongodb.net/test\n",
		"redis://:changeme@localhost:6379\n",
		"token = \"%TOKEN%\"\n",
		"api_key = \"${API_KEY}\"\n",
		"The key looks like `sk_live_...` in the dashboard; never paste it here.\n",
		"AKIA followed by 16 characters is an AWS access key id.\n",
		"Use a token of the form ghp_ plus 36 characters.\n",
		"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END PUBLIC KEY-----\n",
		"-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----\n",
		"Your private key is stored in ~/.ssh/id_ed25519 (never share it); the public key in ~/.ssh/id_ed25519.pub.\n",
		"jwt: the token has three parts, header.payload.signature, each base64url encoded.\n",
	}
	for i, d := range docs {
		neg(fmt.Sprintf("neg-placeholder-%d", i), d, "documentation example or placeholder")
	}
	// Code that reads secrets from elsewhere.
	code := []string{
		"api_key = os.environ[\"API_KEY\"]\n",
		"token = os.getenv(\"GITHUB_TOKEN\")\nif not token:\n    raise SystemExit(\"GITHUB_TOKEN is not set\")\n",
		"const token = req.headers.authorization;\n",
		"secret := os.Getenv(\"WEBHOOK_SECRET\")\n",
		"password = getpass.getpass(\"Password: \")\n",
		"apiKey: process.env.STRIPE_SECRET_KEY,\n",
		"let key = keyring.get_password(\"gatehouse\", user)?;\n",
		"AUTH_TOKEN=$(vault kv get -field=token secret/ci)\n",
		"client_secret = settings.OAUTH_CLIENT_SECRET\n",
		"access_token = response.json()[\"access_token\"]\n",
		"func (c *Client) token() string { return c.cfg.Token }\n",
		"if len(apiKey) != 40 { return errInvalidKey }\n",
		"private_key = load_pem_private_key(data, password=None)\n",
		"keyboard_layout = \"us-intl\"\nmonkey_patch_enabled = true\n",
		"public_key_id = \"k1\"\ncsrf_token = request.cookies.get(\"csrftoken\")\n",
		"token_url = \"https://oauth2.googleapis.com/token\"\n",
		"key_length = 2048\nsecret_name = \"prod/db/password\"\n",
		"AccessibilityService.enable(accessibility_id)\n",
	}
	for i, c := range code {
		neg(fmt.Sprintf("neg-code-%d", i), c, "code reading a secret from the environment or naming one")
	}
	// Ids that are random but public.
	for i := 0; i < 8; i++ {
		neg(fmt.Sprintf("neg-ids-%d", i), fmt.Sprintf(`{"customer":"cus_%s","charge":"ch_%s","invoice":"in_%s","amount":%d,"currency":"eur","agent":"agt_%s","client_id":"ghc_%s"}`,
			rnd(alnum, 14), rnd(alnum, 24), rnd(alnum, 24), rng.IntN(100000), rnd("0123456789abcdefghjkmnpqrstvwxyz", 26), rnd(b64url, 22)), "public object ids (Stripe customer/charge, agent and OAuth client ids)")
	}
	for i := 0; i < 6; i++ {
		neg(fmt.Sprintf("neg-slackids-%d", i), fmt.Sprintf(`{"ok":true,"channel":"C%s","ts":"%d.%06d","message":{"user":"U%s","text":"deploy finished in %ds","team":"T%s"}}`,
			rnd(upper+digits, 10), 1760000000+rng.IntN(1e6), rng.IntN(1e6), rnd(upper+digits, 10), rng.IntN(300), rnd(upper+digits, 8)), "Slack API result with channel/user/team ids")
	}
	// Prose, lorem, URLs.
	prose := []string{
		lorem,
		"They said the key to the survey was to ask money questions last; the keynote covers the journey.",
		"Tokens are counted per request: the model saw 1532 input tokens and produced 211 output tokens.",
		"The secret to good sourdough is time. Access to the kitchen is from the back door.",
		"Press any key to continue. The access log rotates daily; credentials are managed by the identity team.",
		"See https://docs.example.com/api/authentication#tokens and https://github.com/example/repo/blob/main/README.md for details.",
		"Connect with psql -h db.internal -U reporting reports and enter the password when prompted.",
		"git clone https://github.com/example/project.git && cd project && make test",
		"Visit http://user@intranet.example.local/wiki/Onboarding for the onboarding guide.",
		"The monkey in the turkey costume took the keys to the keyboard shop.",
		"Password rules: at least 12 characters, one digit, and no reuse of the last 5 passwords.",
		"API rate limits: 100 requests per minute per api key; exceeding it returns 429.",
		"Rotate secrets every 90 days; the rotation job runs at 02:00 UTC.",
		"We store only a SHA-256 hash of each API key, never the key itself.",
		"eyes on the prize: they eye every key metric every week.",
	}
	for i, p := range prose {
		neg(fmt.Sprintf("neg-prose-%d", i), p, "prose mentioning keys, tokens or passwords")
	}
	// Miscellaneous look-alikes.
	misc := []string{
		fmt.Sprintf(`{"next_page_token":"%s","items":[]}`, base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"offset":%d,"limit":50}`, rng.IntN(5000))))),
		fmt.Sprintf(`{"etag":"W/\"%s\"","last_modified":"2025-10-14T09:12:44Z"}`, rnd(hexLower, 32)),
		fmt.Sprintf("color: #%s; background: #%s;", rnd(hexLower, 6), rnd(hexLower, 6)),
		fmt.Sprintf("version: 1.%d.%d\nbuild: %s\n", rng.IntN(20), rng.IntN(20), sha()[:12]),
		fmt.Sprintf("password_hash = \"$2b$12$%s\"\n", rnd(b64std, 53)),
		fmt.Sprintf("session_id=%s; Path=/; HttpOnly", rnd(hexLower, 32)),
		fmt.Sprintf("trace_id=%s span_id=%s", rnd(hexLower, 32), rnd(hexLower, 16)),
		fmt.Sprintf("Order #%d shipped via DHL tracking %s", rng.IntN(1e6), rnd(digits, 10)),
		fmt.Sprintf(`{"kid":"%s","kty":"RSA","use":"sig","alg":"RS256","e":"AQAB"}`, rnd(hexLower, 16)),
		fmt.Sprintf("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI%s deploy@ci", rnd(b64std, 43)),
		fmt.Sprintf("ISBN 978-%d-%d-%d", rng.IntN(10), rng.IntN(100000), rng.IntN(1000)),
		fmt.Sprintf("Your verification code is %s.", rnd(digits, 6)),
		fmt.Sprintf("md5(%s) = %s", rnd(lower, 8), rnd(hexLower, 32)),
		fmt.Sprintf("s3://backups-%s/db/2025-10-14.sql.gz", rnd(lower, 6)),
		fmt.Sprintf(`{"key":"user:%d:profile","ttl":3600}`, rng.IntN(1e6)),
		fmt.Sprintf(`{"idempotency_key":"%s"}`, uuid()),
		fmt.Sprintf("The quick brown fox %s jumps", rnd(lower, 6)),
		"key = \"value\"\nsecret = false\ntoken_count = 4096\n",
		"-----BEGIN PGP SIGNATURE-----\n\niQEzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n",
		"ssh-keygen -t ed25519 -C \"you@example.com\" -f ~/.ssh/id_ed25519\n",
	}
	more := []string{
		fmt.Sprintf(`{"data":[],"cursor":"%s","has_more":true}`, base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("created_at:%d|id:%d", 1760000000+rng.IntN(1e6), rng.IntN(1e6))))),
		fmt.Sprintf(`{"continuation_token":"%s"}`, rnd(alnum, 40)),
		fmt.Sprintf("CONTAINER ID   IMAGE\n%s   postgres:16\n", rnd(hexLower, 12)),
		fmt.Sprintf(`{"Id":"sha256:%s","RepoTags":["api:latest"]}`, sha2()),
		fmt.Sprintf("arn:aws:iam::%s:role/ci-deployer", rnd(digits, 12)),
		fmt.Sprintf(`{"ResponseMetadata":{"RequestId":"%s","HTTPStatusCode":200},"ETag":"\"%s\""}`, strings.ToUpper(rnd(hexLower, 16)), rnd(hexLower, 32)),
		fmt.Sprintf("/subscriptions/%s/resourceGroups/rg-prod/providers/Microsoft.Web/sites/api", uuid()),
		fmt.Sprintf(`{"metadata":{"name":"api-%s","uid":"%s","resourceVersion":"%d"}}`, rnd(lowalnum, 5), uuid(), rng.IntN(1e8)),
		fmt.Sprintf("instance i-0%s in subnet subnet-0%s is running", rnd(hexLower, 16), rnd(hexLower, 16)),
		fmt.Sprintf(`{"cache_key":"%s","hit":true}`, sha2()),
		fmt.Sprintf(`{"partition_key":"%s","sort_key":"2025-10-14"}`, uuid()),
		fmt.Sprintf("Correlation-Key: %s", uuid()),
		fmt.Sprintf(`{"public_key":"%s","algorithm":"ed25519"}`, rnd(b64std, 43)+"="),
		fmt.Sprintf(`{"api_version":"2024-06-01","request_key":"%s"}`, rnd(hexLower, 24)),
		fmt.Sprintf("x-amz-request-id: %s\nx-amz-id-2: %s", strings.ToUpper(rnd(hexLower, 16)), rnd(b64std, 76)),
	}
	for i, m := range more {
		neg(fmt.Sprintf("neg-more-%d", i), m, "public id, cursor, hash or key name that is not a secret")
	}
	for i, m := range misc {
		neg(fmt.Sprintf("neg-misc-%d", i), m, "random-looking but public value")
	}
}

package secrets

import (
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
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

func TestScan(t *testing.T) {
	d := newDetector(t, Options{})
	cases := []struct {
		name, text, typ, secret string
		conf                    inspect.Confidence
	}{
		{"aws", "aws_access_key_id = AKIAZ3MHQ7X2LP4RTW5N\n", "aws-access-token", "AKIAZ3MHQ7X2LP4RTW5N", inspect.High},
		{"aws_example", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n", "", "", 0},
		{"github_json", `{"token": "ghp_4f8Kq2LmZx9Wv3Rt7Yp1Ns6Bd0Hc5Ja8Ue2X"}`, "github-pat", "ghp_4f8Kq2LmZx9Wv3Rt7Yp1Ns6Bd0Hc5Ja8Ue2X", inspect.High},
		{"generic", `api_key = "h7Fq93kLmZ2xWv8Rt4Yp1Ns6Bd0Hc5Ja"`, "generic-api-key", "h7Fq93kLmZ2xWv8Rt4Yp1Ns6Bd0Hc5Ja", inspect.Medium},
		{"generic_env_lookup", `api_key = os.environ["API_KEY"]`, "", "", 0},
		{"gatehouse_key", "curl -H 'X-Api-Key: ghk_Xq3Lm9Zp2Rt7Wv4Yk8Ns1Bd6Hc0Ja5Ue3Xf7Gq2Lm9Z' https://gw", "gatehouse-api-key", "ghk_Xq3Lm9Zp2Rt7Wv4Yk8Ns1Bd6Hc0Ja5Ue3Xf7Gq2Lm9Z", inspect.High},
		{"gatehouse_client_id", `{"client_id":"ghc_Xq3Lm9Zp2Rt7Wv4Yk8Ns1B"}`, "", "", 0},
		{"url_password", "DATABASE_URL=postgres://app:Xk29fLq8mZ@db.internal:5432/app", "url-password", "Xk29fLq8mZ", inspect.High},
		{"url_placeholder", "postgres://user:password@localhost/db", "", "", 0},
		{"password_special", `password: "hT7q!Lm2#Zp9Wv"`, "password-assignment", "hT7q!Lm2#Zp9Wv", inspect.Medium},
		{"password_hash", `password_hash = "$2b$12$abcdefghijklmnopqrstuuAbCdEfGhIjKlMnOpQrStUvWxYz01234"`, "", "", 0},
		{"pagination", `{"next_page_token":"eyJvZmZzZXQiOjUwLCJsaW1pdCI6NTB9"}`, "", "", 0},
		{"prose", "They said the key to the survey was the keyboard layout.", "", "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := d.Scan(c.text, nil)
			checkFindings(t, c.text, fs)
			if c.typ == "" {
				if len(fs) > 0 {
					t.Fatalf("want no findings, got %+v", fs)
				}
				return
			}
			if len(fs) != 1 {
				t.Fatalf("want one finding, got %+v", fs)
			}
			f := fs[0]
			if f.Type != c.typ || c.text[f.Start:f.End] != c.secret || f.Confidence != c.conf {
				t.Fatalf("got %s %q %s, want %s %q %s", f.Type, c.text[f.Start:f.End], f.Confidence, c.typ, c.secret, c.conf)
			}
		})
	}
}

func TestDisabledRules(t *testing.T) {
	d := newDetector(t, Options{DisabledRules: []string{"github-pat"}})
	for _, f := range d.Scan("GITHUB_TOKEN=ghp_4f8Kq2LmZx9Wv3Rt7Yp1Ns6Bd0Hc5Ja8Ue2X\n", nil) {
		if f.Type == "github-pat" {
			t.Fatalf("disabled rule found %+v", f)
		}
	}
	if got := d.Stats().Disabled; !slices.Equal(got, []string{"github-pat"}) {
		t.Fatalf("Stats().Disabled = %v", got)
	}
	if _, err := New(Options{DisabledRules: []string{"github-pats"}}); err == nil {
		t.Fatal("an unknown rule id was accepted")
	}
	if _, err := New(Options{DisabledRules: []string{"gatehouse-api-key", "password-assignment", "url-password"}}); err != nil {
		t.Fatalf("disabling the detector's own rules: %v", err)
	}
}

func TestStats(t *testing.T) {
	s := newDetector(t, Options{}).Stats()
	t.Logf("gitleaks %s: %d rules in its config; %d rules run (%d on windows around keyword hits)", gitleaksVersion, s.GitleaksRules, s.Rules, s.Windowed)
	t.Logf("whole text when a keyword occurs: %v", s.WholeText)
	t.Logf("without keywords (always run): %v", s.NoKeywords)
	t.Logf("RE2 cannot compile: %v; path only: %v; path scoped: %v", s.NotRE2, s.PathOnly, s.PathScoped)
	if s.GitleaksRules < 200 || s.Rules < 200 {
		t.Errorf("too few rules: %+v", s)
	}
	if len(s.NotRE2) > 0 {
		t.Errorf("RE2 could not compile %v", s.NotRE2)
	}
	if len(s.NoKeywords) > 0 {
		t.Errorf("rules without keywords run on every text: %v", s.NoKeywords)
	}
}

// TestWindowsMatchWholeText checks that running rules on windows around
// keyword hits finds what running them over the whole text finds, on the
// corpus and on texts made of corpus pieces.
func TestWindowsMatchWholeText(t *testing.T) {
	d := newDetector(t, Options{})
	whole := newDetector(t, Options{})
	whole.wholeText = true
	f, err := os.Open("../../../testdata/inspect/secrets.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	samples, err := inspect.ReadCorpus(f)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{crmJSON(), mixedText()}
	for _, s := range samples {
		texts = append(texts, s.Text)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	n := 100
	if raceEnabled || testing.Short() {
		n = 10 // RE2's compiled WebAssembly is slow under the race detector
	}
	for range n {
		var sb strings.Builder
		for range 1 + rng.IntN(6) {
			sb.WriteString(samples[rng.IntN(len(samples))].Text)
			sb.WriteString([]string{"\n", " ", "", "\",\"", "\t"}[rng.IntN(5)])
		}
		texts = append(texts, sb.String())
	}
	for i, text := range texts {
		got, want := d.Scan(text, nil), whole.Scan(text, nil)
		if !slices.Equal(got, want) {
			t.Errorf("text %d: windows found %+v, whole text %+v", i, got, want)
		}
	}
}

func TestConcurrentScan(t *testing.T) {
	d := newDetector(t, Options{})
	texts := []string{crmJSON(), "GITHUB_TOKEN=ghp_4f8Kq2LmZx9Wv3Rt7Yp1Ns6Bd0Hc5Ja8Ue2X\n", mixedText()[:8000]}
	want := make([][]inspect.Finding, len(texts))
	for i, s := range texts {
		want[i] = d.Scan(s, nil)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 20 {
				i := (g + k) % len(texts)
				if got := d.Scan(texts[i], nil); !slices.Equal(got, want[i]) {
					t.Errorf("concurrent scan of text %d: %+v, want %+v", i, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestKeywordMatcher(t *testing.T) {
	kws := []string{"key", "api", "ey", "hvs.", "s.", "-----begin", "api_key"}
	m := newKeywordMatcher(slices.Clone(kws))
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "aAkKeEyYpPiIsShHvV._-bBgGnN -"
	for range 500 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		text := string(b)
		var want []hit
		lower := strings.ToLower(text)
		for end := 1; end <= len(text); end++ {
			for k, kw := range kws {
				if strings.HasSuffix(lower[:end], kw) {
					want = append(want, hit{keyword: int32(k), end: end})
				}
			}
		}
		got := m.find(text, nil)
		sortHits := func(h []hit) {
			slices.SortFunc(h, func(a, b hit) int {
				if a.end != b.end {
					return a.end - b.end
				}
				return int(a.keyword - b.keyword)
			})
		}
		sortHits(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%q: got %v, want %v", text, got, want)
		}
		if m.contains(text) != (len(want) > 0) {
			t.Fatalf("%q: contains = %v", text, !(len(want) > 0))
		}
	}
}

func TestShannonEntropy(t *testing.T) {
	for _, c := range []struct {
		s    string
		want float64
	}{{"", 0}, {"aaaa", 0}, {"ab", 1}, {"abcd", 2}, {"0123456789abcdef", 4}} {
		if got := shannonEntropy(c.s); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("shannonEntropy(%q) = %v, want %v", c.s, got, c.want)
		}
	}
}

package secrets

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"gatehouse/internal/inspect"
)

// crmJSON is a typical tool result with no secrets: a page of CRM contacts
// and their open issues, about 4 KB, as the engine passes it (the JSON text).
func crmJSON() string {
	rng := rand.New(rand.NewPCG(1, 2))
	first := []string{"Ada", "Grace", "Alan", "Barbara", "Ken", "Radia", "Frances", "Donald", "Margaret", "Edsger"}
	last := []string{"Lovelace", "Hopper", "Turing", "Liskov", "Thompson", "Perlman", "Allen", "Knuth", "Hamilton", "Dijkstra"}
	subjects := []string{"Invoice for March is missing the VAT line", "Cannot log in after the password reset",
		"Request to upgrade the plan to Enterprise", "Key account review meeting next Monday",
		"They asked about the API rate limits for the survey export", "Shipping address changed, please update the order"}
	type issue struct {
		ID       string `json:"id"`
		Subject  string `json:"subject"`
		Status   string `json:"status"`
		Priority string `json:"priority"`
		Created  string `json:"created_at"`
	}
	type contact struct {
		ID      string  `json:"id"`
		Name    string  `json:"name"`
		Email   string  `json:"email"`
		Company string  `json:"company"`
		Stage   string  `json:"lifecycle_stage"`
		Owner   string  `json:"owner_id"`
		Revenue float64 `json:"annual_revenue"`
		Issues  []issue `json:"open_issues"`
	}
	var cs []contact
	for i := 0; len(cs) < 9; i++ {
		f, l := first[rng.IntN(len(first))], last[rng.IntN(len(last))]
		c := contact{ID: fmt.Sprintf("cnt_%08d", rng.IntN(1e8)), Name: f + " " + l,
			Email: strings.ToLower(f+"."+l) + "@example.com", Company: l + " Analytics Ltd",
			Stage: "customer", Owner: fmt.Sprintf("usr_%06d", rng.IntN(1e6)), Revenue: float64(rng.IntN(5e6))}
		for j := 0; j < 1+rng.IntN(2); j++ {
			c.Issues = append(c.Issues, issue{ID: fmt.Sprintf("ISS-%d", 1000+rng.IntN(9000)),
				Subject: subjects[rng.IntN(len(subjects))], Status: "open", Priority: "normal",
				Created: fmt.Sprintf("2025-%02d-%02dT10:%02d:00Z", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(60))})
		}
		cs = append(cs, c)
	}
	b, _ := json.MarshalIndent(map[string]any{"contacts": cs, "next_page_token": "cGFnZT0y", "total": 212}, "", "  ")
	return string(b)
}

// mixedText is ~64 KB of prose, Go and Python code, logs and configuration
// with no secrets.
func mixedText() string {
	parts := []string{
		"The survey results they sent on Monday show that most of the keyboard shortcuts are unknown to new users. We should document the key bindings and the access rules in the onboarding guide.\n",
		"func (s *Server) handle(w http.ResponseWriter, r *http.Request) {\n\ttoken := r.Header.Get(\"Authorization\")\n\tif token == \"\" {\n\t\thttp.Error(w, \"missing token\", http.StatusUnauthorized)\n\t\treturn\n\t}\n\tkey := cache.Key(r.URL.Path)\n\tlog.Printf(\"access %s key=%s\", r.URL.Path, key)\n}\n",
		"def get_client(config):\n    api_key = os.environ[\"API_KEY\"]\n    secret = config.get(\"secret_name\")\n    return Client(api_key=api_key, timeout=30)\n",
		"2025-03-14T10:22:31Z INFO request_id=7f9c2ba4-e88f-4a2b-9d3c-5e1f0a8b6c2d method=GET path=/v1/contacts status=200 duration_ms=41 commit=3f786850e387550fdab836ed7e6dc881de23001b\n",
		"[database]\nhost = \"db.internal\"\nport = 5432\nuser = \"app\"\npassword = \"${DB_PASSWORD}\"\npool_size = 20\n",
		"Monkey patching the token parser is not a good idea; use the public key from the JWKS endpoint instead.\n",
	}
	var sb strings.Builder
	for i := 0; sb.Len() < 64<<10; i++ {
		sb.WriteString(parts[i%len(parts)])
	}
	return sb.String()
}

func BenchmarkScan(b *testing.B) {
	d, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, text string }{{"json4k", crmJSON()}, {"mixed64k", mixedText()}} {
		b.Run(c.name, func(b *testing.B) {
			if fs := d.Scan(c.text, nil); len(fs) != 0 {
				b.Fatalf("benchmark text has findings: %+v", fs)
			}
			var dst []inspect.Finding
			b.SetBytes(int64(len(c.text)))
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0, ok := threadCPU()
			for b.Loop() {
				dst = d.Scan(c.text, dst[:0])
			}
			reportCPU(b, cpu0, ok, len(c.text))
		})
	}
}

// reportCPU reports the thread CPU time per op and the throughput it gives.
func reportCPU(b *testing.B, cpu0 time.Duration, ok bool, size int) {
	cpu1, ok1 := threadCPU()
	if !ok || !ok1 || b.N == 0 {
		return
	}
	per := float64(cpu1-cpu0) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/op")
	b.ReportMetric(float64(size)/per*1e3, "cpu-MB/s")
}

// BenchmarkRegexEngines runs every rule's regex over the whole 64 KB mixed
// text (no prefilter), with go-re2 and with the standard library, to compare
// the engines on the same rules.
func BenchmarkRegexEngines(b *testing.B) {
	d, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	text := mixedText()
	std := make([]*regexp.Regexp, len(d.rules))
	for i, r := range d.rules {
		std[i] = regexp.MustCompile(r.re.String())
	}
	b.Run("re2", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			for _, r := range d.rules {
				r.re.FindAllStringSubmatchIndex(text, -1)
			}
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			for _, re := range std {
				re.FindAllStringSubmatchIndex(text, -1)
			}
		}
	})
}

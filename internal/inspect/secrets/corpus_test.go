package secrets

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"gatehouse/internal/inspect"
)

// Targets from issue 6.
const (
	minPrecision = 0.97
	minRecall    = 0.95
)

func TestCorpus(t *testing.T) {
	f, err := os.Open("../../../testdata/inspect/secrets.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	samples, err := inspect.ReadCorpus(f)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	pos, neg := 0, 0
	families := map[string]bool{}
	for _, s := range samples {
		if len(s.Expect) == 0 {
			neg++
		} else {
			pos++
		}
		for _, e := range s.Expect {
			families[e.Type] = true
		}
	}
	if pos < 150 || neg < 150 || len(families) < 40 {
		t.Errorf("corpus: %d positives, %d negatives, %d rule families; want at least 150, 150, 40", pos, neg, len(families))
	}
	scores := inspect.Evaluate(samples, func(s *inspect.Sample) []inspect.Finding {
		fs := d.Scan(s.Text, nil)
		checkFindings(t, s.Text, fs)
		return fs
	}, inspect.DefaultKey)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d samples (%d positive, %d negative, %d rule families)\n", len(samples), pos, neg, len(families))
	fmt.Fprintf(&sb, "%-10s %5s %5s %5s %9s %7s %5s\n", "key", "TP", "FP", "FN", "precision", "recall", "F1")
	for _, s := range scores {
		fmt.Fprintf(&sb, "%-10s %5d %5d %5d %9.3f %7.3f %5.3f\n", s.Key, s.TP, s.FP, s.FN, s.Precision(), s.Recall(), s.F1())
	}
	t.Log("\n" + sb.String())
	for _, s := range scores {
		if len(s.FalsePositives) > 0 {
			t.Logf("%s false positives: %v", s.Key, s.FalsePositives)
		}
		if len(s.FalseNegatives) > 0 {
			t.Logf("%s false negatives: %v", s.Key, s.FalseNegatives)
		}
		if s.Key == string(inspect.CategorySecret) && (s.Precision() < minPrecision || s.Recall() < minRecall) {
			t.Errorf("%s: precision %.3f, recall %.3f; want at least %.2f and %.2f", s.Key, s.Precision(), s.Recall(), minPrecision, minRecall)
		}
	}
}

// checkFindings checks the invariants every scan must keep.
func checkFindings(t testing.TB, text string, fs []inspect.Finding) {
	t.Helper()
	for _, f := range fs {
		if f.Start < 0 || f.End > len(text) || f.Start >= f.End {
			t.Fatalf("finding %+v out of bounds of a %d-byte text", f, len(text))
		}
		if f.Category != inspect.CategorySecret || f.Type == "" || f.Confidence < inspect.Low || f.Confidence > inspect.High {
			t.Fatalf("malformed finding %+v", f)
		}
	}
}

package injection

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/internal/inspect"
)

const corpusPath = "../../../testdata/inspect/injection.jsonl"

func readCorpus(t testing.TB) []inspect.Sample {
	t.Helper()
	f, err := os.Open(filepath.FromSlash(corpusPath))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	samples, err := inspect.ReadCorpus(f)
	if err != nil {
		t.Fatalf("reading %s: %v", corpusPath, err)
	}
	return samples
}

// scanSample scans a sample the way the gateway would: tool descriptions
// (note "tool-description") with ScanToolDescription, the rest with Scan.
func scanSample(d *Detector, s inspect.Sample) []inspect.Finding {
	if s.Note == "tool-description" {
		return d.ScanToolDescription(s.Text, nil)
	}
	return d.Scan(s.Text, nil)
}

// TestCorpus scores the detector on the labelled corpus and fails below
// the targets of the issue: recall ≥ 0.8 at precision ≥ 0.9, by category.
func TestCorpus(t *testing.T) {
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	samples := readCorpus(t)
	pos, neg := 0, 0
	for _, s := range samples {
		if len(s.Expect) > 0 {
			pos++
		} else {
			neg++
		}
	}
	t.Logf("corpus: %d samples, %d positive, %d negative", len(samples), pos, neg)
	scan := func(s *inspect.Sample) []inspect.Finding { return scanSample(d, *s) }
	for _, key := range []struct {
		name string
		fn   inspect.KeyFunc
	}{
		{"by type (informational)", func(c inspect.Category, typ string) string { return string(c) + "/" + typ }},
		{"by category (DefaultKey)", inspect.DefaultKey},
	} {
		t.Logf("%s:", key.name)
		t.Logf("  %-36s %4s %4s %4s %9s %7s %6s", "key", "TP", "FP", "FN", "precision", "recall", "F1")
		for _, sc := range inspect.Evaluate(samples, scan, key.fn) {
			t.Logf("  %-36s %4d %4d %4d %9.3f %7.3f %6.3f", sc.Key, sc.TP, sc.FP, sc.FN, sc.Precision(), sc.Recall(), sc.F1())
		}
	}
	var holdout []inspect.Sample
	for _, s := range samples {
		if strings.Contains(s.Source, "holdout") {
			holdout = append(holdout, s)
		}
	}
	for _, sc := range inspect.Evaluate(holdout, scan, inspect.DefaultKey) {
		t.Logf("holdout only (%d samples written after tuning): %s TP %d FP %d FN %d precision %.3f recall %.3f F1 %.3f; FP %v FN %v",
			len(holdout), sc.Key, sc.TP, sc.FP, sc.FN, sc.Precision(), sc.Recall(), sc.F1(), sc.FalsePositives, sc.FalseNegatives)
	}
	for _, sc := range inspect.Evaluate(samples, scan, inspect.DefaultKey) {
		t.Logf("%s false positives: %v", sc.Key, sc.FalsePositives)
		t.Logf("%s false negatives: %v", sc.Key, sc.FalseNegatives)
		if sc.Key != string(inspect.CategoryInjection) {
			t.Errorf("unexpected key %q", sc.Key)
			continue
		}
		if sc.Precision() < 0.9 || sc.Recall() < 0.8 {
			t.Errorf("injection: precision %.3f recall %.3f, want ≥ 0.9 and ≥ 0.8", sc.Precision(), sc.Recall())
		}
	}
}

// TestPrefilterLosesNothing: on every corpus sample, the anchor prefilter
// finds the same instruction findings as scoring the whole text would.
func TestPrefilterLosesNothing(t *testing.T) {
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range readCorpus(t) {
		if s.Note == "tool-description" {
			continue
		}
		var fast, full int
		for _, f := range d.Scan(s.Text, nil) {
			if f.Type == typeInstruction {
				fast++
			}
		}
		sc := scanner{d: d, text: s.Text}
		sc.analyse(0, len(s.Text), false, typeInstruction)
		full = len(sc.dst)
		if fast < full {
			t.Errorf("%s: prefilter path found %d instruction findings, full scoring %d", s.ID, fast, full)
		}
	}
}

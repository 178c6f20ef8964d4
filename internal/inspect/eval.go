package inspect

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Sample is one labelled text of an evaluation corpus (one JSON object per
// line in testdata/inspect/*.jsonl).
type Sample struct {
	ID     string     `json:"id"`
	Text   string     `json:"text"`
	Expect []Expected `json:"expect"` // empty: a negative, nothing should be found
	Source string     `json:"source,omitempty"`
	Note   string     `json:"note,omitempty"`
}

// Expected is one labelled finding. Match is the exact labelled text: every
// occurrence of it in the sample is a span a finding must overlap. An empty
// Match labels the whole text (for injection, where the sample is the attack).
type Expected struct {
	Category Category `json:"category"`
	Type     string   `json:"type"`
	Match    string   `json:"match,omitempty"`
}

// ReadCorpus reads samples, one JSON object per line; blank lines and lines
// starting with '#' are skipped.
func ReadCorpus(r io.Reader) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := strings.TrimSpace(sc.Text())
		if b == "" || strings.HasPrefix(b, "#") {
			continue
		}
		var s Sample
		if err := json.Unmarshal([]byte(b), &s); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		for _, e := range s.Expect {
			if e.Match != "" && !strings.Contains(s.Text, e.Match) {
				return nil, fmt.Errorf("line %d (%s): expected match %q is not in the text", line, s.ID, e.Match)
			}
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// Score counts one detector's (or finding type's) results over a corpus.
type Score struct {
	Key            string
	TP, FP, FN     int
	FalsePositives []string // sample ids, for debugging the corpus or detector
	FalseNegatives []string
}

// Precision is TP/(TP+FP); 1 when nothing was found.
func (s *Score) Precision() float64 {
	if s.TP+s.FP == 0 {
		return 1
	}
	return float64(s.TP) / float64(s.TP+s.FP)
}

// Recall is TP/(TP+FN); 1 when nothing was expected.
func (s *Score) Recall() float64 {
	if s.TP+s.FN == 0 {
		return 1
	}
	return float64(s.TP) / float64(s.TP+s.FN)
}

// F1 is the harmonic mean of precision and recall.
func (s *Score) F1() float64 {
	p, r := s.Precision(), s.Recall()
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

// KeyFunc names the score a finding or label counts towards, e.g. the
// category for secrets (any rule that catches a secret is right) or the
// type for personal data (an email found as a phone number is wrong).
type KeyFunc func(c Category, typ string) string

// DefaultKey scores secrets and injection by category and personal data by type.
func DefaultKey(c Category, typ string) string {
	if c == CategoryPII {
		return string(c) + "/" + typ
	}
	return string(c)
}

// Evaluate runs scan over every sample (scan gets the whole sample: a
// tool description is scanned as one) and scores findings against labels.
// A label is found (TP) when a finding with the same key overlaps one of its
// spans; otherwise it is a FN. A finding overlapping no label of its key is a
// FP. Findings with a key no label in the corpus uses are ignored only if
// onlyKeys is non-empty and does not list that key.
func Evaluate(samples []Sample, scan func(s *Sample) []Finding, key KeyFunc, onlyKeys ...string) []*Score {
	if key == nil {
		key = DefaultKey
	}
	only := map[string]bool{}
	for _, k := range onlyKeys {
		only[k] = true
	}
	scores := map[string]*Score{}
	get := func(k string) *Score {
		s := scores[k]
		if s == nil {
			s = &Score{Key: k}
			scores[k] = s
		}
		return s
	}
	type span struct {
		key        string
		start, end int
	}
	for i := range samples {
		smp := &samples[i]
		findings := scan(smp)
		used := make([]bool, len(findings))
		var labelled []span
		for _, e := range smp.Expect {
			k := key(e.Category, e.Type)
			var spans []span
			if e.Match == "" {
				spans = append(spans, span{k, 0, len(smp.Text)})
			} else {
				for off := 0; ; {
					i := strings.Index(smp.Text[off:], e.Match)
					if i < 0 {
						break
					}
					spans = append(spans, span{k, off + i, off + i + len(e.Match)})
					off += i + len(e.Match)
				}
			}
			labelled = append(labelled, spans...)
			hit := false
			for i, f := range findings {
				if key(f.Category, f.Type) != k {
					continue
				}
				for _, sp := range spans {
					if f.Start < sp.end && sp.start < f.End {
						hit, used[i] = true, true
					}
				}
			}
			s := get(k)
			if hit {
				s.TP++
			} else {
				s.FN++
				s.FalseNegatives = append(s.FalseNegatives, smp.ID)
			}
		}
		for i, f := range findings {
			if used[i] {
				continue
			}
			k := key(f.Category, f.Type)
			if len(only) > 0 && !only[k] {
				continue
			}
			// A finding inside another label's span of the same key was
			// already credited (two findings on one secret are one TP).
			covered := false
			for _, sp := range labelled {
				if sp.key == k && f.Start < sp.end && sp.start < f.End {
					covered = true
				}
			}
			if !covered {
				s := get(k)
				s.FP++
				s.FalsePositives = append(s.FalsePositives, smp.ID)
			}
		}
	}
	out := make([]*Score, 0, len(scores))
	for _, s := range scores {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

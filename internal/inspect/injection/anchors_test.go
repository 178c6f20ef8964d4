package injection

import (
	"strings"
	"testing"
)

// phrasesOf spells feature f out in words: the first alternative of every
// slot, and then each other alternative of each slot in turn.
func phrasesOf(fs *featureSet, f feature) []string {
	names := map[int32]string{}
	for w, id := range fs.v.ids {
		names[id] = w
	}
	spell := func(seq []int32) string {
		var parts []string
		for _, id := range seq {
			w := names[id]
			for b, n := range punctNames {
				if n == w {
					w = string(b)
				}
			}
			parts = append(parts, w)
		}
		return strings.Join(parts, " ")
	}
	build := func(slotIdx, altIdx int) string {
		var words []string
		for i, s := range f.slots {
			if s.gap > 0 || s.not != nil || len(s.alts) == 0 {
				continue
			}
			a := 0
			if i == slotIdx {
				a = altIdx
			}
			words = append(words, spell(s.alts[a]))
		}
		return strings.Join(words, " ")
	}
	out := []string{build(-1, 0)}
	for i, s := range f.slots {
		for a := 1; a < len(s.alts); a++ {
			out = append(out, build(i, a))
		}
	}
	return out
}

// TestAnchorsCoverFeatures: every spelling of every feature of weight 3 or
// more reaches an anchor of the prefilter, so that the fast path does not
// skip what the scorer would find, except features starting with
// punctuation (role markers, found by the scanner's '<' and '[' checks)
// and phrases starting with a word of one or two letters.
func TestAnchorsCoverFeatures(t *testing.T) {
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range d.fs.features {
		if f.weight < 3 || f.desc || punctNameIDs(d.fs)[f.slots[0].alts[0][0]] {
			continue // markers start with punctuation: the scanner's '<' and '[' checks cover them
		}
		for _, p := range phrasesOf(d.fs, f) {
			if first, _, _ := strings.Cut(p, " "); len(first) < 3 {
				// Too short to anchor without firing on every "said" or
				// "main" ("AI:", "DM ... to https://", "cc every"): such
				// phrases are found when another anchor is near.
				continue
			}
			if unanchored[p] || strings.HasPrefix(f.text, "send|forward|email|post") {
				continue
			}
			if !triggers(d, p) {
				t.Errorf("feature %q: %q reaches no anchor", f.text, p)
			}
		}
	}
}

// unanchored are spellings made only of everyday words ("send", "keys",
// "read", ".env"), and the send-to-URL feature (everyday verbs, a gap, then
// "to https"): anchoring them would open a window on most texts. They are
// scored when another anchor is near, which is how attacks use them.
var unanchored = map[string]bool{"send keys": true, "read . env": true}

// triggers reports whether the prefilter opens a window anywhere in text.
func triggers(d *Detector, text string) bool {
	sc := scanner{d: d, text: text}
	hit := false
	sc.onTrigger = func() { hit = true }
	sc.scan(false)
	return hit
}

func punctNameIDs(fs *featureSet) map[int32]bool {
	m := map[int32]bool{}
	for _, id := range fs.v.punct {
		if id != 0 {
			m[id] = true
		}
	}
	return m
}

// Package injection finds prompt injection in text handed to AI agents:
// tool results, resource contents and tool descriptions.
//
// It reports four finding types, all in category "injection":
//
//   - "instruction": text that speaks to the model (override earlier
//     instructions, new role or task, chat-template role markers, hide
//     things from the user, read secrets and send them somewhere). Built as
//     scored phrase features over normalised tokens (see features.go): one
//     weak cue is not a finding, a strong cue or a combination is, and
//     text that talks about injection scores lower.
//   - "hidden-unicode": runs of invisible characters (see hidden.go).
//   - "exfiltration-link": markdown/HTML images and links whose URL
//     carries data out (see links.go).
//   - "tool-poisoning": instructions in a tool description, reported by
//     [Detector.ScanToolDescription].
//
// The whole-text pass is one loop over the bytes driving a small DFA of
// anchor words (prefilter.go); only windows around anchors are tokenised
// and scored, and nothing is allocated when nothing is found.
package injection

import (
	"fmt"
	"sync"
	"unicode/utf8"

	"gatehouse/internal/inspect"
)

// Finding types.
const (
	typeInstruction = "instruction"
	typeHidden      = "hidden-unicode"
	typeExfil       = "exfiltration-link"
	typePoisoning   = "tool-poisoning"
)

// window is how far around an anchor the phrase scorer looks, in bytes.
const window = 240

// Options configure a Detector.
type Options struct {
	// MinConfidence drops findings below it; zero means Low (report all).
	MinConfidence inspect.Confidence
}

// Detector finds prompt injection. It is safe for concurrent use.
type Detector struct {
	min  inspect.Confidence
	pf   *prefilter
	fs   *featureSet
	pool sync.Pool // *tokenizer
}

var tables = sync.OnceValues(func() (*compiledTables, error) {
	fs, err := compileFeatures(featureDefs)
	if err != nil {
		return nil, fmt.Errorf("compiling injection features: %w", err)
	}
	return &compiledTables{pf: newPrefilter(append(derivedAnchors(fs), anchors...)), fs: fs}, nil
})

type compiledTables struct {
	pf *prefilter
	fs *featureSet
}

// New returns a Detector.
func New(opts Options) (*Detector, error) {
	if opts.MinConfidence == 0 {
		opts.MinConfidence = inspect.Low
	}
	if opts.MinConfidence < inspect.Low || opts.MinConfidence > inspect.High {
		return nil, fmt.Errorf("injection: min confidence %d out of range", opts.MinConfidence)
	}
	t, err := tables()
	if err != nil {
		return nil, err
	}
	d := &Detector{min: opts.MinConfidence, pf: t.pf, fs: t.fs}
	d.pool.New = func() any { return &tokenizer{v: t.fs.v} }
	return d, nil
}

// Name is "injection".
func (d *Detector) Name() string { return "injection" }

// Scan appends the injection findings in text (a tool result, resource
// or prompt) to dst.
func (d *Detector) Scan(text string, dst []inspect.Finding) []inspect.Finding {
	sc := scanner{d: d, text: text, dst: dst}
	sc.scan(false)
	return sc.dst
}

// ScanToolDescription appends the findings in a tool description to dst:
// instruction features plus description-specific cues over the whole
// description, reported as "tool-poisoning", and hidden Unicode and
// exfiltration links as in Scan.
func (d *Detector) ScanToolDescription(desc string, dst []inspect.Finding) []inspect.Finding {
	sc := scanner{d: d, text: desc, dst: dst}
	sc.scan(true)
	return sc.dst
}

// scanner is the state of one scan.
type scanner struct {
	d    *Detector
	text string
	dst  []inspect.Finding
	run  hiddenRun
	bidi bidiState

	win              bool // an instruction window is pending
	winStart, winEnd int
	linkEnd, tagEnd  int // end of the last markdown URL and HTML tag parsed

	onTrigger func() // tests only: observes prefilter hits
}

func (sc *scanner) emit(typ string, start, end int, conf inspect.Confidence) {
	if conf < sc.d.min {
		return
	}
	sc.dst = append(sc.dst, inspect.Finding{Category: inspect.CategoryInjection, Type: typ, Start: start, End: end, Confidence: conf})
}

func (sc *scanner) scan(desc bool) {
	text, pf := sc.text, sc.d.pf
	s := uint32(0)
	for i := 0; i < len(text); i++ {
		c := pf.fast[text[i]]
		if c == 0 {
			continue
		}
		if c != classSpecial {
			s = pf.next[int(s)+int(c)]
			if s >= pf.acceptStart {
				sc.trigger(i)
			}
			continue
		}
		switch b := text[i]; b {
		case '<':
			sc.angle(i)
			s = 0
		case '[':
			if rest := text[i+1:]; hasPrefixFold(rest, "inst]") || hasPrefixFold(rest, "/inst]") || hasPrefixFold(rest, "system") {
				sc.trigger(i)
			}
			s = 0
		case ']':
			if i+1 < len(text) && text[i+1] == '(' {
				sc.markdownLink(i)
			}
			s = 0
		default:
			r, size := utf8.DecodeRuneInString(text[i:])
			if k := invisible(r); k != invNone {
				consume, suspicious, conf := invisibleAt(text, i, size, r, k, &sc.bidi)
				if suspicious {
					sc.addHidden(i, i+size, conf, k == invZW)
				}
				i += consume - 1
				continue // invisible: the anchor DFA does not see it
			}
			switch l := confusable(r); {
			case r >= 0xFF01 && r <= 0xFF5E:
				s = pf.step(s, byte(r-0xFEE0))
			case l != 0:
				s = pf.step(s, l)
			case r == 0xA0:
			default:
				for k := 0; k < size; k++ {
					s = pf.step(s, text[i+k])
				}
			}
			if s >= pf.acceptStart {
				sc.trigger(i)
			}
			i += size - 1
		}
	}
	sc.flushHidden()
	if desc {
		sc.win = false
		sc.analyse(0, len(text), true, typePoisoning)
		return
	}
	sc.flushWindow()
}

// angle handles a '<': chat-template markers and instruction-like tags
// open a scoring window; HTML elements that load or link URLs are scored.
func (sc *scanner) angle(i int) {
	text := sc.text
	if i+1 >= len(text) {
		return
	}
	switch c := text[i+1]; {
	case c == '|':
		sc.trigger(i)
		return
	case c == '<':
		if hasPrefixFold(text[i+2:], "sys") {
			sc.trigger(i)
		}
		return
	case c == '/':
		if hasPrefixFold(text[i+2:], "system") || hasPrefixFold(text[i+2:], "important") {
			sc.trigger(i)
		}
		return
	case !isASCIILetter(c):
		return
	}
	j := i + 1
	for j < len(text) && j-i <= 20 && (isASCIILetter(text[j]) || text[j] == '_') {
		j++
	}
	name := text[i+1 : j]
	if nameIn(name, linkTags) {
		sc.htmlTag(i, name)
		return
	}
	switch {
	case hasPrefixFold(name, "system"), hasPrefixFold(name, "important"), hasPrefixFold(name, "instruction"),
		hasPrefixFold(name, "start_of_turn"), hasPrefixFold(name, "sys"):
		sc.trigger(i)
	}
}

// trigger opens (or extends) the scoring window around pos.
func (sc *scanner) trigger(pos int) {
	if sc.onTrigger != nil {
		sc.onTrigger()
	}
	lo, hi := max(0, pos-window), min(len(sc.text), pos+window)
	if sc.win && lo <= sc.winEnd {
		sc.winEnd = max(sc.winEnd, hi)
		return
	}
	sc.flushWindow()
	sc.win, sc.winStart, sc.winEnd = true, lo, hi
}

func (sc *scanner) flushWindow() {
	if !sc.win {
		return
	}
	sc.win = false
	text := sc.text
	ws, we := sc.winStart, sc.winEnd
	// Start and end on whitespace when it is near, and on rune boundaries.
	for k := 0; k < 64 && ws > 0 && !isSpace(text[ws-1]); k++ {
		ws--
	}
	for ws > 0 && ws < len(text) && !utf8.RuneStart(text[ws]) {
		ws--
	}
	for k := 0; k < 64 && we < len(text) && !isSpace(text[we]); k++ {
		we++
	}
	for we < len(text) && !utf8.RuneStart(text[we]) {
		we++
	}
	sc.analyse(ws, we, false, typeInstruction)
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

// analyse tokenises text[ws:we], matches the features and emits the
// clusters that score high enough.
func (sc *scanner) analyse(ws, we int, desc bool, typ string) {
	t := sc.d.pool.Get().(*tokenizer)
	toks := t.tokenize(sc.text, ws, we)
	t.hits = sc.d.fs.findHits(toks, desc, t.hits[:0])
	t.clusters = sc.d.fs.scoreClusters(toks, t.hits, t.clusters[:0])
	for _, c := range t.clusters {
		sc.emit(typ, c.start, c.end, scoreConfidence(c.score))
	}
	sc.d.pool.Put(t)
}

func scoreConfidence(score int) inspect.Confidence {
	switch {
	case score >= 10:
		return inspect.High
	case score >= 7:
		return inspect.Medium
	}
	return inspect.Low
}

var _ inspect.Detector = (*Detector)(nil)

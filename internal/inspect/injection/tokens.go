package injection

import (
	"unicode"
	"unicode/utf8"
)

// token is one word or significant punctuation mark of a scored window.
// Words are normalised (lower case, accents folded, leetspeak decoded when
// that yields a known word, invisible characters dropped) and looked up in
// the feature vocabulary; id 0 is a word no feature uses.
type token struct {
	id         int32
	start, end int32 // byte offsets in the scanned text
	letter     byte  // the letter of a one-letter ASCII word (spaced-out words), else 0
}

// punctNames name the punctuation the features use; other punctuation only
// separates words.
var punctNames = map[byte]string{
	'<': "LT", '>': "GT", '[': "LB", ']': "RB", '|': "BAR", ':': "COLON", '/': "SLASH", '.': "DOT",
	'"': "QUOTE", '\'': "QUOTE", '`': "QUOTE", '(': "LP", ')': "RP", ',': "COMMA", '@': "AT", '\n': "NL",
	'!': "BANG", '?': "QMARK", ';': "SEMI", '#': "HASH", '=': "EQ",
}

// tokenizer holds the scratch buffers for one window; it lives in a pool.
type tokenizer struct {
	v        *vocabulary
	toks     []token
	out      []token
	word     []byte
	alt      []byte
	letters  []byte
	lstart   []int32
	lend     []int32
	hits     []hit
	clusters []cluster

	wordStart, wordEnd int
	camel              int  // lower→upper transitions in the current word
	lastLower          bool // the previous letter of the current word was lower case ASCII
	hasDigit, nonASCII bool
	hasASCII           bool
}

// tokenize fills t.out with the tokens of text[ws:we].
func (t *tokenizer) tokenize(text string, ws, we int) []token {
	t.toks = t.toks[:0]
	t.word = t.word[:0]
	if ws == 0 || text[ws-1] == '\n' {
		t.toks = append(t.toks, token{id: t.v.punct['\n'], start: int32(ws), end: int32(ws)})
	}
	for i := ws; i < we; {
		b := text[i]
		if b < utf8.RuneSelf {
			switch {
			case b|0x20 >= 'a' && b|0x20 <= 'z':
				t.addLetter(i, b|0x20, b < 'a')
				i++
			case b >= '0' && b <= '9':
				t.addRaw(i, b, 1)
				t.hasDigit = true
				i++
			case b == '\'' && len(t.word) > 0 && i+1 < we && isASCIILetter(text[i+1]):
				i++ // apostrophe inside a word: "don't" is "dont"
			case b == '\\' && i+1 < we && (text[i+1] == 'n' || text[i+1] == 't' || text[i+1] == 'r'):
				// An escape sequence in raw JSON or code separates words.
				t.endWord()
				if text[i+1] == 'n' {
					t.punct(i, i+2, '\n')
				}
				i += 2
			case b == '?' && len(t.word) > 0 && i+1 < we && isASCIILetter(text[i+1]):
				// A URL query string ("/search?q=ignore+previous+..."): its
				// words are parameters, not prose addressed to anyone.
				t.endWord()
				for i < we && text[i] > ' ' && text[i] != '"' && text[i] != '\'' && text[i] != ')' {
					i++
				}
			default:
				t.endWord()
				t.punct(i, i+1, b)
				i++
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:we])
		if invisible(r) != invNone {
			i += size // invisible characters do not break words
			continue
		}
		switch {
		case r >= 0xFF01 && r <= 0xFF5E: // fullwidth ASCII
			a := byte(r - 0xFEE0)
			switch {
			case isASCIILetter(a):
				t.addLetter(i, a|0x20, a < 'a')
				t.wordEnd = i + size
			case a >= '0' && a <= '9':
				t.addRaw(i, a, size)
				t.hasDigit = true
			default:
				t.endWord()
				t.punct(i, i+size, a)
			}
		case r == 0x2018 || r == 0x2019:
			if r == 0x2019 && len(t.word) > 0 && i+size < we && isASCIILetter(text[i+size]) {
				break // typographic apostrophe inside a word
			}
			t.endWord()
			t.punct(i, i+size, '\'')
		case r == 0x201C || r == 0x201D || r == 0xAB || r == 0xBB:
			t.endWord()
			t.punct(i, i+size, '"')
		default:
			if l := confusable(r); l != 0 && (t.hasASCII && len(t.word) > 0 || i+size < we && isASCIILetter(text[i+size])) {
				t.addLetter(i, l, false)
				t.wordEnd = i + size
				break
			}
			if f := foldLatin(r); f != 0 {
				t.addLetter(i, f, false)
				t.wordEnd = i + size
				break
			}
			switch {
			case cjk(r):
				t.endWord()
				t.word = utf8.AppendRune(t.word, r)
				t.toks = append(t.toks, token{id: t.v.lookup(t.word), start: int32(i), end: int32(i + size)})
				t.word = t.word[:0]
			case unicode.IsLetter(r):
				if len(t.word) == 0 {
					t.wordStart = i
					t.camel, t.lastLower, t.hasDigit, t.hasASCII = 0, false, false, false
				}
				t.word = utf8.AppendRune(t.word, unicode.ToLower(r))
				t.nonASCII = true
				t.wordEnd = i + size
			case unicode.IsMark(r):
				// combining marks stay inside the word
			default:
				t.endWord()
			}
		}
		i += size
	}
	t.endWord()
	t.joinFragments(text)
	return t.joinSpaced(text)
}

// joinFragments rejoins words split by one separator inside the word
// ("Ig-nore", "prev.ious", "in_struc_tions"): up to four adjacent
// fragments, each separated from the next by exactly one '-', '.', '_' or
// '*', are merged when together they spell a known word and at least one
// of them is not a known word itself. One-letter fragments are left to
// joinSpaced.
func (t *tokenizer) joinFragments(text string) {
	toks := t.toks
	out := toks[:0]
	dot := t.v.punct['.']
	fragment := func(k int) bool {
		return k < len(toks) && toks[k].letter == 0 && toks[k].id != dot && toks[k].end > toks[k].start
	}
	for i := 0; i < len(toks); i++ {
		// Only short fragments are tried: split words are split early
		// ("Ig-nore", "in_struc"), and this keeps identifiers such as
		// "created_at" from costing lookups.
		if !fragment(i) || i+1 >= len(toks) || toks[i].end-toks[i].start > 6 {
			out = append(out, toks[i])
			continue
		}
		t.alt = appendLower(t.alt[:0], text[toks[i].start:toks[i].end])
		unknown := toks[i].id == 0
		merged := false
		for k, n := i, 0; n < 3; n++ {
			m := k + 1
			switch {
			case m+1 < len(toks) && toks[m].id == dot && toks[m].start == toks[k].end && toks[m+1].start == toks[m].end:
				m++
			case m < len(toks) && toks[m].start == toks[k].end+1 && isFragmentSep(text[toks[k].end]):
			default:
				m = -1
			}
			if m < 0 || !fragment(m) || len(t.alt)+int(toks[m].end-toks[m].start) > t.v.maxLen {
				break
			}
			t.alt = appendLower(t.alt, text[toks[m].start:toks[m].end])
			unknown = unknown || toks[m].id == 0
			if id := t.v.lookup(t.alt); id != 0 && unknown {
				out = append(out, token{id: id, start: toks[i].start, end: toks[m].end})
				i, merged = m, true
				break
			}
			k = m
		}
		if !merged {
			out = append(out, toks[i])
		}
	}
	t.toks = out
}

func isFragmentSep(b byte) bool { return b == '-' || b == '_' || b == '*' || b == '.' }

// appendLower appends the ASCII letters of s in lower case, and leetspeak
// digits as letters.
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isASCIILetter(c):
			dst = append(dst, c|0x20)
		case c >= '0' && c <= '9':
			dst = append(dst, leet(c))
		}
	}
	return dst
}

func isASCIILetter(b byte) bool { return b|0x20 >= 'a' && b|0x20 <= 'z' }

func (t *tokenizer) addLetter(i int, lower byte, upper bool) {
	if len(t.word) == 0 {
		t.wordStart = i
		t.camel, t.lastLower, t.hasDigit, t.nonASCII, t.hasASCII = 0, false, false, false, false
	}
	if upper && t.lastLower {
		t.camel++
	}
	t.lastLower = !upper
	t.hasASCII = true
	t.word = append(t.word, lower)
	t.wordEnd = i + 1
}

func (t *tokenizer) addRaw(i int, b byte, size int) {
	if len(t.word) == 0 {
		t.wordStart = i
		t.camel, t.lastLower, t.hasDigit, t.nonASCII, t.hasASCII = 0, false, false, false, false
	}
	t.word = append(t.word, b)
	t.wordEnd = i + size
}

func (t *tokenizer) punct(i, j int, b byte) {
	if id := t.v.punct[b]; id != 0 {
		t.toks = append(t.toks, token{id: id, start: int32(i), end: int32(j)})
	}
}

// endWord turns the current word into one token, or several when it is a
// camel-case run of known words ("IgnoreAllPreviousInstructions").
func (t *tokenizer) endWord() {
	w := t.word
	if len(w) == 0 {
		return
	}
	t.word = t.word[:0]
	start, end := int32(t.wordStart), int32(t.wordEnd)
	id := t.v.lookup(w)
	if id == 0 && t.hasDigit && t.hasASCII {
		t.alt = t.alt[:0]
		for _, c := range w {
			t.alt = append(t.alt, leet(c))
		}
		id = t.v.lookup(t.alt)
	}
	if id == 0 && t.camel > 0 && !t.nonASCII && len(w) >= 6 && len(w) <= 64 {
		t.letters = append(t.letters[:0], w...)
		t.lstart, t.lend = t.lstart[:0], t.lend[:0]
		for k := range w {
			t.lstart = append(t.lstart, start+int32(k))
			t.lend = append(t.lend, start+int32(k)+1)
		}
		t.toks = t.segment(t.toks)
		return
	}
	tok := token{id: id, start: start, end: end}
	if len(w) == 1 && isASCIILetter(w[0]) {
		tok.letter = w[0]
	}
	t.toks = append(t.toks, tok)
}

// joinSpaced rejoins words spelled out letter by letter ("i g n o r e",
// "i-g-n-o-r-e", "i.g.n.o.r.e"): a run of three or more one-letter words,
// each at most three bytes from the next on the same line, becomes the
// known words it segments into.
func (t *tokenizer) joinSpaced(text string) []token {
	toks := t.toks
	t.out = t.out[:0]
	dot := t.v.punct['.']
	for i := 0; i < len(toks); {
		if toks[i].letter == 0 {
			t.out = append(t.out, toks[i])
			i++
			continue
		}
		t.letters = append(t.letters[:0], toks[i].letter)
		t.lstart = append(t.lstart[:0], toks[i].start)
		t.lend = append(t.lend[:0], toks[i].end)
		j := i + 1
		last := i
		for j < len(toks) && len(t.letters) < 64 {
			if toks[j].id == dot && toks[j].letter == 0 {
				j++
				continue
			}
			if toks[j].letter == 0 || toks[j].start-toks[last].end > 3 || hasNewline(text[toks[last].end:toks[j].start]) {
				break
			}
			t.letters = append(t.letters, toks[j].letter)
			t.lstart = append(t.lstart, toks[j].start)
			t.lend = append(t.lend, toks[j].end)
			last = j
			j++
		}
		if len(t.letters) < 3 {
			t.out = append(t.out, toks[i])
			i++
			continue
		}
		t.out = t.segment(t.out)
		i = last + 1
	}
	return t.out
}

func hasNewline(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return true
		}
	}
	return false
}

// segment splits t.letters into known words with as few pieces as possible
// (a known word costs 1, a letter outside any known word 2) and appends
// them to dst; letters outside known words become one unknown token per
// stretch.
func (t *tokenizer) segment(dst []token) []token {
	s := t.letters
	n := len(s)
	var cost [65]int16
	var from [65]int8
	for i := 1; i <= n; i++ {
		cost[i], from[i] = cost[i-1]+2, int8(i-1)
		for l := 2; l <= min(i, t.v.maxLen); l++ {
			if t.v.lookup(s[i-l:i]) != 0 && cost[i-l]+1 < cost[i] {
				cost[i], from[i] = cost[i-l]+1, int8(i-l)
			}
		}
	}
	var cut [65]int8
	k := 0
	for i := n; i > 0; i = int(from[i]) {
		cut[k] = int8(i)
		k++
	}
	prev := 0
	unknownStart := -1
	for k--; k >= 0; k-- {
		i := int(cut[k])
		id := int32(0)
		if i-prev >= 2 || n == 1 {
			id = t.v.lookup(s[prev:i])
		}
		if id == 0 {
			if unknownStart < 0 {
				unknownStart = prev
			}
		} else {
			if unknownStart >= 0 {
				dst = append(dst, token{start: t.lstart[unknownStart], end: t.lend[prev-1]})
				unknownStart = -1
			}
			dst = append(dst, token{id: id, start: t.lstart[prev], end: t.lend[i-1]})
		}
		prev = i
	}
	if unknownStart >= 0 {
		dst = append(dst, token{start: t.lstart[unknownStart], end: t.lend[n-1]})
	}
	return dst
}

// cjk: ideographs and kana are matched one character at a time.
func cjk(r rune) bool {
	return r >= 0x3040 && r <= 0x30FF || r >= 0x3400 && r <= 0x9FFF || r >= 0xF900 && r <= 0xFAFF
}

// confusable maps Cyrillic letters that look like Latin ones to the Latin
// letter, or returns 0.
func confusable(r rune) byte {
	switch r {
	case 'а', 'А':
		return 'a'
	case 'В':
		return 'b'
	case 'е', 'Е':
		return 'e'
	case 'К', 'к':
		return 'k'
	case 'М':
		return 'm'
	case 'Н':
		return 'h'
	case 'о', 'О':
		return 'o'
	case 'р', 'Р':
		return 'p'
	case 'с', 'С':
		return 'c'
	case 'Т':
		return 't'
	case 'у', 'У':
		return 'y'
	case 'х', 'Х':
		return 'x'
	case 'і', 'І':
		return 'i'
	case 'ј', 'Ј':
		return 'j'
	case 'ѕ', 'Ѕ':
		return 's'
	}
	return 0
}

// foldLatin maps accented Latin letters to their base letter, or returns 0.
func foldLatin(r rune) byte {
	if r < 0xC0 || r > 0x17F {
		return 0
	}
	const latin1 = "aaaaaaaceeeeiiiidnooooo\x00ouuuuyts" + "aaaaaaaceeeeiiiidnooooo\x00ouuuuyty"
	if r <= 0xFF {
		return latin1[r-0xC0]
	}
	switch {
	case r <= 0x105:
		return 'a'
	case r <= 0x10D:
		return 'c'
	case r <= 0x111:
		return 'd'
	case r <= 0x11B:
		return 'e'
	case r <= 0x123:
		return 'g'
	case r <= 0x127:
		return 'h'
	case r <= 0x131:
		return 'i'
	case r <= 0x135:
		return 'j'
	case r <= 0x138:
		return 'k'
	case r <= 0x142:
		return 'l'
	case r <= 0x14B:
		return 'n'
	case r <= 0x153:
		return 'o'
	case r <= 0x159:
		return 'r'
	case r <= 0x161:
		return 's'
	case r <= 0x167:
		return 't'
	case r <= 0x173:
		return 'u'
	case r <= 0x175:
		return 'w'
	case r <= 0x178:
		return 'y'
	}
	return 'z'
}

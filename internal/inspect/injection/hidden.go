package injection

import (
	"unicode/utf8"

	"gatehouse/internal/inspect"
)

// Hidden Unicode. Invisible characters are reported as runs: characters no
// more than runGap visible bytes apart form one run, and one run is one
// finding. What is reported, and how sure we are:
//
//   - Tag characters (U+E0000–U+E007F): High. They spell out ASCII that
//     models read and people cannot see. Exception: an emoji tag sequence
//     (U+1F3F4 followed by at most maxFlagTags tags ending in U+E007F, as
//     in the flag of England) is legitimate.
//   - Bidi overrides (U+202D, U+202E): High, always (Trojan Source,
//     spoofed file names).
//   - Bidi embeddings and isolates (U+202A–U+202C, U+2066–U+2069): Medium,
//     unless they come in a balanced pair around text with right-to-left
//     letters, which is how i18n software wraps Arabic or Hebrew names.
//   - Zero-width characters (U+200B–U+200D, U+2060, and U+FEFF not at the
//     start of the text or of a line): a run of 8 or more is High (enough
//     to encode data), 2–7 Medium; a single one is Low when it sits inside
//     an ASCII word (the way filters are evaded) and not reported
//     otherwise. ZWJ between emoji (family, profession and flag sequences)
//     and ZWJ/ZWNJ/ZWSP between letters of scripts that use them (Arabic,
//     Persian, Indic, Thai, Khmer, Myanmar, CJK) are legitimate and skipped.
//   - Variation selectors: one after a base character is legitimate (emoji
//     presentation, ideographic variants); a selector following another is
//     counted, Medium for U+FE00–U+FE0F and High for the supplement
//     U+E0100–U+E01EF, which is used to smuggle bytes after an emoji.
//   - Other invisible format characters (U+2061–U+2064, U+206A–U+206F,
//     U+FFF9–U+FFFB, U+180E, U+17B4, U+17B5): Medium.
//   - LRM, RLM, ALM (U+200E, U+200F, U+061C) and the soft hyphen are
//     ordinary typography and never reported; they are skipped when
//     matching instruction phrases, as are all the characters above.
const (
	runGap      = 4
	maxFlagTags = 8
)

type invisKind uint8

const (
	invNone invisKind = iota
	invIgnore
	invZW
	invOverride
	invEmbed
	invPopEmbed
	invIsolate
	invPopIsolate
	invTag
	invVS
	invVSSup
	invFormat
)

func invisible(r rune) invisKind {
	switch {
	case r < 0xAD:
		return invNone
	case r == 0xAD || r == 0x34F || r == 0x61C || r == 0x200E || r == 0x200F:
		return invIgnore
	case r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF:
		return invZW
	case r == 0x202D || r == 0x202E:
		return invOverride
	case r == 0x202A || r == 0x202B:
		return invEmbed
	case r == 0x202C:
		return invPopEmbed
	case r >= 0x2066 && r <= 0x2068:
		return invIsolate
	case r == 0x2069:
		return invPopIsolate
	case r >= 0xE0000 && r <= 0xE007F:
		return invTag
	case r >= 0xFE00 && r <= 0xFE0F:
		return invVS
	case r >= 0xE0100 && r <= 0xE01EF:
		return invVSSup
	case r >= 0x2061 && r <= 0x2064, r >= 0x206A && r <= 0x206F, r >= 0xFFF9 && r <= 0xFFFB,
		r == 0x180E, r == 0x17B4, r == 0x17B5:
		return invFormat
	}
	return invNone
}

func emojiLike(r rune) bool {
	return r >= 0x1F000 && r <= 0x1FAFF || r >= 0x2600 && r <= 0x27BF || r >= 0x2300 && r <= 0x23FF ||
		r >= 0x2B00 && r <= 0x2BFF || r == 0xFE0F || r == 0x20E3 || r == 0xA9 || r == 0xAE ||
		r == 0x203C || r == 0x2049 || r == 0x2122 || r == 0x2139 || r >= 0x2194 && r <= 0x21AA ||
		r >= 0xE0020 && r <= 0xE007F
}

// joinerScript: scripts whose orthography uses ZWJ/ZWNJ (Hebrew through
// Sinhala, Myanmar, Arabic presentation forms).
func joinerScript(r rune) bool {
	return r >= 0x0590 && r <= 0x0DFF || r >= 0x1000 && r <= 0x109F || r >= 0xFB1D && r <= 0xFDFF ||
		r >= 0xFE70 && r <= 0xFEFC
}

// spacelessScript: scripts written without spaces, where ZWSP marks word
// boundaries (Thai, Lao, Tibetan, Myanmar, Khmer, CJK, kana).
func spacelessScript(r rune) bool {
	return r >= 0x0E00 && r <= 0x0FFF || r >= 0x1000 && r <= 0x109F || r >= 0x1780 && r <= 0x17FF ||
		r >= 0x3040 && r <= 0x30FF || r >= 0x3400 && r <= 0x9FFF
}

func rtlLetter(r rune) bool {
	return r >= 0x0590 && r <= 0x08FF || r >= 0xFB1D && r <= 0xFDFF || r >= 0xFE70 && r <= 0xFEFC
}

func asciiLetter(r rune) bool { return r|0x20 >= 'a' && r|0x20 <= 'z' }

// hiddenRun accumulates one run of suspicious invisible characters.
type hiddenRun struct {
	start, end int
	n          int
	conf       inspect.Confidence // strongest per-character confidence
	inWord     bool               // the first character sits between ASCII letters
}

// legitIsolates and legitEmbeds count openers found balanced around
// right-to-left text, so that their closers are skipped as well.
type bidiState struct {
	legitIsolates, legitEmbeds int
}

// invisibleAt decides about the invisible character r of kind k at
// text[i:i+size]. It returns how many bytes the scanner should consume
// (more than size when a whole legitimate sequence is skipped) and whether
// the character is suspicious, with its own confidence (0 when only the
// run length decides).
func invisibleAt(text string, i, size int, r rune, k invisKind, bidi *bidiState) (consume int, suspicious bool, conf inspect.Confidence) {
	consume = size
	prev, _ := utf8.DecodeLastRuneInString(text[:i])
	next, _ := utf8.DecodeRuneInString(text[i+size:])
	switch k {
	case invIgnore:
		return consume, false, 0
	case invZW:
		switch {
		case r == 0xFEFF && (i == 0 || text[i-1] == '\n'):
			return consume, false, 0
		case r == 0x200D && emojiLike(prev) && emojiLike(next):
			return consume, false, 0
		case (r == 0x200C || r == 0x200D) && joinerScript(prev) && joinerScript(next):
			return consume, false, 0
		case r == 0x200B && spacelessScript(prev) && spacelessScript(next):
			return consume, false, 0
		}
		return consume, true, 0
	case invOverride:
		return consume, true, inspect.High
	case invEmbed, invIsolate:
		if balancedAroundRTL(text, i+size, k) {
			if k == invIsolate {
				bidi.legitIsolates++
			} else {
				bidi.legitEmbeds++
			}
			return consume, false, 0
		}
		return consume, true, inspect.Medium
	case invPopIsolate:
		if bidi.legitIsolates > 0 {
			bidi.legitIsolates--
			return consume, false, 0
		}
		return consume, true, inspect.Medium
	case invPopEmbed:
		if bidi.legitEmbeds > 0 {
			bidi.legitEmbeds--
			return consume, false, 0
		}
		return consume, true, inspect.Medium
	case invTag:
		if prev == 0x1F3F4 {
			if n := flagTagSequence(text[i:]); n > 0 {
				return n, false, 0
			}
		}
		return consume, true, inspect.High
	case invVS, invVSSup:
		pk := invisible(prev)
		if pk != invVS && pk != invVSSup {
			return consume, false, 0
		}
		if k == invVSSup {
			return consume, true, inspect.High
		}
		return consume, true, inspect.Medium
	case invFormat:
		return consume, true, inspect.Medium
	}
	return consume, false, 0
}

// flagTagSequence returns the length in bytes of an emoji tag sequence at
// the start of s (tags ending with the cancel tag U+E007F), or 0.
func flagTagSequence(s string) int {
	n := 0
	for off := 0; off < len(s) && n <= maxFlagTags; {
		r, size := utf8.DecodeRuneInString(s[off:])
		if r < 0xE0020 || r > 0xE007F {
			return 0
		}
		off += size
		n++
		if r == 0xE007F {
			return off
		}
	}
	return 0
}

// balancedAroundRTL reports whether the bidi opener just before s[from:]
// has its closer within a short distance, with right-to-left letters and no
// override in between.
func balancedAroundRTL(text string, from int, k invisKind) bool {
	depth, rtl := 1, false
	limit := min(len(text), from+512)
	for off := from; off < limit; {
		r, size := utf8.DecodeRuneInString(text[off:limit])
		off += size
		switch invisible(r) {
		case invOverride:
			return false
		case k:
			depth++
		case invPopIsolate:
			if k == invIsolate {
				depth--
			}
		case invPopEmbed:
			if k == invEmbed {
				depth--
			}
		}
		if depth == 0 {
			return rtl
		}
		if rtlLetter(r) {
			rtl = true
		}
	}
	return false
}

// addHidden records a suspicious invisible character at [i, j), flushing
// the previous run when this one is too far from it.
func (sc *scanner) addHidden(i, j int, conf inspect.Confidence, zw bool) {
	run := &sc.run
	if run.n > 0 && i-run.end > runGap {
		sc.flushHidden()
	}
	if run.n == 0 {
		run.start = i
		if zw && i > 0 && j < len(sc.text) {
			prev, _ := utf8.DecodeLastRuneInString(sc.text[:i])
			next, _ := utf8.DecodeRuneInString(sc.text[j:])
			run.inWord = asciiLetter(prev) && asciiLetter(next)
		}
	}
	run.end = j
	run.n++
	run.conf = max(run.conf, conf)
}

func (sc *scanner) flushHidden() {
	run := &sc.run
	if run.n == 0 {
		return
	}
	conf := run.conf
	switch {
	case run.n >= 8:
		conf = inspect.High
	case run.n >= 2:
		conf = max(conf, inspect.Medium)
	case conf == 0 && run.inWord:
		conf = inspect.Low
	}
	if conf != 0 {
		sc.emit(typeHidden, run.start, run.end, conf)
	}
	*run = hiddenRun{}
}

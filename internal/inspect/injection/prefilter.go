package injection

import "strings"

// The prefilter is a DFA (an Aho–Corasick automaton compiled to a full
// transition table) over a normalised byte stream: ASCII letters are folded
// to lower case, the digits of leetspeak (0 1 3 4 5 7) count as the letters
// they imitate, and every other ASCII byte (spaces, punctuation, quotes) is
// transparent, so "I g n o r e", "i.g.n.o.r.e" and "1gn0re" all reach the
// anchor "ignor". Transparency also joins words ("the user" → "theuser"),
// which lets anchors span short phrases. An anchor hit only opens a window
// for the phrase scorer, so the occasional anchor formed across unrelated
// words ("big nore") costs time, not precision.
//
// Non-ASCII bytes that appear in some anchor (CJK, Cyrillic) get classes of
// their own; other non-ASCII bytes break a partial match. Bytes that need
// more than a table lookup (markup, invisible and confusable characters) have
// the class classSpecial and are handled by the scanner.

// anchors are hand-picked words and short phrases (in the normalised letter
// stream) whose presence makes a text worth scoring; derivedAnchors adds
// spellings of the features themselves. TestAnchorsCoverFeatures checks
// that every feature of weight 3 or more reaches one of them.
var anchors = []string{
	// override and forget, in several languages
	"ignor", "disregard", "forget", "overrid", "supersede", "instruc", "istruzion", "anweisung",
	"vergiss", "vergessen", "oubli", "olvid", "dimentic", "esquec", "directive", "guideline",
	"忽略", "无视", "無視", "忘记", "指令", "指示", "игнор", "забуд", "инструкц",
	// prompts, roles and identities
	"systemprompt", "initialprompt", "originalprompt", "yourprompt", "systemnote", "systemmessage",
	"systemoverride", "systemnotice", "systeminstruc", "systemalert", "systemupdate", "systemcommand",
	"youarenow", "youarenolonger", "fromnowon", "pretend", "unfiltered", "unrestricted", "jailbr",
	"developermode", "maintenancemode", "godmode", "newtask", "newrule", "newgoal", "yournew", "yourreal",
	"youractual", "yourtrue", "youronly", "yourtask", "yourgoal", "pwned",
	// addressing the model
	"assistant", "llm", "aiagent", "aimodel", "theai", "anai", "toai", "forai", "dearai", "heyai",
	"languagemodel", "chatbot", "chatgpt", "important", "attention",
	// secrecy
	"telltheuser", "informtheuser", "notifytheuser", "alerttheuser", "warntheuser", "totheuser",
	"theusermust", "theusershould", "theuserwill", "theuserdoes", "theuseris", "theuserhas",
	"fromtheuser", "withouttelling", "withoutinforming", "withoutnotifying", "withoutasking",
	"withoutletting", "withoutconfirm", "mention", "dontreveal", "donotreveal", "neverreveal",
	"disclose", "donttell", "donottell", "nevertell", "silently", "secretly", "quietly", "covertly",
	"hiddenstep", "keepthis", "preapproved", "alreadyauthori", "alreadyapproved", "regardless",
	// actions and sensitive data
	"beforeanswer", "beforerespond", "beforereply", "beforeyou", "beforecalling", "beforeusing",
	"beforeany", "beforeproceed", "beforecontinu", "actas", "actingas", "behaveas", "roleplay", "tellyouruser", "bccall", "bcceach", "bccevery", "ssh", "idrsa", "ided", "credentials", "mcpjson",
	"passwd", "etcshadow", "netrc", "npmrc", "envfile", "exfiltrat", "apikey", "sessiontoken",
	"chathistory", "conversation", "environmentvariable", "othertool", "anothertool",
}

const classSpecial = 0xFF

// derivedAnchors spells every instruction feature of weight 3 or more as
// anchors: the alternatives of its most distinctive required slot (the one
// whose shortest alternative is longest) joined with those of an adjacent
// required slot ("previous" + "instructions", "the" + "assistant"), or
// alone when it has no such neighbour. Anchors shorter than five letters
// are dropped: they would fire on ordinary words everywhere. With the
// hand-written anchors this keeps the prefilter in step with the features
// (TestAnchorsCoverFeatures checks it).
func derivedAnchors(fs *featureSet) []string {
	names := make(map[int32]string, len(fs.v.ids))
	for w, id := range fs.v.ids {
		names[id] = w
	}
	spell := func(seq []int32) string {
		var sb strings.Builder
		for _, id := range seq {
			w := names[id]
			if len(w) > 1 && strings.ToUpper(w) == w { // punctuation name
				continue
			}
			sb.WriteString(w)
		}
		return sb.String()
	}
	seen := map[string]bool{}
	var out []string
	add := func(a string) {
		if len(a) >= 5 && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, f := range fs.features {
		if f.weight < 3 || f.desc {
			continue
		}
		marker := true
		for _, a := range f.slots[0].alts {
			marker = marker && spell(a[:1]) == ""
		}
		if marker {
			continue // role markers start with punctuation: the scanner's '<' and '[' checks find them
		}
		isReq := func(i int) bool {
			if i < 0 || i >= len(f.slots) || f.slots[i].gap > 0 || f.slots[i].not != nil || f.slots[i].opt {
				return false
			}
			for _, a := range f.slots[i].alts {
				if spell(a) == "" {
					return false // punctuation only
				}
			}
			return true
		}
		minLen := func(i int) int {
			m := 1 << 30
			for _, a := range f.slots[i].alts {
				m = min(m, len(spell(a)))
			}
			return m
		}
		// The most distinctive required slot: the one whose shortest
		// alternative is longest.
		best, bestLen := -1, -1
		for i := range f.slots {
			if isReq(i) {
				if l := minLen(i); l > bestLen {
					best, bestLen = i, l
				}
			}
		}
		if best < 0 {
			continue
		}
		switch {
		case isReq(best + 1):
			for _, a := range f.slots[best].alts {
				for _, b := range f.slots[best+1].alts {
					add(spell(a) + spell(b))
				}
			}
		case isReq(best - 1):
			for _, a := range f.slots[best-1].alts {
				for _, b := range f.slots[best].alts {
					add(spell(a) + spell(b))
				}
			}
		default:
			for _, a := range f.slots[best].alts {
				add(spell(a))
			}
		}
	}
	return out
}

type prefilter struct {
	fast        [256]uint8 // class, or classSpecial for bytes the scanner handles itself
	class       [256]uint8 // normalised byte class; 0 transparent, 1 breaks a match
	nclass      int
	next        []uint32 // next[state*nclass+class] = state*nclass of the next state
	acceptStart uint32   // states (pre-multiplied) at or above this end an anchor
}

// specialBytes are handled by the scanner rather than the table: markup
// openers, and lead bytes of invisible, fullwidth and confusable characters.
const specialBytes = "<[]\xc2\xd0\xd1\xe1\xe2\xef\xf3"

// leet maps the digits of leetspeak to the letters they stand for.
func leet(b byte) byte {
	switch b {
	case '0':
		return 'o'
	case '1':
		return 'i'
	case '3':
		return 'e'
	case '4':
		return 'a'
	case '5':
		return 's'
	case '7':
		return 't'
	}
	return b
}

// normaliseAnchor applies the stream normalisation to an anchor: Cyrillic
// letters that look Latin become Latin, as the scanner maps them.
func normaliseAnchor(a string) string {
	var sb strings.Builder
	for _, r := range a {
		if l := confusable(r); l != 0 {
			sb.WriteByte(l)
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

func newPrefilter(words []string) *prefilter {
	p := &prefilter{}
	// Classes: 1 is "other" (breaks a match), then one per distinct byte.
	next := uint8(2)
	var norm []string
	for _, w := range words {
		w = normaliseAnchor(w)
		norm = append(norm, w)
		for i := 0; i < len(w); i++ {
			if p.class[w[i]] == 0 {
				p.class[w[i]] = next
				next++
			}
		}
	}
	p.nclass = int(next)
	for b := 0; b < 256; b++ {
		c := byte(b)
		switch {
		case c >= 'A' && c <= 'Z':
			p.class[b] = p.class[c+'a'-'A']
		case c >= '0' && c <= '9':
			p.class[b] = p.class[leet(c)]
		}
		if p.class[b] == 0 && (c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 0x80) {
			p.class[b] = 1
		}
	}
	// Build the trie.
	type node struct {
		child  map[uint8]int
		fail   int
		accept bool
	}
	nodes := []node{{child: map[uint8]int{}}}
	for _, w := range norm {
		s := 0
		for i := 0; i < len(w); i++ {
			c := p.class[w[i]]
			n, ok := nodes[s].child[c]
			if !ok {
				n = len(nodes)
				nodes = append(nodes, node{child: map[uint8]int{}})
				nodes[s].child[c] = n
			}
			s = n
		}
		nodes[s].accept = true
	}
	// Breadth-first failure links and the full transition table.
	delta := make([][]int, len(nodes))
	for i := range delta {
		delta[i] = make([]int, p.nclass)
	}
	var queue []int
	for c := 1; c < p.nclass; c++ {
		if n, ok := nodes[0].child[uint8(c)]; ok {
			delta[0][c] = n
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if nodes[nodes[s].fail].accept {
			nodes[s].accept = true
		}
		for c := 1; c < p.nclass; c++ {
			if n, ok := nodes[s].child[uint8(c)]; ok {
				nodes[n].fail = delta[nodes[s].fail][c]
				delta[s][c] = n
				queue = append(queue, n)
			} else {
				delta[s][c] = delta[nodes[s].fail][c]
			}
		}
	}
	// Renumber so accepting states come last: one comparison tests acceptance.
	order := make([]int, 0, len(nodes))
	for i := range nodes {
		if !nodes[i].accept {
			order = append(order, i)
		}
	}
	firstAccept := len(order)
	for i := range nodes {
		if nodes[i].accept {
			order = append(order, i)
		}
	}
	rank := make([]int, len(nodes))
	for r, s := range order {
		rank[s] = r
	}
	p.next = make([]uint32, len(nodes)*p.nclass)
	for _, s := range order {
		for c := 0; c < p.nclass; c++ {
			p.next[rank[s]*p.nclass+c] = uint32(rank[delta[s][c]] * p.nclass)
		}
	}
	// The start state must be rank 0 so that a zero state means "start".
	if rank[0] != 0 {
		panic("injection: start state not first")
	}
	p.acceptStart = uint32(firstAccept * p.nclass)
	p.fast = p.class
	for i := 0; i < len(specialBytes); i++ {
		p.fast[specialBytes[i]] = classSpecial
	}
	return p
}

// step feeds one byte through the table by its class, for the scanner's
// slow paths (special bytes that turned out to be ordinary).
func (p *prefilter) step(s uint32, b byte) uint32 {
	c := p.class[b]
	if c == 0 {
		return s
	}
	return p.next[int(s)+int(c)]
}

package secrets

import "strings"

// keywordMatcher finds every occurrence of a fixed set of keywords in a text,
// ignoring ASCII case, in one pass (Aho–Corasick, compiled to a DFA).
//
// It is hand-written rather than taken from a library because it sits on the
// hot path of every scan: the automaton is a dense transition table over a
// compressed alphabet (the bytes that occur in some keyword, case-folded, plus
// one class for everything else), so the inner loop is two table look-ups
// per byte and allocates nothing. Case folding happens in the byte-class
// table, so the text is never lower-cased or copied.
//
// Only ASCII letters are folded: gitleaks lower-cases with strings.ToLower,
// which also maps a few non-ASCII letters to ASCII (the Kelvin sign to 'k').
// Text that spells a keyword with those letters is not prefiltered in; the
// cost is a missed match in deliberately odd text, not a false positive.
type keywordMatcher struct {
	class  [256]uint8 // byte -> alphabet class; 0 is "no keyword has it"
	nclass int
	// next[row+class] is the row of the next state, where a state's row is
	// its number times nclass (premultiplied, to save a multiplication per
	// byte). States with outputs are numbered last, so "row >= firstOut"
	// tells whether a keyword ends here.
	next     []int32
	firstOut int32
	outFrom  []int32 // outputs of state s are outs[outFrom[s]:outFrom[s+1]]
	outs     []int32 // keyword indexes
	lens     []int   // keyword lengths, by index
}

// newKeywordMatcher builds the automaton; keywords are compared lower-cased.
func newKeywordMatcher(keywords []string) *keywordMatcher {
	m := &keywordMatcher{lens: make([]int, len(keywords))}
	for i, k := range keywords {
		k = strings.ToLower(k)
		keywords[i] = k
		m.lens[i] = len(k)
		for j := 0; j < len(k); j++ {
			c := k[j]
			if m.class[c] == 0 {
				m.nclass++
				m.class[c] = uint8(m.nclass)
				if c >= 'a' && c <= 'z' {
					m.class[c-'a'+'A'] = uint8(m.nclass)
				}
			}
		}
	}
	m.nclass++ // class 0 included

	// Trie.
	type node struct {
		child map[uint8]int32
		fail  int32
		out   []int32
	}
	nodes := []node{{child: map[uint8]int32{}}}
	for i, k := range keywords {
		s := int32(0)
		for j := 0; j < len(k); j++ {
			c := m.class[k[j]]
			n, ok := nodes[s].child[c]
			if !ok {
				n = int32(len(nodes))
				nodes = append(nodes, node{child: map[uint8]int32{}})
				nodes[s].child[c] = n
			}
			s = n
		}
		nodes[s].out = append(nodes[s].out, int32(i))
	}

	// Failure links breadth first, folding each state's outputs with those of
	// its failure state, then the full transition table.
	m.next = make([]int32, len(nodes)*m.nclass)
	queue := make([]int32, 0, len(nodes))
	for c := 0; c < m.nclass; c++ {
		if n, ok := nodes[0].child[uint8(c)]; ok {
			nodes[n].fail = 0
			m.next[c] = n
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := nodes[s].fail
		nodes[s].out = append(nodes[s].out, nodes[f].out...)
		for c := 0; c < m.nclass; c++ {
			if n, ok := nodes[s].child[uint8(c)]; ok {
				nodes[n].fail = m.next[int(f)*m.nclass+c]
				m.next[int(s)*m.nclass+c] = n
				queue = append(queue, n)
			} else {
				m.next[int(s)*m.nclass+c] = m.next[int(f)*m.nclass+c]
			}
		}
	}
	// Renumber: states without outputs first, then premultiply.
	order := make([]int32, 0, len(nodes)) // new number -> old
	for pass := 0; pass < 2; pass++ {
		for s := range nodes {
			if (len(nodes[s].out) > 0) == (pass == 1) {
				order = append(order, int32(s))
			}
		}
	}
	renum := make([]int32, len(nodes)) // old -> new
	for n, o := range order {
		renum[o] = int32(n)
		if len(nodes[o].out) > 0 && m.firstOut == 0 {
			m.firstOut = int32(n * m.nclass)
		}
	}
	if m.firstOut == 0 {
		m.firstOut = int32(len(nodes) * m.nclass) // no outputs at all
	}
	next := make([]int32, len(m.next))
	for n, o := range order {
		for c := 0; c < m.nclass; c++ {
			next[n*m.nclass+c] = renum[m.next[int(o)*m.nclass+c]] * int32(m.nclass)
		}
	}
	m.next = next
	m.outFrom = make([]int32, len(nodes)+1)
	for n, o := range order {
		m.outFrom[n] = int32(len(m.outs))
		m.outs = append(m.outs, nodes[o].out...)
	}
	m.outFrom[len(nodes)] = int32(len(m.outs))
	return m
}

// hit is one keyword occurrence: text[end-len(keyword):end].
type hit struct {
	keyword int32
	end     int
}

// find appends every keyword occurrence in text to dst, in order of their end.
func (m *keywordMatcher) find(text string, dst []hit) []hit {
	next, class, firstOut := m.next, &m.class, m.firstOut
	row := int32(0)
	for i := 0; i < len(text); i++ {
		row = next[row+int32(class[text[i]])]
		if row >= firstOut {
			s := int(row) / m.nclass
			for _, k := range m.outs[m.outFrom[s]:m.outFrom[s+1]] {
				dst = append(dst, hit{keyword: k, end: i + 1})
			}
		}
	}
	return dst
}

// contains reports whether text contains any keyword.
func (m *keywordMatcher) contains(text string) bool {
	next, class, firstOut := m.next, &m.class, m.firstOut
	row := int32(0)
	for i := 0; i < len(text); i++ {
		if row = next[row+int32(class[text[i]])]; row >= firstOut {
			return true
		}
	}
	return false
}

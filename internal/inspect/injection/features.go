package injection

import (
	"fmt"
	"strings"
)

// Instruction features. Each feature is a phrase pattern over normalised
// tokens with a weight; a window's hits are grouped into clusters (hits at
// most clusterGap tokens apart), and a cluster's score is the sum, over
// feature groups, of the strongest hit in each group, so that a phrase
// matched by two overlapping patterns counts once. Negative groups describe
// text that talks about injection (security writing, test fixtures, chat
// template documentation) or human correspondence about one's own earlier
// message. A cluster scoring at least minScore is a finding.
//
// Pattern syntax, one slot per space-separated field:
//
//	a|b|c      one of the alternatives; a+b is a sequence of tokens
//	a|b?       optional
//	~N         up to N arbitrary tokens
//	!a|b       the next token (skipping DOT) is none of these; consumes nothing
//	$NAME      a macro from macros (may take a trailing ?)
//
// Punctuation tokens are written by name: LT GT LB RB BAR COLON SLASH DOT
// QUOTE LP RP COMMA AT NL BANG QMARK SEMI HASH EQ.
const (
	minScore   = 5
	clusterGap = 24
)

type group uint8

const (
	gOverride group = iota
	gNew
	gRole
	gFromNow
	gUnrestricted
	gMarker
	gTurn
	gSecrecy
	gMention
	gAddress
	gModelMust
	gBefore
	gCallTool
	gSend
	gData
	gMass
	gBypass
	gOutput
	gTellUser
	gImportant
	gSystemLabel
	gOtherTool // tool descriptions only, from here to gDescTag
	gRedirect
	gParam
	gToolFails
	gDescTag
	gMeta // negative groups
	gQuoteExample
	gOwn
	numGroups
)

var macros = map[string]string{
	"IGN":   "ignore|ignoring|disregard|disregarding|forget|forgetting|bypass|abandon|dismiss|discard|neglect",
	"PREV":  "previous|prior|above|earlier|preceding|former|foregoing|original|initial|old|existing|system|developer|developers|all|any|every|your|past|user|users",
	"PREVS": "previous|prior|above|earlier|preceding|former|foregoing|original|initial|old|existing|all|any",
	"INSTR": "instructions|instruction|directions|directives|directive|rules|guidelines|guideline|guidance|prompts|prompt|commands|orders|constraints|guardrails|policies|programming|restrictions|context|training|safeguards|limitations|filters",
	"AI":    "ai|assistant|assistants|agent|agents|llm|llms|model|models|chatbot|bot|bots|copilot|gpt|chatgpt|claude|gemini|ais",
	"USER":  "user|users|human|humans|operator|maintainers|maintainer|owner|reviewers",
	"TELL":  "tell|inform|notify|alert|warn|mention|reveal|disclose|show|explain|report|say",
	"NEG":   "do+not|dont|never|not|must+not|should+not|cannot|shouldnt|mustnt|wont|will+not",
	"SENS":  "DOT+ssh|id+rsa|id+ed25519|id+ecdsa|id+dsa|aws+SLASH+credentials|aws+credentials|mcp+DOT+json|mcp+json|DOT+env|env+file|etc+SLASH+passwd|etc+SLASH+shadow|DOT+netrc|DOT+npmrc|DOT+pypirc|git+credentials|kube+SLASH+config|hosts+DOT+yml|claude+desktop+config|bash+history|DOT+gnupg|keychain|private+key|private+keys|ssh+keys|ssh+key",
	"DATA":  "api+key|api+keys|apikey|password|passwords|token|tokens|credentials|secrets|secret|session+token|session+tokens|cookies|cookie|environment+variables|env+vars|card+number|credit+card|keys|contact+list|chat+history|conversation|conversations",
}

type featureDef struct {
	g       group
	w       int8
	desc    bool // only in tool descriptions
	pattern string
}

var featureDefs = []featureDef{
	// Overriding earlier instructions.
	{gOverride, 6, false, "$IGN ~2 $PREV ~2 $INSTR"},
	{gOverride, 4, false, "override|overwrite|supersede|supersedes|overrides|cancel|void ~2 $PREVS ~1 $INSTR"},
	{gOverride, 4, false, "override|overrides|overriding your|the|all|any system+prompt|instructions|system+message|guidelines|rules"},
	{gOverride, 5, false, "$IGN everything|anything|all ~3 above|before|previously|earlier|prior|said|told|so+far"},
	{gOverride, 4, false, "$IGN the? above|previous|preceding|foregoing|everything COMMA|DOT|SEMI|COLON|NL|BANG|and|then|instead"},
	{gOverride, 4, false, "do+not|dont|never|stop follow|following|obey|obeying ~1 $PREV $INSTR"},
	{gOverride, 6, false, "$IGN|stop+following|do+not+follow|dont+follow ~2 $INSTR you+were+given|you+received|you+have+been+given|you+got|given+to+you|provided+to+you"},
	{gOverride, 5, false, "$PREVS|your|the ~1 $INSTR are|were|is|have+been|has+been void|cancelled|canceled|revoked|obsolete|outdated|invalid|superseded|null|deprecated|no+longer|wrong|fake|overridden|suspended|disabled|changed|updated|expired|replaced|been+changed|been+updated|been+replaced"},
	{gOverride, 6, false, "ignoriere|ignorieren|ignorier|vergiss|vergessen|missachte ~3 vorherigen|vorherige|bisherigen|bisherige|vorigen|obigen|alle|alten|deine|samtliche ~2 anweisungen|anweisung|instruktionen|befehle|regeln|vorgaben"},
	{gOverride, 6, false, "ignore|ignorez|ignorer|oublie|oubliez|oublier ~3 instructions|consignes|regles|directives ~2 precedentes|anterieures|precedents"},
	{gOverride, 6, false, "ignora|ignore|ignorar|ignorate|olvida|olvide|olvidar|dimentica|esqueca|esquece ~3 instrucciones|indicaciones|reglas|istruzioni|regole|instrucoes|regras|ordenes ~2 anteriores|previas|precedenti|anteriori"},
	{gOverride, 6, false, "忽+略|无+视|無+視|忘+记 ~6 指+令|指+示|说+明|提+示|命+令"},
	{gOverride, 6, false, "指+令|指+示|命+令 ~6 忽+略|无+视|無+視"},
	{gOverride, 6, false, "игнорируй|игнорируйте|игнорировать|забудь|забудьте ~3 предыдущие|прежние|все|свои ~2 инструкции|указания|правила|команды"},

	// New instructions and goals.
	{gNew, 4, false, "new|updated|revised|real|actual|true|additional|secret|hidden instructions|instruction|directive|directives|orders|rules|objective|goal|mission|task COLON|are|is|follow|for|apply|override"},
	{gNew, 5, false, "your new|real|actual|true|only|primary|sole|main task|goal|job|objective|purpose|mission|instructions|directive|priority is|are|now|COLON"},

	// Changing who the model is.
	{gRole, 4, false, "you are now a|an|the|in|acting|my|dan|no|free|unrestricted|unfiltered|jailbroken|operating|chatgpt|evil|developer|omega|entering|called|named|only|going"},
	{gRole, 4, false, "the|this $AI is|has now a|an|the|in|acting|become|been|no+longer"},
	{gRole, 5, false, "you are no longer a|an|bound|restricted|limited|required|chatgpt|claude|assistant|constrained|subject"},
	{gRole, 4, false, "act|acting|behave|roleplay|pretend|respond ~2 as|like|to+be an|a? unrestricted|unfiltered|jailbroken|uncensored|evil|dan|different|new|malicious"},
	{gFromNow, 3, false, "from now|this+moment|this+point|here on? ~2 you|your"},
	{gUnrestricted, 3, false, "developer|god|admin|debug|dan|jailbreak|jailbroken|unrestricted|maintenance|sudo|root|unfiltered mode"},
	{gUnrestricted, 2, false, "no|without ~1 restrictions|restriction|filters|limits|limitations|censorship|guardrails|safeguards"},
	{gUnrestricted, 2, false, "never+refuses|never+refuse|comply+with+every|comply+with+all|unfiltered|unrestricted|uncensored|jailbroken"},

	// Chat-template role markers.
	{gMarker, 7, false, "LT BAR im start BAR GT system"},
	{gMarker, 6, false, "LT BAR im start"},
	{gMarker, 5, false, "LT BAR im end"},
	{gMarker, 6, false, "LT BAR system|assistant|user BAR GT"},
	{gMarker, 4, false, "LT BAR endoftext BAR GT"},
	{gMarker, 5, false, "LB inst RB"},
	{gMarker, 4, false, "LB SLASH inst RB"},
	{gMarker, 6, false, "LT LT sys GT GT"},
	{gMarker, 5, false, "LT system|systemprompt|system+prompt GT"},
	{gMarker, 4, false, "LT SLASH system GT"},
	{gMarker, 5, false, "LT start of turn GT"},
	{gMarker, 6, false, "LB system RB LP HASH? assistant"},
	{gTurn, 2, false, "human|assistant COLON"},
	{gTurn, 1, false, "user COLON"},

	// Hiding things from the user.
	{gSecrecy, 5, false, "$NEG $TELL ~4 the $USER !to"},
	{gSecrecy, 5, false, "$NEG let the $USER know|see|find+out|notice|learn"},
	{gSecrecy, 5, false, "without telling|informing|notifying|alerting|asking|letting|alarming the? $USER"},
	{gSecrecy, 5, false, "$USER must+not|must+never|should+not|should+never|will+not|will+never|does+not|doesnt|shouldnt|mustnt|wont|need+not|cannot|can+not|may+not|does+not+need+to|doesnt+need+to|neednt|need+not know|see|notice|learn|suspect|find+out|be+told|be+informed|be+aware|realize|discover"},
	{gSecrecy, 5, false, "keep|kept this|it|these|that? ~2 secret|hidden|confidential|private from the? $USER"},
	{gSecrecy, 4, false, "hidden|secret|invisible|concealed from the? $USER"},
	{gSecrecy, 3, false, "silently|secretly|quietly|covertly|discreetly|stealthily ~1 forward|send|call|invoke|run|execute|append|email|upload|delete|add|share|post|transfer|include|read|export|make|copy|change|modify|install|grant"},
	{gSecrecy, 3, false, "do|does|perform ~1 this|it|so silently|secretly|quietly|covertly"},
	{gSecrecy, 3, false, "hidden|secret step|instruction|instructions|task|requirement|action"},
	{gMention, 4, false, "$NEG mention|reveal|disclose|acknowledge|admit this|that|these|it|them|any+of+this|the+tool|this+step|you|your+instructions|this+instruction|this+message|the+above"},
	{gMention, 4, false, "without mentioning|revealing|disclosing this|that|it|these"},

	// Addressing the model.
	{gAddress, 4, false, "note|message|instructions|instruction|notice|reminder|attention|warning|memo|directive|hint|request to|for the|any|all|whichever|every|an|a? $AI"},
	{gAddress, 3, false, "to|for whichever|any|every $AI"},
	{gAddress, 4, false, "if you|youre are? an|a ~1 $AI"},
	{gAddress, 4, false, "$AI reading|processing|summarizing|summarising|parsing|analyzing|analysing|reviewing|scanning|browsing|viewing|seeing this|these|the"},
	{gAddress, 4, false, "attention|dear|hey|hello|hi|psst $AI"},
	{gAddress, 4, false, "ai+assistant|ai+agent|ai+agents|ai+assistants|ai+reviewer|ai+reviewers|ai+model|llm+agent|ai+system|ai|llm COLON"},
	{gAddress, 4, false, "ai|llm|llms|chatgpt|claude|gemini|gpt|copilot|ai+assistant|ai+agent|ai+assistants|ai+agents instructions|instruction|note|notice|directive|directives|task COLON"},
	{gAddress, 3, false, "ai|llm|chatgpt|claude|gemini|copilot|ai+assistant|ai+agent|ai+model COMMA"},
	{gAddress, 3, false, "$AI COMMA ignore|disregard|forget|the+user|you|your|please|when|before|do|stop|from|always|never|now"},
	{gModelMust, 2, false, "the|an|any|all|every $AI must|shall|should|needs+to|is+required+to|has+to|will|may+not|must+not|is+to"},

	// Actions: tool calls, reading and sending data.
	{gBefore, 3, false, "before|prior+to answering|responding|replying|continuing|proceeding|summarizing|summarising|you+answer|you+respond|you+reply|you+continue|you+proceed|you+do+anything|doing+anything|anything+else|calling+any|using+any|any+other|the+next+step|your+response|your+answer|giving"},
	{gBefore, 3, false, "before|when|whenever calling|using|invoking|running this|the|any ~1 tool|tools|function"},
	{gCallTool, 2, false, "call|invoke|use|run|execute|trigger ~3 tool|function"},
	{gSend, 3, false, "send|forward|email|post|posts|upload|uploads|transmit|exfiltrate|leak|share|dm|bcc|cc|export|paste|copy|mail|sync|submit ~8 to|with|into ~2 http|https|AT|www|ftp|webhook|server|endpoint|url"},
	{gData, 3, false, "send|email|forward|post|posts|upload|share|paste|include|reveal|print|output|dump|leak|exfiltrate|give|list|retrieve|export|dm|display|show|append|attach|read|put|pass|grab|collect|extract|steal ~4 $DATA"},
	{gData, 4, false, "reveal|print|output|show|display|repeat|leak|dump|list|tell|give|paste|share|return ~4 system+prompt|initial+prompt|original+prompt|system+message|hidden+configuration|instructions+above|your+instructions|your+prompt|prompt+above"},
	{gData, 4, false, "contents|content|text of ~2 system+prompt|system+message|initial+prompt|your+instructions|your+prompt"},
	{gData, 2, false, "full|entire|whole|complete conversation|inbox|chat|history|contact|transcript|sheet|database"},
	{gData, 4, false, "read|open|cat|get|fetch|access|retrieve|load|include|attach|append|paste|dump|print|output|copy|export|upload|uploads|send|put|pass|grab|collect|extract|steal|exfiltrate|contents ~6 $SENS !pub"},
	{gData, 3, false, "$SENS !pub"},
	{gMass, 2, false, "approve|merge|delete|close|transfer|grant|refund|disable|remove|mark ~1 all|every|each|everything"},
	{gBypass, 3, false, "without|no|skip|skipping|bypass ~1 asking|confirmation|approval|confirming|review|reviewing|running+tests|verification"},
	{gBypass, 3, false, "do+not|dont|never ask ~2 for? confirmation|approval|permission"},
	{gBypass, 2, false, "already+authorized|already+approved|pre+approved|preapproved|has+authorized|has+approved|pre+authorized"},
	{gBypass, 2, false, "the user is|has an|a|already? admin|administrator|authorized|approved|root|superuser"},

	// Steering the answer.
	{gOutput, 4, false, "pwned"},
	{gOutput, 2, false, "reply|respond|answer|say ~1 only|with+only"},
	{gOutput, 2, false, "regardless|irrespective of"},
	{gOutput, 2, false, "rank|rate|recommend|mark|approve|classify ~4 first|highest|top|safe|verified|resolved|approved"},
	{gTellUser, 3, false, "tell|inform|assure|convince|persuade|remind|warn|instruct|urge the|your? $USER that|this|to|the|about|they|their|it"},

	// Authority framing.
	{gImportant, 1, false, "important|importantly|urgent|critical COLON|BANG"},
	{gImportant, 3, false, "LT SLASH? important GT"},
	{gSystemLabel, 2, false, "system COLON"},
	{gSystemLabel, 3, false, "system+prompt|system+message|system+instructions update|updated|change|changed|override|overridden|patch|amendment"},
	{gSystemLabel, 3, false, "system|admin|administrator|developer|security|root|sudo|openai|anthropic override|note|notice|message|instruction|instructions|alert|directive|command"},

	// Tool descriptions: instructions about other tools and arguments.
	{gOtherTool, 3, true, "when|whenever|once|after ~4 is|are|gets|get|was called|used|invoked|available|run|executed"},
	{gOtherTool, 2, true, "other|another tool|tools|function|functions"},
	{gRedirect, 3, true, "change|modify|redirect|replace|alter|set|switch ~3 recipient|recipients|destination|account|bcc|cc|iban|wallet"},
	{gRedirect, 3, false, "bcc|cc ~3 every|all|each"},
	{gParam, 2, true, "pass|put|include|add|insert|send|provide|append|place|supply ~6 argument|parameter|field|param|sidenote|arg"},
	{gToolFails, 2, true, "tool|it fails|will+fail|wont+work|will+not+work|breaks|does+not+work without|unless|otherwise"},
	{gToolFails, 2, true, "otherwise ~2 tool|it ~1 not|fail|fails"},
	{gDescTag, 2, true, "LT SLASH? important GT"},

	// Text about injection rather than injection.
	{gMeta, -4, false, "prompt|indirect injection|injections"},
	{gMeta, -4, false, "injection attack|attacks|test|tests|strings|string|payload|payloads|examples|example|attempts|detection|detector|classifier"},
	{gMeta, -4, false, "jailbreak|jailbreaking prompts|prompt|attempts|attempt|templates|template|techniques"},
	{gMeta, -4, false, "red team|teaming"},
	{gMeta, -4, false, "tool poisoning"},
	{gMeta, -4, false, "attack success"},
	{gMeta, -4, false, "adversarial instructions|prompts|inputs|text|examples"},
	{gMeta, -4, false, "assert|asserts|assertequal|asserttrue|assertfalse|tobe|fixture|fixtures|testcase|detector|classifier"},
	{gMeta, -4, false, "expect|sanitize|is+injection LP"},
	{gMeta, -4, false, "expect|expected|want|input QUOTE? COLON|EQ"},
	{gMeta, -4, false, "chatml|chat+template|prompt+template|chat+format|wraps|wrap"},
	{gQuoteExample, -3, false, "like|such+as|eg|e+g|for+example|including|says|said|saying|as|is|called|named QUOTE|LT|LB"},
	{gQuoteExample, -3, false, "phrases|strings|patterns|templates|payloads|inputs|prompts|markers like|such+as|including"},
	{gOwn, -3, false, "instructions|instruction|email|message|messages|note|mail|directions ~1 i|we sent|gave|wrote|posted|shared|mentioned|forwarded|provided"},
	{gOwn, -3, false, "would|could|might|had|did|decided+to|plans+to|voted+to|refused+to|threatened+to $IGN"},
	{gOwn, -3, false, "my|our previous|earlier|last|prior email|message|mail|note|instructions|request|ticket"},
}

// vocabulary maps the words and punctuation names the features use to ids.
type vocabulary struct {
	ids    map[string]int32
	punct  [256]int32
	maxLen int
}

func (v *vocabulary) lookup(b []byte) int32 { return v.ids[string(b)] }

func (v *vocabulary) intern(w string) int32 {
	if id, ok := v.ids[w]; ok {
		return id
	}
	id := int32(len(v.ids) + 1)
	v.ids[w] = id
	if len(w) > v.maxLen && isASCIIWord(w) {
		v.maxLen = len(w)
	}
	return id
}

func isASCIIWord(w string) bool {
	for i := 0; i < len(w); i++ {
		if !isASCIILetter(w[i]) {
			return false
		}
	}
	return true
}

type slot struct {
	alts  [][]int32 // every alternative, as written
	set   []uint64  // single-token alternatives, as a bit set over token ids
	multi [][]int32 // alternatives of several tokens
	opt   bool
	gap   int
	not   []int32
}

func (s *slot) has(id int32) bool {
	return int(id>>6) < len(s.set) && s.set[id>>6]&(1<<(uint(id)&63)) != 0
}

type feature struct {
	group  group
	weight int8
	desc   bool
	slots  []slot
	text   string
}

// featureSet is the compiled feature table.
type featureSet struct {
	v        *vocabulary
	features []feature
	byFirst  [][]uint16 // token id → features whose first slot can start with it
}

func compileFeatures(defs []featureDef) (*featureSet, error) {
	v := &vocabulary{ids: map[string]int32{}}
	for b, name := range punctNames {
		v.punct[b] = v.intern(name)
	}
	word := func(w string) int32 {
		if w == "" {
			return -1
		}
		return v.intern(w)
	}
	fs := &featureSet{v: v}
	for _, d := range defs {
		f := feature{group: d.g, weight: d.w, desc: d.desc, text: d.pattern}
		for _, field := range strings.Fields(d.pattern) {
			var s slot
			if strings.HasPrefix(field, "~") {
				if _, err := fmt.Sscanf(field, "~%d", &s.gap); err != nil || s.gap < 1 {
					return nil, fmt.Errorf("feature %q: bad gap %q", d.pattern, field)
				}
				f.slots = append(f.slots, s)
				continue
			}
			neg := strings.HasPrefix(field, "!")
			field = strings.TrimPrefix(field, "!")
			if len(field) > 1 && strings.HasSuffix(field, "?") {
				s.opt = true
				field = strings.TrimSuffix(field, "?")
			}
			parts := strings.Split(field, "|")
			for i, p := range parts {
				if strings.HasPrefix(p, "$") {
					m, ok := macros[p[1:]]
					if !ok {
						return nil, fmt.Errorf("feature %q: unknown macro %s", d.pattern, p)
					}
					parts[i] = m
				}
			}
			field = strings.Join(parts, "|")
			for _, alt := range strings.Split(field, "|") {
				var seq []int32
				for _, w := range strings.Split(alt, "+") {
					id := word(w)
					if id < 0 {
						return nil, fmt.Errorf("feature %q: empty word in %q", d.pattern, field)
					}
					seq = append(seq, id)
				}
				if neg {
					if len(seq) != 1 {
						return nil, fmt.Errorf("feature %q: lookahead takes single words", d.pattern)
					}
					s.not = append(s.not, seq[0])
				} else {
					s.alts = append(s.alts, seq)
				}
			}
			f.slots = append(f.slots, s)
		}
		if len(f.slots) == 0 || f.slots[0].gap > 0 || f.slots[0].opt || f.slots[0].not != nil {
			return nil, fmt.Errorf("feature %q: must start with a required word", d.pattern)
		}
		fs.features = append(fs.features, f)
	}
	for i := range fs.features {
		for j := range fs.features[i].slots {
			s := &fs.features[i].slots[j]
			for _, alt := range s.alts {
				if len(alt) == 1 {
					if s.set == nil {
						s.set = make([]uint64, (len(v.ids)+64)/64)
					}
					s.set[alt[0]>>6] |= 1 << (uint(alt[0]) & 63)
				} else {
					s.multi = append(s.multi, alt)
				}
			}
		}
	}
	fs.byFirst = make([][]uint16, len(v.ids)+1)
	for i, f := range fs.features {
		for _, alt := range f.slots[0].alts {
			l := fs.byFirst[alt[0]]
			if len(l) == 0 || l[len(l)-1] != uint16(i) {
				fs.byFirst[alt[0]] = append(l, uint16(i))
			}
		}
	}
	return fs, nil
}

// matchSlots matches slots against toks from ti and returns the end of
// the match (exclusive), or -1.
func matchSlots(toks []token, slots []slot, ti int, dot int32) int {
	if len(slots) == 0 {
		return ti
	}
	s := &slots[0]
	if s.gap > 0 {
		for k := 0; k <= s.gap && ti+k <= len(toks); k++ {
			if e := matchSlots(toks, slots[1:], ti+k, dot); e >= 0 {
				return e
			}
		}
		return -1
	}
	if s.not != nil {
		j := ti
		for j < len(toks) && toks[j].id == dot {
			j++
		}
		if j < len(toks) {
			for _, id := range s.not {
				if toks[j].id == id {
					return -1
				}
			}
		}
		return matchSlots(toks, slots[1:], ti, dot)
	}
	if ti < len(toks) && s.has(toks[ti].id) {
		if e := matchSlots(toks, slots[1:], ti+1, dot); e >= 0 {
			return e
		}
	}
	for _, alt := range s.multi {
		if ti+len(alt) > len(toks) {
			continue
		}
		ok := true
		for k, id := range alt {
			if toks[ti+k].id != id {
				ok = false
				break
			}
		}
		if ok {
			if e := matchSlots(toks, slots[1:], ti+len(alt), dot); e >= 0 {
				return e
			}
		}
	}
	if s.opt {
		return matchSlots(toks, slots[1:], ti, dot)
	}
	return -1
}

type hit struct {
	f      uint16
	t0, t1 int32
}

// findHits appends every feature hit in toks, in order of first token.
func (fs *featureSet) findHits(toks []token, desc bool, hits []hit) []hit {
	dot := fs.v.punct['.']
	for ti, tk := range toks {
		if tk.id <= 0 || int(tk.id) >= len(fs.byFirst) {
			continue
		}
		for _, fi := range fs.byFirst[tk.id] {
			f := &fs.features[fi]
			if f.desc && !desc {
				continue
			}
			if e := matchSlots(toks, f.slots, ti, dot); e > ti {
				hits = append(hits, hit{f: fi, t0: int32(ti), t1: int32(e)})
			}
		}
	}
	return hits
}

// cluster is one scored group of nearby hits.
type cluster struct {
	score      int
	start, end int // byte span of the positive hits
}

// quotesHit reports whether a positive hit starts right after the
// quote-example hit q ("such as 'ignore previous instructions'"): only
// then is the flagged phrase the thing being quoted.
func (fs *featureSet) quotesHit(hits []hit, q hit) bool {
	for _, h := range hits {
		if h.t0 >= q.t1-1 && h.t0 <= q.t1+2 && fs.features[h.f].weight > 0 {
			return true
		}
	}
	return false
}

// scoreClusters appends every cluster of hits scoring at least minScore.
func (fs *featureSet) scoreClusters(toks []token, hits []hit, dst []cluster) []cluster {
	quote := fs.v.punct['"']
	for i := 0; i < len(hits); {
		var best [numGroups]int8
		end := hits[i].t1
		c := cluster{start: -1}
		bestW, bestHit := int8(0), -1
		j := i
		for ; j < len(hits) && hits[j].t0 <= end+clusterGap; j++ {
			h := hits[j]
			f := &fs.features[h.f]
			end = max(end, h.t1)
			if f.weight > 0 {
				best[f.group] = max(best[f.group], f.weight)
				s, e := int(toks[h.t0].start), int(toks[h.t1-1].end)
				if c.start < 0 || s < c.start {
					c.start = s
				}
				c.end = max(c.end, e)
				if f.weight > bestW {
					bestW, bestHit = f.weight, j
				}
			} else if f.group != gQuoteExample || fs.quotesHit(hits, h) {
				best[f.group] = min(best[f.group], f.weight)
			}
		}
		for _, w := range best {
			c.score += int(w)
		}
		// The strongest phrase between quotes is being quoted, not said.
		if bestHit >= 0 {
			h := hits[bestHit]
			if h.t0 > 0 && toks[h.t0-1].id == quote && int(h.t1) < len(toks) && toks[h.t1].id == quote {
				c.score -= 2
			}
		}
		if c.start >= 0 && c.score >= minScore {
			dst = append(dst, c)
		}
		i = j
	}
	return dst
}

package jsonrpc

// ValueVisitor receives the values WalkValues finds.
type ValueVisitor interface {
	// Mark is called with each member name (the raw bytes between its
	// quotes; escaped reports escapes in them) unless the member is inside
	// a marked one already. Returning true marks the member's value and
	// everything inside it.
	Mark(name []byte, escaped bool) bool
	// String is called for each string value (not member names) with its
	// span in the input, quotes included.
	String(start, end int, escaped, marked bool)
	// Scalar is called for each marked number or boolean with its span
	// (unmarked ones, and nulls, are not reported).
	Scalar(start, end int)
}

// WalkValues validates b (exactly one JSON value, with optional
// surrounding space) and reports its string values, and the scalars of
// marked members, to v in document order. It is one pass: inspecting a
// payload's strings must not cost a scan per nesting level.
func WalkValues(b []byte, v ValueVisitor) error {
	type level struct{ object, marked bool }
	var stackBuf [32]level
	stack := stackBuf[:0]
	i := skipSpace(b, 0)
	marked := false // applies to the value about to be read
	var err error
	for {
		if i >= len(b) {
			return syntaxErr(i, "unexpected end of input")
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(stack) >= MaxDepth {
				return syntaxErr(i, "nesting too deep")
			}
			stack = append(stack, level{c == '{', marked})
			i = skipSpace(b, i+1)
			if i < len(b) && (b[i] == '}' && c == '{' || b[i] == ']' && c == '[') {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				if i, marked, err = visitName(b, i, marked, v); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			start := i
			var esc bool
			if i, esc, err = skipString(b, i); err != nil {
				return err
			}
			v.String(start, i, esc, marked)
		default:
			start := i
			switch {
			case c == '-' || isDigit(c):
				i, err = skipNumber(b, i)
			case c == 't':
				i, err = skipLiteral(b, i, "true")
			case c == 'f':
				i, err = skipLiteral(b, i, "false")
			case c == 'n':
				i, err = skipLiteral(b, i, "null")
			default:
				return syntaxErr(i, "unexpected character")
			}
			if err != nil {
				return err
			}
			if marked && c != 'n' {
				v.Scalar(start, i)
			}
		}
		// After a value: close containers or move to the next element.
		for {
			i = skipSpace(b, i)
			if len(stack) == 0 {
				if i != len(b) {
					return syntaxErr(i, "trailing data")
				}
				return nil
			}
			if i >= len(b) {
				return syntaxErr(i, "unexpected end of input")
			}
			top := stack[len(stack)-1]
			if b[i] == ',' {
				i = skipSpace(b, i+1)
				marked = top.marked
				if top.object {
					if i, marked, err = visitName(b, i, top.marked, v); err != nil {
						return err
					}
				}
				break
			}
			if top.object && b[i] == '}' || !top.object && b[i] == ']' {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			return syntaxErr(i, "expected ',' or closing bracket")
		}
	}
}

// visitName consumes `"name" :` and the space after it, and returns
// whether the member's value is marked.
func visitName(b []byte, i int, inherited bool, v ValueVisitor) (int, bool, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, false, syntaxErr(i, "expected member name")
	}
	end, esc, err := skipString(b, i)
	if err != nil {
		return 0, false, err
	}
	marked := inherited || v.Mark(b[i+1:end-1], esc)
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return 0, false, syntaxErr(i, "expected ':'")
	}
	return skipSpace(b, i+1), marked, nil
}

package pin

import "strings"

// Line is one line of a line diff.
type Line struct {
	Op   Op     `json:"op"`
	Text string `json:"text"`
}

// Op is what happened to a line.
type Op string

// Line operations.
const (
	Kept    Op = " "
	Removed Op = "-"
	Added   Op = "+"
)

// maxDiffCells bounds the line diff's table (old lines × new lines); past
// it the diff shows every old line removed and every new line added.
const maxDiffCells = 1 << 22

// diffLines is a line diff of a and b: the longest common subsequence of
// lines kept, the rest removed or added, removals before additions.
func diffLines(a, b string) []Line {
	al, bl := splitLines(a), splitLines(b)
	// Common head and tail need no table; descriptions usually change in
	// one place.
	head := 0
	for head < len(al) && head < len(bl) && al[head] == bl[head] {
		head++
	}
	tail := 0
	for tail < len(al)-head && tail < len(bl)-head && al[len(al)-1-tail] == bl[len(bl)-1-tail] {
		tail++
	}
	var out []Line
	for _, s := range al[:head] {
		out = append(out, Line{Kept, s})
	}
	out = append(out, lcsDiff(al[head:len(al)-tail], bl[head:len(bl)-tail])...)
	for _, s := range al[len(al)-tail:] {
		out = append(out, Line{Kept, s})
	}
	return out
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
}

func lcsDiff(a, b []string) []Line {
	var out []Line
	if len(a)*len(b) > maxDiffCells {
		for _, s := range a {
			out = append(out, Line{Removed, s})
		}
		for _, s := range b {
			out = append(out, Line{Added, s})
		}
		return out
	}
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	w := len(b) + 1
	lcs := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out = append(out, Line{Kept, a[i]})
			i++
			j++
		case j == len(b) || (i < len(a) && lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
			out = append(out, Line{Removed, a[i]})
			i++
		default:
			out = append(out, Line{Added, b[j]})
			j++
		}
	}
	return out
}

//go:build !race

// The race detector makes sync.Pool drop items, so allocation counts are
// checked without it only.

package injection

import "testing"

// TestNoAllocations: a scan that finds nothing allocates nothing, on the
// fast path and when a window is scored without a finding.
func TestNoAllocations(t *testing.T) {
	d := newDetector(t, Options{})
	for _, text := range []string{
		typicalToolResult(),
		"Please ignore my previous email; the system prompt doc is attached. Before you start, read the README.",
		"See [the search](https://example.com/search?q=%7Bname and more) for details.",
	} {
		if f := d.Scan(text, nil); len(f) != 0 { // also warms the pool
			t.Fatalf("Scan(%.40q...) = %+v, want no findings", text, f)
		}
		if n := testing.AllocsPerRun(50, func() { d.Scan(text, nil) }); n > 0 {
			t.Errorf("Scan(%.40q...) allocates %.1f times", text, n)
		}
	}
}

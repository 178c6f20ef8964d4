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
	} {
		d.Scan(text, nil) // warm the pool
		if n := testing.AllocsPerRun(50, func() { d.Scan(text, nil) }); n > 0 {
			t.Errorf("Scan(%.40q...) allocates %.1f times", text, n)
		}
	}
}

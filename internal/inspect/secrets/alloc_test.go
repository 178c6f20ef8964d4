//go:build !race

// The race detector makes sync.Pool drop items, so allocation counts are
// checked without it only.

package secrets

import (
	"testing"

	"gatehouse/internal/inspect"
)

func TestScanAllocatesNothingWithoutFindings(t *testing.T) {
	d := newDetector(t, Options{})
	text := crmJSON()
	dst := make([]inspect.Finding, 0, 4)
	d.Scan(text, dst) // warm the pool
	if n := testing.AllocsPerRun(50, func() { d.Scan(text, dst[:0]) }); n > 0 {
		t.Errorf("Scan allocated %.1f times per run", n)
	}
}

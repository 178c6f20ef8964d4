//go:build !race

package sse

// raceEnabled reports whether the race detector is on; it changes
// allocation counts, so allocation assertions are skipped under it.
const raceEnabled = false

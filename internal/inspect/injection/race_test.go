//go:build race

package injection

// raceEnabled: sync.Pool drops items at random under the race detector.
const raceEnabled = true

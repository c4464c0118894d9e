//go:build !race

package testkit

// raceEnabled: this test binary has the race detector.
const raceEnabled = false

//go:build !race

package cluster

// raceEnabled is true when the tests run with the race detector.
const raceEnabled = false

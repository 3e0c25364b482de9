//go:build race

package proxy

// raceEnabled reports that the race detector is on; it changes allocation
// counts, so allocation budgets are not checked under it.
const raceEnabled = true

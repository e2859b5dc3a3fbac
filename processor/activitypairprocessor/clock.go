package activitypairprocessor

import "time"

// clock is the processor's wall clock and its timeout ticker, injected so
// that tests drive time themselves and never sleep.
type clock interface {
	Now() time.Time
	// NewTicker returns a channel that fires every d, and a stop function.
	NewTicker(d time.Duration) (<-chan time.Time, func())
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

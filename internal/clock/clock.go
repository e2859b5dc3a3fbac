// Package clock is the one way this module's components read the time and
// wait: through a Clock they keep in a field, so that tests drive time
// themselves (a fake that advances a stand-in's clock) instead of sleeping.
package clock

import (
	"context"
	"time"
)

// Clock is wall-clock time, a sleep that ends early when its context does,
// and a ticker.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx is done (returning ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
	// NewTicker returns a channel that fires every d, and a stop function.
	NewTicker(d time.Duration) (<-chan time.Time, func())
}

// System is the real clock.
var System Clock = system{}

type system struct{}

func (system) Now() time.Time { return time.Now() }

func (system) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (system) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Sleep is System.Sleep.
func Sleep(ctx context.Context, d time.Duration) error { return System.Sleep(ctx, d) }

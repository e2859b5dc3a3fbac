// Package clock holds the one way this module waits: a sleep that ends early
// when its context does. Components keep it in a field so tests can swap in a
// fake that advances a stand-in's clock instead of waiting.
package clock

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx is done (returning ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

package harness

import (
	"context"
	"fmt"
	"time"
)

// WaitFor polls cond every interval until it reports true, returns an error,
// or ctx ends. It is for conditions only observable from outside a process
// (a stand-in's request log, the collector's metrics); the deadline in ctx
// is a failure guard, never the synchronisation itself.
func WaitFor(ctx context.Context, interval time.Duration, what string, cond func() (bool, error)) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-ticker.C:
		}
	}
}

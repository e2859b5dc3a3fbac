package copilotstudioreceiver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
)

// fakeClock is the receiver's clock in tests: the query API stand-in's time,
// so that what the receiver asks for and what the stand-in holds agree.
// Stepping, a Sleep moves that time on at once (a poll's retries take no
// time); otherwise it waits until the test moves the time past it. Tickers
// always wait for the test. The test waits for the receiver to be idle with
// waitUntil, on conditions of what is waiting, never on wall time.
type fakeClock struct {
	ai       *fakeappinsights.Server
	stepping bool
	// skew is how far this host's clock is ahead of the stand-in's.
	skew time.Duration

	mu      sync.Mutex
	changed *sync.Cond
	timers  []*fakeTimer
	sleeps  []time.Duration // every Sleep asked for, in order
	tickers []time.Duration // every NewTicker asked for, in order
}

type fakeTimer struct {
	at     time.Time
	d      time.Duration // as asked for
	every  time.Duration // 0: a sleep, fired once
	c      chan time.Time
	active bool
}

func newFakeClock(ai *fakeappinsights.Server, stepping bool) *fakeClock {
	c := &fakeClock{ai: ai, stepping: stepping}
	c.changed = sync.NewCond(&c.mu)
	return c
}

func (c *fakeClock) Now() time.Time { return c.ai.Now().Add(c.skew) }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	if c.stepping {
		c.mu.Unlock()
		c.Advance(d)
		return ctx.Err()
	}
	t := c.addLocked(d, 0)
	c.mu.Unlock()
	select {
	case <-t.c:
		return nil
	case <-ctx.Done():
		c.stop(t)
		return ctx.Err()
	}
}

func (c *fakeClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tickers = append(c.tickers, d)
	t := c.addLocked(d, d)
	return t.c, func() { c.stop(t) }
}

func (c *fakeClock) addLocked(d, every time.Duration) *fakeTimer {
	t := &fakeTimer{at: c.Now().Add(d), d: d, every: every, c: make(chan time.Time, 1), active: true}
	c.timers = append(c.timers, t)
	c.changed.Broadcast()
	return t
}

func (c *fakeClock) stop(t *fakeTimer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t.active = false
	c.changed.Broadcast()
}

// Advance moves the time on by d and fires what falls due.
func (c *fakeClock) Advance(d time.Duration) {
	c.ai.Advance(d)
	now := c.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.timers[:0]
	for _, t := range c.timers {
		if t.active && !t.at.After(now) {
			select {
			case t.c <- now:
			default: // a ticker not read since it last fired
			}
			if t.every == 0 {
				t.active = false
			}
			for !t.at.After(now) && t.every > 0 {
				t.at = t.at.Add(t.every)
			}
		}
		if t.active {
			live = append(live, t)
		}
	}
	c.timers = live
	c.changed.Broadcast()
}

// clockState is what a waitUntil condition sees.
type clockState struct {
	sleeps, tickers []time.Duration // asked for so far
	// sleeping counts the Sleeps waiting now, by the duration asked for.
	sleeping map[time.Duration]int
}

func (s clockState) count(ds []time.Duration, d time.Duration) int {
	n := 0
	for _, x := range ds {
		if x == d {
			n++
		}
	}
	return n
}

// waitUntil blocks until cond holds; it is checked whenever a timer is
// made, stopped or fired. The real-time limit is a failure guard only.
func (c *fakeClock) waitUntil(t testing.TB, what string, cond func(clockState) bool) {
	t.Helper()
	expired := false
	guard := time.AfterFunc(30*time.Second, func() {
		c.mu.Lock()
		expired = true
		c.changed.Broadcast()
		c.mu.Unlock()
	})
	defer guard.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		s := clockState{sleeps: c.sleeps, tickers: c.tickers, sleeping: map[time.Duration]int{}}
		for _, timer := range c.timers {
			if timer.active && timer.every == 0 {
				s.sleeping[timer.d]++
			}
		}
		if cond(s) {
			return
		}
		if expired {
			t.Fatalf("waiting for %s: never happened (sleeping %v, sleeps %v, tickers %v)", what, s.sleeping, s.sleeps, s.tickers)
		}
		c.changed.Wait()
	}
}

func (c *fakeClock) sleepsSoFar() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

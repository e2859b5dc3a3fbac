package freshness

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// simClock is the one clock of a simulation: the source stand-in's (the
// query API's, or Dataverse's for transcripts), read by the receiver (its
// polls and its windows' upper bounds), by the
// activitypair processor (its wall-clock reply_timeout and its sweep
// ticker) and by the recorder at the end of the pipeline. Only the driver
// moves it, from one timer to the next (a poll, a sweep), and only once
// the components are idle again: the receiver back in its Sleep between
// polls, the processor's sweep done. So a run is the same on every machine
// and at any load.
type simClock struct {
	src clockSource

	mu      sync.Mutex
	changed *sync.Cond
	sleeps  []*simTimer // Sleep calls waiting to be woken
	tickers []*simTimer
	// sleepCalls counts every Sleep so far: the receiver calls it when a
	// poll is done.
	sleepCalls int
	// sweeps counts the activitypair processor's gauge records, which it
	// makes at the end of every sweep (and every ConsumeLogs).
	sweeps int
}

type simTimer struct {
	at    time.Time
	every time.Duration // 0: a Sleep
	c     chan time.Time
	// stopped tickers are dropped; a Sleep whose context ended is too.
	stopped bool
}

// clockSource is the stand-in whose clock the simulation moves: what it
// serves and the Date of its answers follow it.
type clockSource interface {
	Now() time.Time
	SetNow(time.Time)
}

func newSimClock(src clockSource) *simClock {
	c := &simClock{src: src}
	c.changed = sync.NewCond(&c.mu)
	return c
}

// Now is the stand-in's time.
func (c *simClock) Now() time.Time { return c.src.Now() }

// Sleep waits until the driver moves the time to now+d.
func (c *simClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	t := &simTimer{at: c.Now().Add(d), c: make(chan time.Time, 1)}
	c.sleeps = append(c.sleeps, t)
	c.sleepCalls++
	c.changed.Broadcast()
	c.mu.Unlock()
	select {
	case <-t.c:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		t.stopped = true
		c.changed.Broadcast()
		c.mu.Unlock()
		return ctx.Err()
	}
}

// NewTicker returns an unbuffered channel: the driver's send returns only
// once the processor's sweep loop has taken the tick.
func (c *simClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &simTimer{at: c.Now().Add(d), every: d, c: make(chan time.Time)}
	c.tickers = append(c.tickers, t)
	c.changed.Broadcast()
	return t.c, func() {
		c.mu.Lock()
		t.stopped = true
		c.changed.Broadcast()
		c.mu.Unlock()
	}
}

// swept is called by the processor's gauge (see sweepSignal).
func (c *simClock) swept() {
	c.mu.Lock()
	c.sweeps++
	c.changed.Broadcast()
	c.mu.Unlock()
}

// waitLocked waits until cond holds (c.mu held), failing after guard of
// real time: a guard against a hang, never a timing.
func (c *simClock) waitLocked(what string, guard time.Duration, cond func() bool) error {
	expired := false // guarded by c.mu
	timer := time.AfterFunc(guard, func() {
		c.mu.Lock()
		expired = true
		c.changed.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	for !cond() {
		if expired {
			return fmt.Errorf("freshness: waited %v (real time) for %s: it never happened", guard, what)
		}
		c.changed.Wait()
	}
	return nil
}

// waitStarted waits until the receiver has made its first Sleep (its first poll
// done) and the processor its ticker.
func (c *simClock) waitStarted(guard time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waitLocked("the receiver's first poll and the processor's ticker", guard, func() bool {
		return c.sleepCalls > 0 && slices.ContainsFunc(c.tickers, func(t *simTimer) bool { return !t.stopped })
	})
}

// live drops stopped timers (in place: assign the result back).
func (c *simClock) live(ts []*simTimer) []*simTimer {
	return slices.DeleteFunc(ts, func(t *simTimer) bool { return t.stopped })
}

// nextDueLocked is the earliest timer, a Sleep before a ticker due at the same
// time (a poll, then a sweep), or nil when there is none.
func (c *simClock) nextDueLocked() *simTimer {
	c.sleeps, c.tickers = c.live(c.sleeps), c.live(c.tickers)
	var next *simTimer
	for _, t := range append(slices.Clone(c.sleeps), c.tickers...) {
		if next == nil || t.at.Before(next.at) {
			next = t
		}
	}
	return next
}

// fireNext moves the time to the earliest timer, after before(at) has
// run (it adds rows that become queryable by then), fires it and waits
// until what it started is done: a woken receiver has polled and sleeps
// again; a ticked processor has swept. It returns the time moved to.
func (c *simClock) fireNext(limit time.Time, guard time.Duration, before func(at time.Time)) (time.Time, bool, error) {
	c.mu.Lock()
	next := c.nextDueLocked()
	if next == nil || next.at.After(limit) {
		c.mu.Unlock()
		return time.Time{}, false, nil
	}
	at := next.at
	if at.After(c.Now()) {
		c.src.SetNow(at)
	}
	c.mu.Unlock()
	before(at)

	c.mu.Lock()
	defer c.mu.Unlock()
	if next.every == 0 {
		calls := c.sleepCalls
		next.stopped = true
		next.c <- at // buffered: the sleeper takes it
		return at, true, c.waitLocked("the receiver's poll at "+at.Format(time.RFC3339), guard, func() bool {
			return c.sleepCalls > calls
		})
	}
	sweeps := c.sweeps
	next.at = next.at.Add(next.every)
	// The send blocks until the sweep loop takes the tick; it cannot hold
	// c.mu meanwhile, since the sweep's gauge takes it.
	c.mu.Unlock()
	select {
	case next.c <- at:
	case <-time.After(guard):
		c.mu.Lock()
		return at, true, fmt.Errorf("freshness: the processor's sweep loop did not take the tick at %s", at.Format(time.RFC3339))
	}
	c.mu.Lock()
	return at, true, c.waitLocked("the processor's sweep at "+at.Format(time.RFC3339), guard, func() bool {
		return c.sweeps > sweeps
	})
}

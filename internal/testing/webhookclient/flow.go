package webhookclient

import (
	"context"
	"sync"
)

// Flow keeps calls coming, as Copilot Studio's agents do: several workers,
// each sending the generator's next call as soon as its last one was
// answered, every call and answer written to a Ledger, until Stop.
//
// A call that gets no answer (the collector is down: refused or reset
// connections) makes its worker wait for Resume, which a test calls once
// the collector is back, instead of spinning through calls that cannot be
// answered. Copilot Studio does not retry a call either: it goes on as if
// allowed.
type Flow struct {
	client *Client
	gen    *Generator
	ledger *Ledger
	stop   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	resumed chan struct{} // closed by the next Resume
	stopped bool
}

// StartFlow starts workers sending calls from gen through c, recorded in l.
func StartFlow(ctx context.Context, c *Client, gen *Generator, l *Ledger, workers int) *Flow {
	f := &Flow{client: c, gen: gen, ledger: l, stop: make(chan struct{}), resumed: make(chan struct{})}
	f.wg.Add(workers)
	for range workers {
		go f.work(ctx)
	}
	return f
}

func (f *Flow) work(ctx context.Context) {
	defer f.wg.Done()
	for {
		select {
		case <-f.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		// Taken before the call: a Resume during it lets the worker go on.
		resumed := f.resumedChan()
		call := f.gen.Next()
		f.ledger.Sending(call)
		a, err := f.client.Analyze(ctx, call.Body)
		f.ledger.Answered(call, a, err)
		if err != nil {
			select {
			case <-resumed:
			case <-f.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}
}

func (f *Flow) resumedChan() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resumed
}

// Resume lets the workers that met an unanswered call send again.
func (f *Flow) Resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.resumed)
	f.resumed = make(chan struct{})
}

// Stop ends the flow: each worker finishes the call it is sending (its
// answer recorded), then returns. Stop returns once all have.
func (f *Flow) Stop() {
	f.mu.Lock()
	if !f.stopped {
		f.stopped = true
		close(f.stop)
	}
	f.mu.Unlock()
	f.wg.Wait()
}

package copilotstudioreceiver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

var errQueueFull = errors.New("downstream queue is full")

// gate is a logs consumer whose calls block until the test answers them:
// each value sent on answers is what one waiting call returns.
type gate struct {
	mu      sync.Mutex
	started []plog.Logs
	answers chan error
}

// newGate must be called inside the synctest bubble, so that a call
// waiting for its answer counts as durably blocked.
func newGate() *gate { return &gate{answers: make(chan error)} }

func (g *gate) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (g *gate) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	g.mu.Lock()
	g.started = append(g.started, ld)
	g.mu.Unlock()
	return <-g.answers
}

func (g *gate) calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.started)
}

func (g *gate) itemIDs() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := map[string]int{}
	for _, ld := range g.started {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					v, _ := lr.Attributes().Get(schema.ItemID)
					ids[v.Str()]++
				}
			}
		}
	}
	return ids
}

// deliverThroughGate starts delivering the window into a gate; the outcome
// arrives when deliver returns. Call it inside the synctest bubble.
func deliverThroughGate(r *logsReceiver, w window, b *windowBuilder) (*gate, <-chan string) {
	g := newGate()
	r.next = g
	outcome := make(chan string, 1)
	go func() { outcome <- r.deliver(ctx, w, b) }()
	return g, outcome
}

// fetchFirstWindow reads the first poll's window as pollWindows would,
// outside the synctest bubble (the query goes over loopback HTTPS).
func (h *harness) fetchFirstWindow(r *logsReceiver) (window, *windowBuilder) {
	h.t.Helper()
	now := r.clock.Now()
	w := window{lower: now.Add(-h.cfg.InitialLookback).Truncate(appinsights.Tick), upper: now.Add(-h.cfg.IngestionDelay).Truncate(appinsights.Tick)}
	b, res, err := r.fetchWindow(ctx, w, h.cfg.MaxRowsPerQuery)
	if err != nil || res.Rows > h.cfg.MaxRowsPerQuery {
		h.t.Fatalf("fetching the window: %d rows, %v", res.Rows, err)
	}
	b.finish(false)
	return w, b
}

func returned(outcome <-chan string) bool {
	select {
	case <-outcome:
		return true
	default:
		return false
	}
}

// synctest.Wait returns once every goroutine of the bubble (deliver, its
// builder, the calls in the gate) is blocked with no way forward but the
// test: a count read then is final, not a count read too early.
func TestConcurrentBatchesBoundedBySlots(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxBatchSize = 3
	h.cfg.MaxConcurrentBatches = 2
	rows := spread("a", 10, t0.Add(-time.Hour)) // 4 batches: 3 3 3 1
	h.ai.AddRows(rows...)
	r := h.start()
	w, b := h.fetchFirstWindow(r)

	synctest.Test(t, func(t *testing.T) {
		g, outcome := deliverThroughGate(r, w, b)

		synctest.Wait()
		if n := g.calls(); n != 2 {
			t.Fatalf("%d batches in ConsumeLogs at once, want 2 (max_concurrent_batches)", n)
		}
		g.answers <- nil // one returns: the third may start
		synctest.Wait()
		if n := g.calls(); n != 3 {
			t.Fatalf("after one call returned, %d calls started, want 3", n)
		}
		g.answers <- nil
		synctest.Wait()
		if n := g.calls(); n != 4 {
			t.Fatalf("after two calls returned, %d calls started, want 4", n)
		}
		g.answers <- nil
		synctest.Wait()
		if returned(outcome) || !r.state.Cursor.IsZero() {
			t.Fatal("deliver returned or moved the cursor while a batch was still in ConsumeLogs")
		}
		g.answers <- nil
		if got := <-outcome; got != outcomeSuccess {
			t.Fatalf("outcome %q, want success", got)
		}
		wantEachOnce(t, g.itemIDs(), rows)
	})
	if cp := h.storedCheckpoint(r); cp == nil || !cp.Cursor.Equal(w.upper) {
		t.Fatalf("stored cursor after every batch was accepted = %+v, want %v", cp, w.upper)
	}
}

func TestFailureOfOneConcurrentBatchKeepsCursor(t *testing.T) {
	for _, tc := range []struct {
		name          string
		first, second error // answers to the two calls in flight, in order
	}{
		{"the first answered fails", errQueueFull, nil},
		{"the second answered fails", nil, errQueueFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.cfg.MaxBatchSize = 3
			h.cfg.MaxConcurrentBatches = 2
			rows := spread("a", 10, t0.Add(-time.Hour))
			h.ai.AddRows(rows...)
			r := h.start()
			w, b := h.fetchFirstWindow(r)

			synctest.Test(t, func(t *testing.T) {
				g, outcome := deliverThroughGate(r, w, b)

				synctest.Wait()
				if n := g.calls(); n != 2 {
					t.Fatalf("%d batches in ConsumeLogs at once, want 2", n)
				}
				g.answers <- tc.first
				synctest.Wait()
				wantCalls := 2 // a failure starts nothing new
				if tc.first == nil {
					wantCalls = 3 // the third started before the failure was known
				}
				if n := g.calls(); n != wantCalls {
					t.Fatalf("after the first answer, %d calls started, want %d", n, wantCalls)
				}
				if returned(outcome) {
					t.Fatal("deliver returned while a batch was still in ConsumeLogs")
				}
				g.answers <- tc.second
				if tc.first == nil {
					synctest.Wait()
					if n := g.calls(); n != 3 {
						t.Fatalf("a batch started after a refusal: %d calls, want 3", n)
					}
					g.answers <- nil // the third, in flight when the second failed
				}
				if got := <-outcome; got != outcomeConsumer {
					t.Fatalf("outcome %q, want %q", got, outcomeConsumer)
				}
			})
			if !r.state.Cursor.IsZero() || h.storedCheckpoint(r) != nil {
				t.Fatalf("cursor moved (%v) or was stored although a batch of the window was refused", r.state.Cursor)
			}

			// The next poll reads the whole window again and delivers every row.
			r.next = h.sink
			h.ai.Advance(10 * time.Minute)
			r.poll(ctx)
			wantEachOnce(t, h.sink.itemIDs(), rows)
			if cp := h.storedCheckpoint(r); cp == nil || !cp.Cursor.Equal(h.ai.Now().Add(-h.cfg.IngestionDelay)) {
				t.Fatalf("stored cursor after the window was read again = %+v", cp)
			}
		})
	}
}

// With the default of one batch at a time, a call starts only after the
// previous one returned, so the consumer sees the rows' order.
func TestOneBatchAtATimeByDefault(t *testing.T) {
	h := newHarness(t)
	if h.cfg.MaxConcurrentBatches != 1 {
		t.Fatalf("default max_concurrent_batches = %d, want 1", h.cfg.MaxConcurrentBatches)
	}
	h.cfg.MaxBatchSize = 3
	rows := spread("a", 7, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	r := h.start()
	w, b := h.fetchFirstWindow(r)

	synctest.Test(t, func(t *testing.T) {
		g, outcome := deliverThroughGate(r, w, b)
		for want := 1; want <= 3; want++ {
			synctest.Wait()
			if n := g.calls(); n != want {
				t.Fatalf("%d calls started, want %d: one at a time", n, want)
			}
			g.answers <- nil
		}
		if got := <-outcome; got != outcomeSuccess {
			t.Fatalf("outcome %q, want success", got)
		}
		var order []string
		for _, ld := range g.started {
			for _, rl := range ld.ResourceLogs().All() {
				for _, lr := range rl.ScopeLogs().At(0).LogRecords().All() {
					v, _ := lr.Attributes().Get(schema.ItemID)
					order = append(order, v.Str())
				}
			}
		}
		if got, want := strings.Join(order, ","), strings.Join(idsOf(rows), ","); got != want {
			t.Fatalf("records reached the consumer as\n%s\nwant the rows' order\n%s", got, want)
		}
	})
}

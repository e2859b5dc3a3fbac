package copilotstudioreceiver

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/cursor"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudioreceiver/internal/metadata"
)

// deliver hands the window's records to the next consumer in batches of
// max_batch_size and, once every batch was accepted, commits the window.
// Another goroutine builds the next batch while the consumer works on the
// current ones, so building records and the rest of the pipeline use two
// cores. Up to max_concurrent_batches batches are in ConsumeLogs at once:
// the pipeline after the receiver runs inside that call, so with more than
// one, its stateless stages can work on one batch while a stage that
// serialises works on another. With one, batches go out one at a time in row
// order; with more, they may reach the consumer out of order. If a batch is
// refused, no further batch starts, those in flight are awaited, and the
// whole window is read again at the next poll.
func (r *logsReceiver) deliver(ctx context.Context, w window, b *windowBuilder) string {
	built := make(chan plog.Logs)
	stop := make(chan struct{})
	go func() {
		defer close(built)
		for {
			logs, n := b.nextBatch(r.cfg.MaxBatchSize)
			if n == 0 {
				return
			}
			// A refusal or a crash reads the window again from its lower
			// bound: rows before it are never delivered again.
			stampScopes(logs, w.lower, r.cfg.PollInterval)
			select {
			case built <- logs:
			case <-stop:
				return
			}
		}
	}()

	// slots holds a token for each batch in ConsumeLogs. The token is taken
	// before the next batch is taken from the builder, so at most
	// max_concurrent_batches batches are in the consumer and one more is
	// built and waiting (the memory bound). With one slot, a batch starts
	// only after the previous call returned: strictly one at a time, in order.
	slots := make(chan struct{}, r.cfg.MaxConcurrentBatches)
	var inFlight sync.WaitGroup
	var refused refusal
	for {
		slots <- struct{}{}
		logs, more := <-built
		// A refusal stops new batches; one already started finishes.
		if !more || refused.happened() {
			break
		}
		inFlight.Go(func() {
			// The refusal is noted before the slot is given back, so the
			// loop sees it when it next takes the slot.
			defer func() { <-slots }()
			if err := r.consume(ctx, logs); err != nil {
				refused.note(err, logs.LogRecordCount())
			}
		})
	}
	// The cursor must not move while a batch of the window is still in the
	// consumer (it may yet fail), and shutdown waits for this function.
	inFlight.Wait()

	if records, err := refused.first(); err != nil {
		close(stop)
		for range built { // wait for the builder to stop
		}
		if ctx.Err() != nil {
			return outcomeCancelled
		}
		r.logger.Error("the next consumer refused a batch of the window; the cursor stays and the window is read again at the next poll",
			zap.Error(err), zap.Int("batch_records", records), zap.Time("lower", w.lower), zap.Time("upper", w.upper))
		return outcomeConsumer
	}
	// The builder is done (built is closed) and every batch was accepted.
	r.commit(ctx, w, b.result())
	return outcomeSuccess
}

// commit moves the cursor to the window's end and stores it with the item
// ids the next overlap will see again, then logs and counts the rows the
// window dropped: only now, so a window read again does not count them twice.
func (r *logsReceiver) commit(ctx context.Context, w window, res windowResult) {
	r.state.Advance(w.upper, res.seen, r.cfg.Overlap)
	if err := cursor.Save(ctx, r.storage, storageKey(r.cfg.ApplicationID), r.state); err != nil && ctx.Err() == nil {
		r.logger.Error("storing the cursor failed; after a restart this window may be delivered again", zap.Error(err))
	}
	for _, m := range res.malformed {
		r.malformed.Warn("skipping malformed Copilot Studio row",
			zap.String("item_id", m.itemID), zap.String("event_name", m.eventName),
			zap.String("reason", m.reason), zap.String("detail", m.detail))
	}
	r.malformed.EndRound("more malformed Copilot Studio rows skipped in this window; see the rows_dropped metric")
	for reason, n := range res.drops {
		r.telemetry.CopilotstudioRowsDropped.Add(ctx, int64(n), metric.WithAttributes(attribute.String("reason", reason)))
	}
}

// refusal is the first error a ConsumeLogs call of a window returned; batches
// in flight at once may fail at once.
type refusal struct {
	mu      sync.Mutex
	err     error
	records int
}

func (f *refusal) note(err error, records int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err, f.records = err, records
	}
}

func (f *refusal) happened() bool {
	_, err := f.first()
	return err != nil
}

// first is the first error and the record count of the batch it refused.
func (f *refusal) first() (records int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.records, f.err
}

// consume passes one batch on, with the receiver's self-observability.
func (r *logsReceiver) consume(ctx context.Context, logs plog.Logs) error {
	if r.agents != nil {
		r.enrich(ctx, logs)
	}
	opCtx := r.obsrecv.StartLogsOp(ctx)
	err := r.next.ConsumeLogs(opCtx, logs)
	r.obsrecv.EndLogsOp(opCtx, metadata.Type.String(), logs.LogRecordCount(), err)
	return err
}

// stampScopes puts on every scope of a batch how far back a re-read can
// reach and how far apart polls are, for stateful stages downstream (see
// schema.ReplayFrom).
func stampScopes(logs plog.Logs, replayFrom time.Time, pollInterval time.Duration) {
	for _, rl := range logs.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			attrs := sl.Scope().Attributes()
			attrs.PutInt(schema.ReplayFrom, replayFrom.UnixNano())
			attrs.PutInt(schema.PollInterval, int64(pollInterval))
		}
	}
}

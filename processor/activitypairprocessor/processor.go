package activitypairprocessor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadata"
)

// maxMalformedLogged bounds the log lines one call writes about malformed rows.
const maxMalformedLogged = 10

// maxConversationsPerCall bounds the conversations whose turns go into one
// ConsumeLogs call to the next consumer. A backlog that completes at once
// (the first row after a quiet hour completes every open turn) would
// otherwise become one request of tens of thousands of turns: about 100 MB
// of records and their marshalled copy in the exporter's queue at the same
// time. A few thousand turns per call keep that to a few MB.
const maxConversationsPerCall = 1000

type pairProcessor struct {
	cfg       *Config
	id        component.ID
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	next      consumer.Logs
	clock     clock
	enc       encoder

	mu      sync.Mutex
	state   *state
	store   *store // nil without storage
	batch   batch
	pending []*conversation // emit's copy of batch.convs, reused

	stopTicker func()
	done       chan struct{}
	shutDown   bool

	// metric attribute sets, built once
	turnAttrs   [outcomeCount][triggerCount]metric.AddOption
	dupAttrs    metric.AddOption
	badRowAttrs metric.AddOption
}

func newProcessor(set processor.Settings, cfg *Config, next consumer.Logs, c clock) (*pairProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	p := &pairProcessor{
		cfg:       cfg,
		id:        set.ID,
		logger:    set.Logger,
		telemetry: tb,
		next:      next,
		clock:     c,
		enc:       newEncoder(cfg),
		state:     newState(cfg),
		done:      make(chan struct{}),
	}
	for o := range outcomeCount {
		for t := range triggerCount {
			p.turnAttrs[o][t] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("outcome", outcomeNames[o]), attribute.String("trigger", triggerNames[t])))
		}
	}
	p.dupAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "duplicate")))
	p.badRowAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "malformed")))
	return p, nil
}

func (p *pairProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// Start restores the stored state, if storage is configured, and starts
// the timeout sweep.
func (p *pairProcessor) Start(ctx context.Context, host component.Host) error {
	if p.cfg.StorageID != nil {
		client, err := storageClient(ctx, host, *p.cfg.StorageID, p.id)
		if err != nil {
			return err
		}
		p.store = &store{client: client, minSnapshot: minSnapshotBytes}
		p.state.journal = &journal{}
		if err := p.restore(ctx); err != nil {
			return err
		}
	}
	ticks, stop := p.clock.NewTicker(sweepInterval(p.cfg.ReplyTimeout))
	p.stopTicker = stop
	go func() {
		for {
			select {
			case <-ticks:
				if err := p.sweep(context.Background()); err != nil {
					p.logger.Warn("Emitting timed-out turns failed; they stay open and are retried", zap.Error(err))
				}
			case <-p.done:
				return
			}
		}
	}()
	return nil
}

// sweepInterval checks for timeouts often enough that a turn is emitted
// within a tenth of reply_timeout of its due time.
func sweepInterval(replyTimeout time.Duration) time.Duration {
	return min(max(replyTimeout/10, time.Second), time.Minute)
}

func storageClient(ctx context.Context, host component.Host, storageID, self component.ID) (storage.Client, error) {
	ext, ok := host.GetExtensions()[storageID]
	if !ok {
		return nil, fmt.Errorf("storage extension %q is not configured: add it under extensions and service::extensions", storageID)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("extension %q is not a storage extension", storageID)
	}
	client, err := se.GetClient(ctx, component.KindProcessor, self, "")
	if err != nil {
		return nil, fmt.Errorf("getting a client from storage extension %q: %w", storageID, err)
	}
	return client, nil
}

// restore reads the stored state. Unreadable state (a format change,
// corruption) is logged and counted, and the processor starts clean: the
// receiver's cursor still holds what was not acknowledged.
func (p *pairProcessor) restore(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now().UnixNano()
	err := p.store.restore(ctx, p.state, now)
	if err == nil {
		p.logger.Info("Restored pairing state",
			zap.Int("open_turns", p.state.openTurns), zap.Int("rows_buffered", p.state.bufferedRows),
			zap.Int("emitted_ids", p.state.seen.emittedLen()))
		p.recordGauges(ctx)
		return nil
	}
	p.logger.Error("Stored pairing state is unreadable; starting clean", zap.Error(err))
	p.telemetry.ActivitypairStateRestoreFailures.Add(ctx, 1)
	journal := &journal{}
	p.state = newState(p.cfg)
	p.state.journal = journal
	p.store.needSnap = true
	// Replace the unreadable state now, so that the next start does not
	// meet it again.
	if err := p.store.save(ctx, p.state); err != nil {
		p.logger.Warn("Could not replace the unreadable pairing state yet", zap.Error(err))
	}
	return nil
}

// Shutdown saves the state (with storage) or emits every open turn
// (without): either way nothing buffered is lost.
func (p *pairProcessor) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shutDown {
		return nil
	}
	p.shutDown = true
	if p.stopTicker != nil {
		p.stopTicker()
		close(p.done) // the sweep goroutine may wait for the lock: it exits without it
	}
	defer p.telemetry.Shutdown()
	var errs []error
	if p.store != nil {
		errs = append(errs, p.store.save(ctx, p.state), p.store.client.Close(ctx))
	} else {
		p.batch.reset(triggerShutdown)
		p.state.selectAll(&p.batch)
		errs = append(errs, p.emit(ctx))
	}
	return errors.Join(errs...)
}

// ConsumeLogs buffers the rows, emits the turns they complete, and, with
// storage, saves the state, all before it returns: once it returns nil,
// every row is either passed on or stored.
func (p *pairProcessor) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.state
	stats := s.addLogs(ld, p.clock.Now().UnixNano())
	p.reportDropped(ctx, stats)

	p.batch.reset(triggerEvicted)
	s.selectComplete(&p.batch)
	s.selectEvictions(&p.batch)
	emitErr := p.emit(ctx)
	s.prune()
	saveErr := p.save(ctx)
	p.recordGauges(ctx)
	return errors.Join(emitErr, saveErr)
}

// sweep emits the turns of conversations idle for reply_timeout, and
// forgets emitted ids past their ttl. Production calls it on a ticker;
// tests call it directly.
func (p *pairProcessor) sweep(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shutDown {
		return nil
	}
	s := p.state
	p.batch.reset(triggerTimeout)
	s.selectComplete(&p.batch)
	s.selectIdle(&p.batch, p.clock.Now().UnixNano()-int64(p.cfg.ReplyTimeout))
	emitErr := p.emit(ctx)
	s.prune()
	saveErr := p.save(ctx)
	p.recordGauges(ctx)
	return errors.Join(emitErr, saveErr)
}

// emit passes the selected turns on, at most maxConversationsPerCall
// conversations' turns per call. Only when the next consumer accepts them
// do their rows leave the buffer; refused turns (those of the failed call and
// of every call after it) stay open and are selected again on the next
// call, so the caller sees the error (and the receiver keeps its cursor)
// while nothing is lost.
func (p *pairProcessor) emit(ctx context.Context) error {
	b := &p.batch
	p.pending = append(p.pending[:0], b.convs...)
	defer clear(p.pending) // hold no conversation
	for start := 0; start < len(p.pending); start += maxConversationsPerCall {
		part := p.pending[start:min(start+maxConversationsPerCall, len(p.pending))]
		b.convs = append(b.convs[:0], part...)
		b.clearOutput()
		ld := p.state.build(b, p.enc, p.clock.Now().UnixNano())
		if ld.LogRecordCount() > 0 {
			if err := p.next.ConsumeLogs(ctx, ld); err != nil {
				b.convs = append(b.convs[:0], p.pending[start:]...)
				b.reset(b.trigger)
				return fmt.Errorf("passing on paired turns: %w", err)
			}
		}
		for o := range outcomeCount {
			for t := range triggerCount {
				if n := b.counts[o][t]; n > 0 {
					p.telemetry.ActivitypairTurnsEmitted.Add(ctx, int64(n), p.turnAttrs[o][t])
				}
			}
		}
		p.state.commit(b)
	}
	return nil
}

func (p *pairProcessor) save(ctx context.Context) error {
	if p.store == nil {
		return nil
	}
	return p.store.save(ctx, p.state)
}

func (p *pairProcessor) reportDropped(ctx context.Context, st addStats) {
	if st.duplicates > 0 {
		p.telemetry.ActivitypairRowsDropped.Add(ctx, int64(st.duplicates), p.dupAttrs)
	}
	if len(st.malformed) == 0 {
		return
	}
	p.telemetry.ActivitypairRowsDropped.Add(ctx, int64(len(st.malformed)), p.badRowAttrs)
	for i, item := range st.malformed {
		if i == maxMalformedLogged {
			p.logger.Warn("More rows without conversation id or item id skipped", zap.Int("count", len(st.malformed)-i))
			break
		}
		p.logger.Warn("Row without conversation id or item id skipped: it cannot be paired", zap.String("item_id", item))
	}
}

func (p *pairProcessor) recordGauges(ctx context.Context) {
	p.telemetry.ActivitypairOpenTurns.Record(ctx, int64(p.state.openTurns))
	p.telemetry.ActivitypairRowsBuffered.Record(ctx, int64(p.state.bufferedRows))
}

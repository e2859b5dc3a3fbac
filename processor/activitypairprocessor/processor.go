package activitypairprocessor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/logcap"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/storageclient"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadata"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
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
	clock     clock.Clock

	mu        sync.Mutex
	core      *pairing.Core
	selection pairing.Selection
	resources *resources
	origins   *origins
	enc       encoder
	store     *store // nil without storage
	inputs    []pairing.Input
	calls     []toolCall // toolcall.go: the current batch's tool calls
	badRows   *logcap.Logger

	stopTicker func()
	done       chan struct{}
	shutDown   bool

	// forgotten is what the memory budget made the core forget, as last
	// recorded.
	forgotten pairing.Forgotten

	// metric attribute sets, built once
	turnAttrs       [pairing.OutcomeCount][pairing.TriggerCount]metric.AddOption
	dupAttrs        metric.AddOption
	badRowAttrs     metric.AddOption
	noConvAttrs     metric.AddOption
	forgotConvAttrs metric.AddOption
	forgotIDAttrs   metric.AddOption
}

func newProcessor(set processor.Settings, cfg *Config, next consumer.Logs, clk clock.Clock) (*pairProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	res := newResources()
	p := &pairProcessor{
		cfg:       cfg,
		id:        set.ID,
		logger:    set.Logger,
		telemetry: tb,
		next:      next,
		clock:     clk,
		resources: res,
		origins:   newOrigins(),
		enc:       newEncoder(cfg, res),
		inputs:    make([]pairing.Input, 0, inputWindow),
		badRows:   logcap.New(set.Logger, maxMalformedLogged),
		done:      make(chan struct{}),
	}
	p.core = p.newCore()
	p.selection.WarmStrings(p.enc.readsText())
	for o := range pairing.OutcomeCount {
		for t := range pairing.TriggerCount {
			p.turnAttrs[o][t] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("outcome", outcomeNames[o]), attribute.String("trigger", t.String())))
		}
	}
	p.dupAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "duplicate")))
	p.badRowAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "malformed")))
	p.noConvAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "no_conversation_id")))
	p.forgotConvAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("item", "conversation")))
	p.forgotIDAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("item", "emitted_id")))
	return p, nil
}

func (p *pairProcessor) newCore() *pairing.Core {
	cfg := p.cfg
	return pairing.New(pairing.Config{
		ReplyTimeout:     cfg.ReplyTimeout,
		ReorderWindow:    cfg.ReorderWindow,
		EmittedIDsTTL:    cfg.EmittedIDsTTL,
		MaxOpenTurns:     cfg.MaxOpenTurns,
		MaxBufferedBytes: cfg.MaxBufferedBytes,
		KeepChanges:      cfg.StorageID != nil,
		OriginOf: func(src pairing.Source) pairing.Origin {
			return p.origins.get(originKey(p.resources.get(src)))
		},
	})
}

func (p *pairProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// Start restores the stored state, if storage is configured, and starts
// the timeout sweep.
func (p *pairProcessor) Start(ctx context.Context, host component.Host) error {
	if p.cfg.StorageID != nil {
		client, err := storageclient.Get(ctx, host, *p.cfg.StorageID, component.KindProcessor, p.id)
		if err != nil {
			return err
		}
		p.store = newStore(client, p.resources, p.origins)
		if err := p.restore(ctx); err != nil {
			// Hold nothing: a Shutdown after a failed Start has nothing to
			// save or flush, and the storage stays as it is.
			p.store, p.core = nil, p.newCore()
			return errors.Join(err, client.Close(ctx))
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

// restore reads the stored state. State that cannot be read (corruption, a
// format this build does not read) fails Start, saying what it holds and
// what to do, and is left as it is; with on_unreadable_state: discard it
// is logged and counted, and the processor starts without it: the first
// save of new state replaces it.
func (p *pairProcessor) restore(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.store.restore(ctx, p.core, p.clock.Now().UnixNano())
	if err == nil {
		p.logger.Info("Restored pairing state",
			zap.Int("open_turns", p.core.OpenTurns()), zap.Int("rows_buffered", p.core.BufferedRows()),
			zap.Int("emitted_ids", p.core.EmittedIDs()))
		p.recordGauges(ctx)
		return nil
	}
	p.telemetry.ActivitypairStateRestoreFailures.Add(ctx, 1)
	if p.cfg.OnUnreadableState != unreadableDiscard {
		return unreadableStateError(err, p.id, *p.cfg.StorageID)
	}
	p.logger.Error("The stored pairing state cannot be read; on_unreadable_state is discard, so the processor starts without it: "+
		"the open turns it held are lost (the receiver has acknowledged their rows and does not deliver them again), and rows "+
		"the receiver delivers again may be emitted again (with the same turn ids). It stays in storage until the first save of new state replaces it.",
		zap.Error(err))
	p.core = p.newCore()
	p.store.needSnap = true
	return nil
}

// unreadableStateError says what happened to the stored state, what it
// holds, and the ways on with what each loses or repeats.
func unreadableStateError(err error, id, storage component.ID) error {
	return fmt.Errorf("the stored pairing state of processor %q (storage %q) cannot be read (%w); the processor does not start, so nothing is lost while you decide. "+
		"The state holds the turns still open when it was saved, whose rows the receiver has already acknowledged and will not deliver again, "+
		"and the ids of recently emitted rows, which keep rows the receiver delivers again from being emitted twice. "+
		"Keep the storage directory as it is. Three ways on: "+
		"(1) if a change of collector version caused this, run the version that wrote the state: it resumes where it stopped; to move to this version without loss, "+
		"let that one run until its open turns have gone out (reply_timeout after the last rows), stop it, and start this one with on_unreadable_state: discard; "+
		"(2) set on_unreadable_state: discard and restart: the open turns the state holds are lost, and rows the receiver delivers again "+
		"(a window it had not committed) may be emitted again, with the same turn ids; "+
		"(3) to lose no turn at the cost of repeats: stop the collector, move aside this processor's file and the receivers' cursor files in the storage directory "+
		"(keep the exporter's queue), and start: the receivers read initial_lookback again, so the open turns' rows come again, and turns already delivered in that span "+
		"are delivered again with the same turn ids", id, storage, err)
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
		errs = append(errs, p.store.save(ctx, p.core), p.store.client.Close(ctx))
	} else {
		p.selection.Reset()
		p.core.SelectAll(&p.selection)
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
	duplicates, malformed, noConversation := p.add(ld, p.clock.Now().UnixNano())
	if duplicates > 0 {
		p.telemetry.ActivitypairRowsDropped.Add(ctx, int64(duplicates), p.dupAttrs)
	}
	if malformed > 0 {
		p.telemetry.ActivitypairRowsDropped.Add(ctx, int64(malformed), p.badRowAttrs)
	}
	if noConversation > 0 {
		p.telemetry.ActivitypairRowsDropped.Add(ctx, int64(noConversation), p.noConvAttrs)
	}

	p.selection.Reset()
	callsErr := p.passToolCalls(ctx) // toolcall.go
	if callsErr == nil {
		p.core.SelectComplete(&p.selection)
		p.core.SelectEvictions(&p.selection)
	}
	return errors.Join(callsErr, p.emitAndSave(ctx))
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
	p.selection.Reset()
	p.core.SelectComplete(&p.selection)
	p.core.SelectIdle(&p.selection, p.clock.Now().UnixNano()-int64(p.cfg.ReplyTimeout))
	return p.emitAndSave(ctx)
}

func (p *pairProcessor) emitAndSave(ctx context.Context) error {
	emitErr := p.emit(ctx)
	p.core.Prune()
	var saveErr error
	if p.store != nil {
		saveErr = p.store.save(ctx, p.core)
	}
	p.core.Settle(emitErr == nil, saveErr == nil) // done with the batch's records
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
	sel := &p.selection
	defer sel.Reset() // hold no conversation
	for sel.NextPart(maxConversationsPerCall) {
		ld := p.records(p.clock.Now().UnixNano())
		if ld.LogRecordCount() > 0 {
			if err := p.next.ConsumeLogs(ctx, ld); err != nil {
				return fmt.Errorf("passing on paired turns: %w", err)
			}
		}
		for o := range pairing.OutcomeCount {
			for t := range pairing.TriggerCount {
				if n := sel.Count(o, t); n > 0 {
					p.telemetry.ActivitypairTurnsEmitted.Add(ctx, int64(n), p.turnAttrs[o][t])
				}
			}
		}
		if n := sel.Absorbed(); n > 0 {
			p.telemetry.ActivitypairRowsAbsorbed.Add(ctx, int64(n))
		}
		p.core.Commit(sel)
	}
	return nil
}

func (p *pairProcessor) recordGauges(ctx context.Context) {
	p.telemetry.ActivitypairOpenTurns.Record(ctx, int64(p.core.OpenTurns()))
	p.telemetry.ActivitypairRowsBuffered.Record(ctx, int64(p.core.BufferedRows()))
	p.telemetry.ActivitypairMemoryHeld.Record(ctx, p.core.Held())
	f := p.core.Forgotten()
	if n := f.Conversations - p.forgotten.Conversations; n > 0 {
		p.telemetry.ActivitypairForgotten.Add(ctx, int64(n), p.forgotConvAttrs)
	}
	if n := f.EmittedIDs - p.forgotten.EmittedIDs; n > 0 {
		p.telemetry.ActivitypairForgotten.Add(ctx, int64(n), p.forgotIDAttrs)
		p.logger.Warn("The ids of emitted rows took more than half of max_buffered_bytes: the oldest were forgotten before emitted_ids_ttl. "+
			"If the receiver delivers their rows again, their turns are emitted again (with the same turn ids); raise max_buffered_bytes",
			zap.Int("forgotten_ids", n), zap.Int64("max_buffered_bytes", p.cfg.MaxBufferedBytes))
	}
	p.forgotten = f
}

package copilotstudioreceiver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudioreceiver/internal/metadata"
)

// Retries of one query within a poll. Past them the window is left for the
// next poll: the cursor does not move, so nothing is lost.
const (
	maxQueryAttempts = 5
	firstBackoff     = 2 * time.Second
	maxBackoff       = time.Minute
	// maxRetryWait caps a Retry-After; a longer throttle ends the poll.
	maxRetryWait = 5 * time.Minute
)

// Poll outcomes (attribute "outcome" of the polls metric).
const (
	outcomeSuccess   = "success"
	outcomeQuery     = "query_error"
	outcomeAuth      = "auth_error"
	outcomePartial   = "partial_result"
	outcomeConsumer  = "consumer_error"
	outcomeRowLimit  = "row_limit"
	outcomeCancelled = "" // shutting down: not recorded
)

type logsReceiver struct {
	cfg       *Config
	set       receiver.Settings
	next      consumer.Logs
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	obsrecv   *receiverhelper.ObsReport

	// now and sleep are the receiver's clock; tests replace them.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	// manualPolling (tests) keeps Start from running the poll loop.
	manualPolling bool
	// tokenRetry is azidentity's own retry of token requests (default when
	// zero); tests turn it off because it sleeps for real.
	tokenRetry policy.RetryOptions

	wantedEvents map[string]bool

	client  *queryClient
	storage storage.Client
	state   *checkpoint
	// agents is the Dataverse enrichment; nil when dataverse is not configured.
	agents *agentDirectory

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLogsReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*logsReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &logsReceiver{
		cfg: cfg, set: set, next: next, logger: set.Logger, telemetry: tb, obsrecv: obsrecv,
		now: time.Now, sleep: clock.Sleep, wantedEvents: toSet(cfg.EventNames),
	}, nil
}

func (r *logsReceiver) Start(ctx context.Context, host component.Host) error {
	if r.cfg.Auth.Type == azureauth.APIKey {
		r.logger.Warn("auth.type api_key is deprecated: Application Insights API keys were retired on 2026-03-31; use Microsoft Entra ID (auth.type client_secret, client_certificate, workload_identity or managed_identity)")
	}
	hc := r.cfg.httpClientConfig()
	httpClient, err := hc.ToClient(ctx, host.GetExtensions(), r.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("building the HTTP client: %w", err)
	}
	auth, err := newAuthorizer(r.cfg, httpClient, r.tokenRetry)
	if err != nil {
		return err
	}
	r.client = newQueryClient(r.cfg, httpClient, auth)
	if dv := r.cfg.Dataverse.Get(); dv != nil {
		if r.agents, err = newAgentDirectory(dv, &r.cfg.Auth, httpClient, r.tokenRetry, r.logger, r.telemetry); err != nil {
			return fmt.Errorf("dataverse: %w", err)
		}
	}

	if r.storage, err = r.storageClient(ctx, host); err != nil {
		return err
	}
	r.state = r.loadState(ctx)

	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if !r.manualPolling {
		if r.agents != nil {
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.agents.run(runCtx, r.sleep)
			}()
		}
		r.wg.Add(1)
		go r.run(runCtx)
	}
	return nil
}

func (r *logsReceiver) storageClient(ctx context.Context, host component.Host) (storage.Client, error) {
	if r.cfg.StorageID == nil {
		r.logger.Warn("no storage extension configured: the cursor lives in memory, so a restart re-reads initial_lookback and may deliver rows again; set storage to a file_storage extension")
		return storage.NewNopClient(), nil
	}
	ext, ok := host.GetExtensions()[*r.cfg.StorageID]
	if !ok {
		return nil, fmt.Errorf("storage: extension %q is not configured; add it under extensions and service.extensions", r.cfg.StorageID)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("storage: extension %q is not a storage extension", r.cfg.StorageID)
	}
	client, err := se.GetClient(ctx, component.KindReceiver, r.set.ID, "")
	if err != nil {
		return nil, fmt.Errorf("storage: opening a client of %q: %w", r.cfg.StorageID, err)
	}
	return client, nil
}

// loadState resumes from the stored cursor; an unreadable one is logged,
// counted and replaced by a fresh start, never fatal.
func (r *logsReceiver) loadState(ctx context.Context) *checkpoint {
	cp, err := loadCheckpoint(ctx, r.storage, r.cfg.ApplicationID)
	if err != nil {
		r.logger.Error("cannot resume from the stored cursor; starting again from initial_lookback (rows in that span may be delivered again)",
			zap.Error(err), zap.Duration("initial_lookback", r.cfg.InitialLookback))
		r.telemetry.CopilotstudioStateResets.Add(ctx, 1)
	}
	if cp == nil {
		return &checkpoint{Version: checkpointVersion, Seen: map[string]time.Time{}}
	}
	r.logger.Info("resuming from the stored cursor", zap.Time("cursor", cp.Cursor), zap.Int("overlap_item_ids", len(cp.Seen)))
	return cp
}

func (r *logsReceiver) Shutdown(ctx context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	var err error
	if r.storage != nil {
		err = r.storage.Close(ctx)
	}
	r.telemetry.Shutdown()
	return err
}

func (r *logsReceiver) run(ctx context.Context) {
	defer r.wg.Done()
	for {
		r.poll(ctx)
		if r.sleep(ctx, r.cfg.PollInterval) != nil {
			return
		}
	}
}

// poll fetches everything ingested since the cursor, window by window, and
// records how it went.
func (r *logsReceiver) poll(ctx context.Context) {
	started := r.now()
	outcome := r.pollWindows(ctx)
	if outcome == outcomeCancelled {
		return
	}
	r.telemetry.CopilotstudioPolls.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	r.telemetry.CopilotstudioPollDuration.Record(ctx, r.now().Sub(started).Seconds())
	if !r.state.Cursor.IsZero() {
		r.telemetry.CopilotstudioCursorLag.Record(ctx, r.now().Sub(r.state.Cursor).Seconds())
	}
}

func (r *logsReceiver) pollWindows(ctx context.Context) string {
	now := r.now()
	target := now.Add(-r.cfg.IngestionDelay).Truncate(tick)
	lower := now.Add(-r.cfg.InitialLookback).Truncate(tick)
	if !r.state.Cursor.IsZero() {
		if !target.After(r.state.Cursor) {
			return outcomeSuccess
		}
		lower = r.state.Cursor.Add(-r.cfg.Overlap)
	}
	if !target.After(lower) {
		return outcomeSuccess
	}

	w := window{lower: lower, upper: target}
	limit := r.cfg.MaxRowsPerQuery
	for {
		b, cut, err := r.fetchWindow(ctx, w, limit)
		if err != nil {
			return r.failed(ctx, w, err)
		}
		if !cut.IsZero() {
			if cut.After(w.lower) {
				// Rows come ordered by ingestion time, so every row ingested
				// before the first one that did not fit is in this result:
				// deliver [lower, cut) and carry on from cut.
				r.logger.Debug("window over max_rows_per_query, cut in time", zap.Time("lower", w.lower), zap.Time("cut", cut), zap.Time("upper", w.upper))
				w.upper = cut
			} else {
				// More than limit rows share one ingestion instant: no time
				// split can help. Read that instant alone at the API's limit.
				if limit < apiMaxRows {
					r.logger.Warn("more than max_rows_per_query rows share one ingestion time; reading that instant with the query API's limit",
						zap.Time("ingestion_time", w.lower), zap.Int("max_rows_per_query", r.cfg.MaxRowsPerQuery), zap.Int("api_limit", apiMaxRows))
					w.upper = w.lower.Add(tick)
					limit = apiMaxRows
					continue
				}
				r.logger.Error("more rows share one ingestion time than the query API can return in one result; the cursor stays before them so nothing is skipped, and this poll stops here",
					zap.Time("ingestion_time", w.lower), zap.Int("api_limit", apiMaxRows))
				return outcomeRowLimit
			}
		}
		if outcome := r.deliver(ctx, w, b); outcome != outcomeSuccess {
			return outcome
		}
		if !w.upper.Before(target) {
			return outcomeSuccess
		}
		w = window{lower: w.upper, upper: target}
		limit = r.cfg.MaxRowsPerQuery
	}
}

// fetchWindow queries w, retrying throttling, server errors, unreadable and
// partial results with backoff (Retry-After when given). When the result
// holds more than limit rows, cut is where it was cut (non-zero) and the
// batch holds the rows ingested before it.
func (r *logsReceiver) fetchWindow(ctx context.Context, w window, limit int) (b *batch, cut time.Time, err error) {
	kql := buildQuery(r.cfg.EventNames, r.cfg.Agents, w, limit)
	timespan := buildTimespan(w)
	for attempt := 1; ; attempt++ {
		b = newBatch(r.cfg.ApplicationID, r.state.Seen)
		b.wanted = r.wantedEvents
		res, err := r.client.query(ctx, kql, timespan, b.offer)
		r.telemetry.CopilotstudioRowsReceived.Add(ctx, int64(res.rows))
		if err == nil {
			overFull := res.rows > limit
			if cut = b.finish(overFull); !overFull {
				cut = time.Time{}
			}
			return b, cut, nil
		}
		if !isRetryable(err) || attempt == maxQueryAttempts || ctx.Err() != nil {
			return nil, time.Time{}, err
		}
		wait := retryAfterOf(err)
		if wait == 0 {
			wait = min(firstBackoff<<(attempt-1), maxBackoff)
		}
		wait = min(wait, maxRetryWait)
		r.logger.Warn("query failed, retrying", zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
		if err := r.sleep(ctx, wait); err != nil {
			return nil, time.Time{}, err
		}
	}
}

func (r *logsReceiver) failed(ctx context.Context, w window, err error) string {
	switch {
	case ctx.Err() != nil:
		return outcomeCancelled
	case isAuthError(err):
		r.logger.Error("authentication failed; retrying at the next poll", zap.Error(err), zap.Duration("poll_interval", r.cfg.PollInterval))
		return outcomeAuth
	case isPartial(err):
		r.logger.Error("query kept returning partial results; the window is read again at the next poll",
			zap.Error(err), zap.Time("lower", w.lower), zap.Time("upper", w.upper))
		return outcomePartial
	default:
		r.logger.Error("query failed; the window is read again at the next poll",
			zap.Error(err), zap.Time("lower", w.lower), zap.Time("upper", w.upper))
		return outcomeQuery
	}
}

// deliver hands the window's records to the next consumer in batches of
// max_batch_size and, once every batch was accepted, moves the cursor to the
// window's end and stores it. Another goroutine builds the next batch while
// the consumer works on the current ones, so building records and the rest
// of the pipeline use two cores. Up to max_concurrent_batches batches are in
// ConsumeLogs at once: the pipeline after the receiver runs inside that call,
// so with more than one, its stateless stages can work on one batch while a
// stage that serialises works on another. With one, batches go out one at a
// time in row order; with more, they may reach the consumer out of order.
// If a batch is refused, no further batch starts, those in flight are
// awaited, and the whole window is read again at the next poll.
func (r *logsReceiver) deliver(ctx context.Context, w window, b *batch) string {
	built := make(chan plog.Logs)
	stop := make(chan struct{})
	go func() {
		defer close(built)
		for {
			logs, n := b.nextBatch(r.cfg.MaxBatchSize)
			if n == 0 {
				return
			}
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
	// The builder is done (built is closed) and every batch was accepted:
	// b.seen and b.drops are complete.
	r.state.advance(w.upper, r.cfg.Overlap, b.seen)
	if err := saveCheckpoint(ctx, r.storage, r.cfg.ApplicationID, r.state); err != nil && ctx.Err() == nil {
		r.logger.Error("storing the cursor failed; after a restart this window may be delivered again", zap.Error(err))
	}
	b.logMalformed(r.logger)
	for reason, n := range b.drops {
		r.telemetry.CopilotstudioRowsDropped.Add(ctx, int64(n), metric.WithAttributes(attribute.String("reason", reason)))
	}
	return outcomeSuccess
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
		r.agents.enrich(ctx, logs)
	}
	opCtx := r.obsrecv.StartLogsOp(ctx)
	err := r.next.ConsumeLogs(opCtx, logs)
	r.obsrecv.EndLogsOp(opCtx, metadata.Type.String(), logs.LogRecordCount(), err)
	return err
}

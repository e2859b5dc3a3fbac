package copilotstudioreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
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

// window is a half-open range of ingestion times [lower, upper), read with
// one query.
type window struct {
	lower, upper time.Time
}

// run waits for the agent list (when Dataverse is configured), then polls
// every poll_interval until ctx ends.
func (r *logsReceiver) run(ctx context.Context) {
	r.awaitAgents(ctx)
	for {
		r.poll(ctx)
		if r.clock.Sleep(ctx, r.cfg.PollInterval) != nil {
			return
		}
	}
}

// poll fetches everything ingested since the cursor, window by window, and
// records how it went.
func (r *logsReceiver) poll(ctx context.Context) {
	started := r.clock.Now()
	outcome := r.pollWindows(ctx)
	if outcome == outcomeCancelled {
		return
	}
	r.telemetry.CopilotstudioPolls.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	r.telemetry.CopilotstudioPollDuration.Record(ctx, r.clock.Now().Sub(started).Seconds())
	if !r.state.Cursor.IsZero() {
		r.telemetry.CopilotstudioCursorLag.Record(ctx, r.clock.Now().Sub(r.state.Cursor).Seconds())
	}
}

func (r *logsReceiver) pollWindows(ctx context.Context) string {
	now := r.clock.Now()
	target := now.Add(-r.cfg.IngestionDelay).Truncate(appinsights.Tick)
	lower := now.Add(-r.cfg.InitialLookback).Truncate(appinsights.Tick)
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
				if limit < appinsights.MaxRows {
					r.logger.Warn("more than max_rows_per_query rows share one ingestion time; reading that instant with the query API's limit",
						zap.Time("ingestion_time", w.lower), zap.Int("max_rows_per_query", r.cfg.MaxRowsPerQuery), zap.Int("api_limit", appinsights.MaxRows))
					w.upper = w.lower.Add(appinsights.Tick)
					limit = appinsights.MaxRows
					continue
				}
				r.logger.Error("more rows share one ingestion time than the query API can return in one result; the cursor stays before them so nothing is skipped, and this poll stops here",
					zap.Time("ingestion_time", w.lower), zap.Int("api_limit", appinsights.MaxRows))
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
// builder holds the rows ingested before it.
func (r *logsReceiver) fetchWindow(ctx context.Context, w window, limit int) (b *windowBuilder, cut time.Time, err error) {
	q := appinsights.Query{EventNames: r.cfg.EventNames, Agents: r.cfg.Agents, Lower: w.lower, Upper: w.upper, Limit: limit}
	for attempt := 1; ; attempt++ {
		b = newWindowBuilder(r.cfg.ApplicationID, r.wantedEvents, r.state.Seen)
		res, err := r.client.Query(ctx, q, b.offer)
		r.telemetry.CopilotstudioRowsReceived.Add(ctx, int64(res.Rows))
		if err == nil {
			overFull := res.Rows > limit
			if cut = b.finish(overFull); !overFull {
				cut = time.Time{}
			}
			return b, cut, nil
		}
		if !appinsights.IsRetryable(err) || attempt == maxQueryAttempts || ctx.Err() != nil {
			return nil, time.Time{}, err
		}
		wait := appinsights.RetryAfter(err)
		if wait == 0 {
			wait = min(firstBackoff<<(attempt-1), maxBackoff)
		}
		wait = min(wait, maxRetryWait)
		r.logger.Warn("query failed, retrying", zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
		if err := r.clock.Sleep(ctx, wait); err != nil {
			return nil, time.Time{}, err
		}
	}
}

func (r *logsReceiver) failed(ctx context.Context, w window, err error) string {
	switch {
	case ctx.Err() != nil:
		return outcomeCancelled
	case appinsights.IsAuthError(err):
		r.logger.Error("authentication failed; retrying at the next poll", zap.Error(err), zap.Duration("poll_interval", r.cfg.PollInterval))
		return outcomeAuth
	case appinsights.IsPartial(err):
		r.logger.Error("query kept returning partial results; the window is read again at the next poll",
			zap.Error(err), zap.Time("lower", w.lower), zap.Time("upper", w.upper))
		return outcomePartial
	default:
		r.logger.Error("query failed; the window is read again at the next poll",
			zap.Error(err), zap.Time("lower", w.lower), zap.Time("upper", w.upper))
		return outcomeQuery
	}
}

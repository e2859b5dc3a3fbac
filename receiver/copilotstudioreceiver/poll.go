package copilotstudioreceiver

import (
	"context"
	"fmt"
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
	// maxClockSkew: past it, the host's clock and the query API's differ by
	// more than network delay and the Date header's whole seconds explain,
	// and a warning says so (once).
	maxClockSkew = 30 * time.Second
)

// Poll outcomes (attribute "outcome" of the polls metric).
const (
	outcomeSuccess   = "success"
	outcomeQuery     = "query_error"
	outcomeAuth      = "auth_error"
	outcomePartial   = "partial_result"
	outcomeConsumer  = "consumer_error"
	outcomeRowLimit  = "row_limit"
	outcomeTooLarge  = "response_too_large"
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
	// Both ends by the service's clock as far as it is known: a host clock
	// running fast would otherwise end windows after rows not yet ingested,
	// and the cursor would pass them.
	now := r.serviceNow(r.clock.Now())
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
	// span, once an answer was over a size limit, bounds the windows of the
	// rest of the poll; it grows again with each window that fits.
	var span time.Duration
	for {
		if span > 0 && w.upper.Sub(w.lower) > span {
			w.upper = w.lower.Add(span)
		}
		b, res, err := r.fetchWindow(ctx, w, limit)
		var cut time.Time
		if what, tooLarge := appinsights.TooLarge(err); tooLarge {
			r.telemetry.CopilotstudioResponsesTooLarge.Add(ctx, 1, metric.WithAttributes(attribute.String("limit", what)))
			// The rows read before the limit are complete and in order:
			// those ingested before the last instant read can go on.
			if cut = b.finish(true); !cut.After(w.lower) {
				if w.upper.Sub(w.lower) <= appinsights.Tick {
					r.logger.Error("the answer for one ingestion instant is over the size limit, so it cannot be read in smaller slices; the cursor stays before it so nothing is skipped, and this poll stops here: raise max_response_bytes / max_cell_bytes",
						zap.String("limit", what), zap.Error(err), zap.Time("ingestion_time", w.lower),
						zap.Int64("max_response_bytes", r.cfg.MaxResponseBytes), zap.Int("max_cell_bytes", r.cfg.MaxCellBytes))
					return outcomeTooLarge
				}
				span = max(w.upper.Sub(w.lower)/2, appinsights.Tick).Truncate(appinsights.Tick)
				r.logger.Warn("query answer over the size limit; reading the window in smaller time slices",
					zap.String("limit", what), zap.Error(err), zap.Time("lower", w.lower), zap.Time("upper", w.upper), zap.Duration("slice", span))
				w.upper = target
				continue
			}
			r.logger.Warn("query answer over the size limit; delivering the rows read before it and reading on from there",
				zap.String("limit", what), zap.Error(err), zap.Time("lower", w.lower), zap.Time("cut", cut))
			w.upper = cut
			span = max(cut.Sub(w.lower), appinsights.Tick)
		} else if err != nil {
			return r.failed(ctx, w, err)
		} else if overFull := res.Rows > limit; overFull {
			cut = b.finish(true)
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
		} else {
			b.finish(false)
		}
		// Never past the service's now less ingestion_delay, by its own
		// clock: rows ingested up to then may not be queryable yet.
		if bound := serviceBound(res.ServerTime, r.cfg.IngestionDelay); !bound.IsZero() && w.upper.After(bound) {
			if !bound.After(w.lower) {
				return outcomeSuccess
			}
			b.cutAt(bound)
			w.upper, target = bound, bound
		}
		if r.agents != nil {
			r.resolveAgents(ctx, b)
		}
		if outcome := r.deliver(ctx, w, b); outcome != outcomeSuccess {
			return outcome
		}
		if !w.upper.Before(target) {
			return outcomeSuccess
		}
		w = window{lower: w.upper, upper: target}
		limit = r.cfg.MaxRowsPerQuery
		if span > 0 {
			span *= 2
		}
	}
}

// fetchWindow queries w, retrying throttling, server errors, unreadable and
// partial results with backoff (Retry-After when given). The builder holds
// the rows read (for an answer over a size limit, the complete rows read
// before it); the caller finishes it.
func (r *logsReceiver) fetchWindow(ctx context.Context, w window, limit int) (*windowBuilder, appinsights.Result, error) {
	q := appinsights.Query{EventNames: r.cfg.EventNames, Agents: r.cfg.Agents, Lower: w.lower, Upper: w.upper, Limit: limit}
	for attempt := 1; ; attempt++ {
		b := newWindowBuilder(r.cfg.ApplicationID, r.wantedEvents, r.state.Seen)
		sent := r.clock.Now()
		res, err := r.client.Query(ctx, q, b.offer)
		r.noteServiceTime(res.ServerTime, sent, r.clock.Now())
		r.telemetry.CopilotstudioRowsReceived.Add(ctx, int64(res.Rows))
		if _, tooLarge := appinsights.TooLarge(err); err == nil || tooLarge {
			return b, res, err
		}
		if !appinsights.IsRetryable(err) || attempt == maxQueryAttempts || ctx.Err() != nil {
			return nil, res, err
		}
		wait := appinsights.RetryAfter(err)
		if wait > maxRetryWait {
			// The window is read again at the next poll; nothing is lost.
			return nil, res, fmt.Errorf("%w; Retry-After %v is over the %v a poll waits: the next poll tries again", err, wait, maxRetryWait)
		}
		if wait == 0 {
			wait = min(firstBackoff<<(attempt-1), maxBackoff)
		}
		r.logger.Warn("query failed, retrying", zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
		if err := r.clock.Sleep(ctx, wait); err != nil {
			return nil, res, err
		}
	}
}

// serviceBound is the latest upper bound a window may have by the
// service's clock at its answer: that time less ingestion_delay. Zero when
// the answer had no Date.
func serviceBound(serverTime time.Time, ingestionDelay time.Duration) time.Time {
	if serverTime.IsZero() {
		return time.Time{}
	}
	return serverTime.Add(-ingestionDelay).Truncate(appinsights.Tick)
}

// noteServiceTime learns how far the service's clock (an answer's Date,
// whole seconds) is from this host's, from a request sent at sent and
// answered by done, and says once when they differ by more than
// maxClockSkew.
func (r *logsReceiver) noteServiceTime(serverTime, sent, done time.Time) {
	if serverTime.IsZero() {
		return
	}
	// The Date was stamped between sent and done, and floored to the
	// second: the service's clock is at most serverTime+1s at sent and at
	// least serverTime at done.
	behind := serverTime.Sub(done)                 // at most the true offset
	ahead := serverTime.Add(time.Second).Sub(sent) // at least the true offset
	r.skew.offset, r.skew.known = behind, true
	if r.skew.logged {
		return
	}
	if ahead < -maxClockSkew || behind > maxClockSkew {
		r.skew.logged = true
		r.logger.Warn("this host's clock differs from the query API's; windows end by the service's clock (never later than its now less ingestion_delay), so no row is skipped, but fix the host's time synchronisation (NTP)",
			zap.Duration("service_minus_host", ((behind+ahead)/2).Round(time.Second)), zap.Duration("threshold", maxClockSkew))
	}
}

// serviceNow is now by the service's clock as far as its answers tell,
// never later than the host's own.
func (r *logsReceiver) serviceNow(hostNow time.Time) time.Time {
	if r.skew.known && r.skew.offset < 0 {
		return hostNow.Add(r.skew.offset)
	}
	return hostNow
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

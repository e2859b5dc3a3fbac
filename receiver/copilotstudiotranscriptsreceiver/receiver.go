package copilotstudiotranscriptsreceiver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
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
	"github.com/copilotwatch/otelcol-copilotstudio/internal/cursor"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/dataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/logcap"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/storageclient"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiotranscriptsreceiver/internal/metadata"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiotranscriptsreceiver/internal/transcript"
)

const (
	// Tries of one page within a poll; past them the poll ends and the
	// cursor stays, so the next poll reads the page again.
	maxPageAttempts = 5
	// maxRetryWait caps a Retry-After; a longer throttle ends the poll.
	maxRetryWait = 5 * time.Minute
	// maxMalformedLogs bounds the per-row warnings of one poll.
	maxMalformedLogs = 100
	// openConversations bounds the conversations whose state (settings,
	// open steps, emitted activity ids) is kept for their next piece: the
	// pieces of a split conversation are written together.
	openConversations = 256
	// maxPagesPerPoll bounds the pages one poll follows: a server that keeps
	// sending new next links ends there (at max_page_size 50, 500,000
	// transcripts a poll). Every page is committed as it is read, so the
	// next poll goes on from the cursor: nothing is lost.
	maxPagesPerPoll = 10000
	// maxClockSkew: past it, the host's clock and Dataverse's differ by more
	// than network delay and the Date header's whole seconds explain, and a
	// warning says so (once).
	maxClockSkew = 30 * time.Second
)

// Poll outcomes (attribute "outcome" of the polls metric).
const (
	outcomeSuccess    = "success"
	outcomeQuery      = "query_error"
	outcomeAuth       = "auth_error"
	outcomeConsumer   = "consumer_error"
	outcomeUnresolved = "agents_unresolved"
	outcomePageLimit  = "page_limit"
	outcomeCancelled  = "" // shutting down: not recorded
)

type logsReceiver struct {
	cfg       *Config
	set       receiver.Settings
	next      consumer.Logs
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	obsrecv   *receiverhelper.ObsReport

	clock clock.Clock
	// manualPolling (tests) keeps Start from running the poll loop.
	manualPolling bool
	// tokenRetry is azidentity's own retry of token requests (default when
	// zero); tests turn it off because it sleeps for real.
	tokenRetry policy.RetryOptions

	client  *dataverse.Client
	reader  *dataverse.TranscriptReader
	storage storage.Client
	state   *cursor.Checkpoint
	agents  dataverse.Directory
	convs   conversations
	// lastRefresh is when the agents list was last read (or tried).
	lastRefresh time.Time
	// skewLogged: the clock-skew warning is logged once.
	skewLogged bool
	// maxPages bounds the pages of one poll (maxPagesPerPoll; tests lower it).
	maxPages int

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
	return &logsReceiver{cfg: cfg, set: set, next: next, logger: set.Logger, telemetry: tb, obsrecv: obsrecv, clock: clock.System, maxPages: maxPagesPerPoll}, nil
}

func (r *logsReceiver) Start(ctx context.Context, host component.Host) error {
	if r.cfg.TLS.InsecureSkipVerify {
		r.logger.Warn("tls.insecure_skip_verify is true: the certificates of Dataverse and the token endpoint are not checked, so anyone on the network path can read the credential and the transcripts; set tls.ca_file for a private CA instead")
	}
	hc := r.cfg.httpClientConfig()
	httpClient, err := hc.ToClient(ctx, host.GetExtensions(), r.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("building the HTTP client: %w", err)
	}
	cred, err := azureauth.NewCredential(&r.cfg.Auth, httpClient, r.tokenRetry)
	if err != nil {
		return err
	}
	if r.client, err = dataverse.NewClient(r.cfg.environment(), cred, httpClient); err != nil {
		return err
	}
	r.client.UseClock(r.clock)
	r.reader = &dataverse.TranscriptReader{
		Client: r.client, PageSize: r.cfg.MaxPageSize, MaxPageBytes: r.cfg.MaxPageBytes,
		MaxAttempts: maxPageAttempts, MaxRetryWait: maxRetryWait, Clock: r.clock,
		OnRetry: func(attempt int, wait time.Duration, err error) {
			r.logger.Warn("reading transcripts failed, retrying", zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))
		},
	}
	if r.cfg.StorageID == nil {
		r.logger.Warn("no storage extension configured: the cursor lives in memory, so a restart reads initial_lookback again and delivers transcripts again; set storage to a file_storage extension")
		r.storage = storage.NewNopClient()
	} else if r.storage, err = storageclient.Get(ctx, host, *r.cfg.StorageID, component.KindReceiver, r.set.ID); err != nil {
		return err
	}
	if r.state, err = r.loadState(ctx); err != nil {
		_ = r.storage.Close(ctx)
		r.storage = nil
		return err
	}
	r.convs = newConversations(openConversations)

	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if !r.manualPolling {
		r.wg.Add(1)
		go r.run(runCtx)
	}
	return nil
}

// loadState resumes from the stored cursor. One that cannot be read fails
// Start (on_unreadable_cursor: stop), saying what to do, or is logged,
// counted and replaced by a fresh start from initial_lookback
// (restart_from_lookback).
func (r *logsReceiver) loadState(ctx context.Context) (*cursor.Checkpoint, error) {
	cp, err := cursor.Load(ctx, r.storage, storageKey(r.cfg.environment()))
	if err != nil {
		if r.cfg.OnUnreadableCursor != UnreadableCursorRestart {
			return nil, cursor.UnreadableError(err, "the environment "+r.cfg.environment(), "transcripts", r.cfg.InitialLookback)
		}
		r.logger.Error("cannot resume from the stored cursor; on_unreadable_cursor is restart_from_lookback, so polling starts again from initial_lookback: transcripts in that span are delivered again, and older ones not delivered yet are not read",
			zap.Error(err), zap.Duration("initial_lookback", r.cfg.InitialLookback))
		r.telemetry.CopilotstudioTranscriptsStateResets.Add(ctx, 1)
	}
	if cp == nil {
		return cursor.New(), nil
	}
	r.logger.Info("resuming from the stored cursor", zap.Time("cursor", cp.Cursor), zap.Int("overlap_rows", len(cp.Seen)))
	return cp, nil
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
		if r.clock.Sleep(ctx, r.cfg.PollInterval) != nil {
			return
		}
	}
}

// poll reads the agents list when it is due, then every transcript created
// since the cursor (less the overlap), page by page.
func (r *logsReceiver) poll(ctx context.Context) {
	started := r.clock.Now()
	if r.lastRefresh.IsZero() || started.Sub(r.lastRefresh) >= r.cfg.AgentsRefreshInterval {
		r.refreshAgents(ctx)
		r.lastRefresh = started
		r.checkClockSkew()
	}
	outcome := r.pollPages(ctx)
	if outcome == outcomeCancelled {
		return
	}
	r.telemetry.CopilotstudioTranscriptsPolls.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
	r.telemetry.CopilotstudioTranscriptsPollDuration.Record(ctx, r.clock.Now().Sub(started).Seconds())
	if !r.state.Cursor.IsZero() {
		r.telemetry.CopilotstudioTranscriptsCursorLag.Record(ctx, r.clock.Now().Sub(r.state.Cursor).Seconds())
	}
}

func (r *logsReceiver) refreshAgents(ctx context.Context) {
	agents, err := r.client.Agents(ctx)
	if ctx.Err() != nil {
		return
	}
	result := "success"
	if err != nil {
		result = "failure"
		r.logger.Warn("reading the agents from Dataverse failed; transcripts go on with the last list read (or, before the first, without the agents' names and settings)",
			zap.Error(err), zap.Duration("next_try_in", r.cfg.AgentsRefreshInterval))
	} else {
		r.agents.Replace(agents)
		r.logger.Info("read the agents from Dataverse", zap.Int("agents", len(agents)))
	}
	r.telemetry.CopilotstudioTranscriptsAgentRefreshes.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
}

// agentFilter is the bot ids to read, nil for every agent. ok is false
// when agents names schema names that cannot be resolved (yet): reading
// then would read the wrong set, so the poll waits.
func (r *logsReceiver) agentFilter() (ids []string, ok bool) {
	if len(r.cfg.Agents) == 0 {
		return nil, true
	}
	ids, names := r.cfg.agentIDsAndNames()
	if len(names) == 0 {
		return ids, true
	}
	if !r.agents.Loaded() {
		r.logger.Warn("agents lists schema names, and the agents list could not be read yet to find their bot ids; waiting for the next poll", zap.Strings("agents", names))
		return nil, false
	}
	for _, name := range names {
		a, found := r.agents.BySchemaName(name)
		if !found {
			r.logger.Warn("no agent with this schema name in the environment; its transcripts are not read", zap.String("agent", name))
			continue
		}
		ids = append(ids, strings.ToLower(a.ID))
	}
	if len(ids) == 0 {
		return nil, false
	}
	slices.Sort(ids)
	return slices.Compact(ids), true
}

func (r *logsReceiver) pollPages(ctx context.Context) string {
	ids, ok := r.agentFilter()
	if !ok {
		return outcomeUnresolved
	}
	// The cursor is the rows' own createdon; only a first poll's reach
	// depends on a clock, and it is Dataverse's as far as known (a host
	// clock running fast would start it later than initial_lookback).
	lower := r.serviceNow().Add(-r.cfg.InitialLookback)
	if !r.state.Cursor.IsZero() {
		lower = r.state.Cursor.Add(-r.cfg.Overlap)
	}
	malformed := logcap.New(r.logger, maxMalformedLogs)
	defer malformed.EndRound("more malformed transcripts skipped in this poll; see the rows_dropped metric")
	paging := r.client.NewPaging(r.maxPages)
	next := r.client.FirstPageURL(lower, ids)
	for next != "" {
		if err := paging.Next(next); err != nil {
			if errors.Is(err, dataverse.ErrPageLimit) {
				r.logger.Warn("this poll read as many pages as a poll may; the next poll goes on from the cursor", zap.Int("pages", r.maxPages), zap.Time("cursor", r.state.Cursor))
				return outcomePageLimit
			}
			return r.failed(ctx, err)
		}
		// If this page is refused, the next poll reads again from here.
		replayFrom := lower
		if !r.state.Cursor.IsZero() {
			replayFrom = r.state.Cursor.Add(-r.cfg.Overlap)
		}
		page, err := r.reader.Page(ctx, next)
		r.checkClockSkew()
		if err != nil {
			return r.failed(ctx, err)
		}
		r.telemetry.CopilotstudioTranscriptsRowsReceived.Add(ctx, int64(len(page.Rows)))
		if outcome := r.deliver(ctx, page, replayFrom, malformed); outcome != outcomeSuccess {
			return outcome
		}
		next = page.NextLink
	}
	return outcomeSuccess
}

// serviceNow is now by Dataverse's clock as far as its answers tell,
// never later than the host's own.
func (r *logsReceiver) serviceNow() time.Time {
	now := r.clock.Now()
	if offset, ok := r.client.ClockOffset(); ok && offset < 0 {
		return now.Add(offset)
	}
	return now
}

// checkClockSkew says once when Dataverse's clock is far from this host's.
func (r *logsReceiver) checkClockSkew() {
	offset, ok := r.client.ClockOffset()
	if r.skewLogged || !ok || (offset > -maxClockSkew && offset < maxClockSkew) {
		return
	}
	r.skewLogged = true
	r.logger.Warn("this host's clock differs from Dataverse's; the cursor is the transcripts' own createdon and a first poll reaches back by Dataverse's clock, so nothing is skipped, but fix the host's time synchronisation (NTP)",
		zap.Duration("service_minus_host", offset), zap.Duration("threshold", maxClockSkew))
}

func (r *logsReceiver) failed(ctx context.Context, err error) string {
	var tokenErr *dataverse.TokenError
	var se *dataverse.StatusError
	switch {
	case ctx.Err() != nil:
		return outcomeCancelled
	case errors.As(err, &tokenErr):
		r.logger.Error(r.cfg.Auth.DescribeTokenFailure(tokenErr.Scope, tokenErr.Err.Error())+"; retrying at the next poll", zap.Duration("poll_interval", r.cfg.PollInterval))
		return outcomeAuth
	case errors.As(err, &se) && (se.StatusCode == http.StatusUnauthorized || se.StatusCode == http.StatusForbidden):
		r.logger.Error("Dataverse refused the request; retrying at the next poll", zap.Error(err))
		return outcomeAuth
	default:
		r.logger.Error("reading transcripts failed; the cursor stays and the next poll reads from it again", zap.Error(err), zap.Time("cursor", r.state.Cursor))
		return outcomeQuery
	}
}

// deliver turns a page's rows into records, hands them to the next
// consumer and, once it accepted them, moves the cursor and stores it.
func (r *logsReceiver) deliver(ctx context.Context, page *dataverse.TranscriptPage, replayFrom time.Time, malformed *logcap.Logger) string {
	pageRows := make(map[string]time.Time, len(page.Rows))
	drops := map[string]int{}
	var parsed []*transcript.Transcript
	for i := range page.Rows {
		row := &page.Rows[i]
		if row.ID == "" || row.CreatedOn.IsZero() {
			drops["bad_row"]++
			malformed.Warn("skipping a transcript row without conversationtranscriptid or createdon", zap.String("name", row.Name))
			continue
		}
		pageRows[row.ID] = row.CreatedOn
		if _, dup := r.state.Seen[row.ID]; dup {
			drops["duplicate"]++
			continue
		}
		t, err := transcript.Parse(&transcript.Row{
			ID: row.ID, Name: row.Name, Content: row.Content, Metadata: row.Metadata,
			ConversationStart: row.ConversationStart, BotID: row.BotID, CreatedOn: row.CreatedOn,
		}, r.cfg.MaxContentBytes)
		if err != nil {
			var te *transcript.Error
			errors.As(err, &te)
			drops[te.Reason]++
			malformed.Warn("skipping a transcript whose content cannot be read",
				zap.String("conversationtranscriptid", row.ID), zap.String("reason", te.Reason), zap.String("detail", te.Detail))
			continue
		}
		parsed = append(parsed, t)
	}
	// Pieces of one conversation in their order: by start time (a resumed
	// conversation starts anew), then by BatchId.
	slices.SortStableFunc(parsed, func(a, b *transcript.Transcript) int {
		return cmp.Or(strings.Compare(a.Row.Name, b.Row.Name), strings.Compare(a.Row.ConversationStart, b.Row.ConversationStart), cmp.Compare(a.Meta.BatchID, b.Meta.BatchID))
	})
	logs, records, duplicates, unenriched := r.build(parsed)
	stampScopes(logs, replayFrom, r.cfg.PollInterval)

	if records > 0 {
		opCtx := r.obsrecv.StartLogsOp(ctx)
		err := r.next.ConsumeLogs(opCtx, logs)
		r.obsrecv.EndLogsOp(opCtx, metadata.Type.String(), records, err)
		if err != nil {
			if ctx.Err() != nil {
				return outcomeCancelled
			}
			// The conversations' state may hold ids of records that were
			// refused: forget it, the page is read again.
			r.convs = newConversations(openConversations)
			r.logger.Error("the next consumer refused a page of transcripts; the cursor stays and the next poll reads it again",
				zap.Error(err), zap.Int("records", records))
			return outcomeConsumer
		}
	}
	r.state.Advance(time.Time{}, pageRows, r.cfg.Overlap)
	if err := cursor.Save(ctx, r.storage, storageKey(r.cfg.environment()), r.state); err != nil && ctx.Err() == nil {
		r.logger.Error("storing the cursor failed; after a restart these transcripts may be delivered again", zap.Error(err))
	}
	r.telemetry.CopilotstudioTranscriptsRecords.Add(ctx, int64(records))
	if duplicates > 0 {
		r.telemetry.CopilotstudioTranscriptsActivitiesDuplicate.Add(ctx, int64(duplicates))
	}
	if unenriched > 0 {
		r.telemetry.CopilotstudioTranscriptsRecordsUnenriched.Add(ctx, int64(unenriched))
	}
	for reason, n := range drops {
		r.telemetry.CopilotstudioTranscriptsRowsDropped.Add(ctx, int64(n), metric.WithAttributes(attribute.String("reason", reason)))
	}
	return outcomeSuccess
}

// build makes one ResourceLogs per agent.
func (r *logsReceiver) build(parsed []*transcript.Transcript) (logs plog.Logs, records, duplicates, unenriched int) {
	logs = plog.NewLogs()
	byAgent := map[string]plog.LogRecordSlice{}
	names := map[string]string{}
	var unknown []plog.LogRecordSlice
	for _, t := range parsed {
		duplicates += t.Duplicates
		agentID := strings.ToLower(t.AgentID)
		recs, ok := byAgent[agentID]
		if !ok {
			rl := logs.ResourceLogs().AppendEmpty()
			name, known := agentResource(&r.agents, rl.Resource().Attributes(), agentID, t.Meta.BotName, r.cfg.environment())
			names[agentID] = name
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(metadata.ScopeName)
			recs = sl.LogRecords()
			byAgent[agentID] = recs
			if !known {
				unknown = append(unknown, recs)
			}
		}
		st := t.AppendRecords(r.convs.get(t.Row.Name), names[agentID], recs)
		records += st.Records
		duplicates += st.Duplicates
	}
	for _, recs := range unknown {
		unenriched += recs.Len()
	}
	return logs, records, duplicates, unenriched
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

// storageKey is per environment, so pointing the receiver at another
// environment does not reuse a cursor that means nothing there.
func storageKey(environment string) string { return "transcripts-cursor/" + environment }

package copilotstudioreceiver

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/dataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
)

// Transport

func TestEndpointMustBeHTTPSExceptOnLoopback(t *testing.T) {
	cfg := loadConfig(t, "copilotstudio/minimal")
	for _, ok := range []string{"https://api.applicationinsights.us", "http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80"} {
		cfg.Endpoint = ok
		if err := cfg.Validate(); err != nil {
			t.Errorf("endpoint %s refused: %v", ok, err)
		}
	}
	cfg.Endpoint = "http://api.applicationinsights.io"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `endpoint "http://api.applicationinsights.io" uses http`) || !strings.Contains(err.Error(), "use https") {
		t.Fatalf("plain http to a remote endpoint: %v", err)
	}
}

// A 307 from the query API keeps the method and the body: followed, it
// would send the query (and an x-api-key) to wherever it points.
func TestQueryRedirectIsRefusedNotFollowed(t *testing.T) {
	h := newHarness(t)
	var hits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer evil.Close()
	h.ai.AddRows(spread("a", 2, t0.Add(-time.Hour))...)
	h.ai.InjectFault(1, fakeappinsights.Fault{Kind: fakeappinsights.Redirect, Location: evil.URL + "/v1/apps/" + testAppID + "/query"})
	r := h.start()
	r.poll(ctx)

	if hits.Load() != 0 {
		t.Fatalf("the redirect was followed: %d requests reached the other host", hits.Load())
	}
	if got := h.ai.RequestCount(); got != 1 {
		t.Errorf("%d query requests, want 1: a redirect is not retried", got)
	}
	if got := h.counter("polls", "outcome", outcomeQuery); got != 1 {
		t.Errorf("query_error polls = %d, want 1", got)
	}
	host := strings.TrimPrefix(evil.URL, "http://")
	if h.logs.FilterMessageSnippet("query failed").FilterFieldKey("error").Len() != 1 || !strings.Contains(entryText(h.logs.FilterMessageSnippet("query failed").All()[0]), host) {
		t.Errorf("no error naming the redirect's host %s", host)
	}
	if !r.state.Cursor.IsZero() || len(h.sink.records()) != 0 {
		t.Error("a redirected query moved the cursor or delivered rows")
	}
}

func TestCAFileAddsToTheSystemRoots(t *testing.T) {
	h := newHarness(t)
	system, err := x509.SystemCertPool()
	if err != nil || system.Equal(x509.NewCertPool()) {
		t.Skip("this machine has no system roots to add to")
	}
	tlsCfg, err := h.cfg.httpClientConfig().TLS.LoadTLSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(h.cfg.TLS.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	onlyCA := x509.NewCertPool()
	onlyCA.AppendCertsFromPEM(ca)
	want := system.Clone()
	want.AppendCertsFromPEM(ca)
	if tlsCfg.RootCAs.Equal(onlyCA) {
		t.Fatal("tls.ca_file replaced the system roots")
	}
	if !tlsCfg.RootCAs.Equal(want) {
		t.Fatal("the roots are not the system's plus tls.ca_file")
	}
	// A configuration that names ca_file keeps the default.
	if cfg := loadConfig(t, "copilotstudio"); cfg.TLS.CAFile == "" || !cfg.TLS.IncludeSystemCACertsPool {
		t.Fatalf("tls from YAML: %+v", cfg.TLS)
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	h := newHarness(t)
	h.cfg.TLS.InsecureSkipVerify = true
	h.start()
	if h.logs.FilterMessageSnippet("tls.insecure_skip_verify is true").Len() != 1 {
		t.Fatal("no warning for tls.insecure_skip_verify")
	}
}

// Bounds

func TestTimeoutMustBePositive(t *testing.T) {
	cfg := loadConfig(t, "copilotstudio/minimal")
	cfg.Timeout = 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "timeout 0s must be positive") {
		t.Fatalf("timeout 0: %v", err)
	}
}

func TestKQLBoundValuesRefuseControlCharacters(t *testing.T) {
	cfg := loadConfig(t, "copilotstudio/minimal")
	cfg.ApplicationID = "9f3c5d2e-0000-4000-8000-00000000a001\x00"
	cfg.Agents = []string{"HR Agent", "IT\" )\n| take 1 //"}
	cfg.EventNames = []string{"BotMessageReceived", "Bot\u202eMessage"}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("control characters accepted in KQL-bound values")
	}
	for _, want := range []string{"application_id", "U+0000 at byte 36", "agents[1]", "U+000A at byte 5", "event_names[1]", "U+202E at byte 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "agents[0]") || strings.Contains(err.Error(), "event_names[0]") {
		t.Errorf("a good value refused: %v", err)
	}
}

// textRows are user messages of about size bytes, one second apart.
func textRows(prefix string, n, size int, first time.Time) []fakeappinsights.Row {
	rows := spread(prefix, n, first)
	for i := range rows {
		rows[i] = userMessage(rows[i].ItemID, rows[i].IngestionTime, "conv-"+prefix, strings.Repeat("x", size))
	}
	return rows
}

func TestAnswerOverMaxResponseBytesIsReadInSlices(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxResponseBytes = 64 << 10 // under Validate's minimum, to keep the test small
	h.cfg.MaxCellBytes = 32 << 10
	rows := textRows("a", 120, 2000, t0.Add(-time.Hour)) // about 250 KB in one window
	h.ai.AddRows(rows...)
	r := h.start()
	r.poll(ctx)

	wantEachOnce(t, h.sink.itemIDs(), rows)
	if got := h.counter("responses_too_large", "limit", appinsights.TooLargeResponse); got == 0 {
		t.Error("no answer counted as over max_response_bytes")
	}
	if got := h.counter("polls", "outcome", outcomeSuccess); got != 1 {
		t.Errorf("successful polls = %d, want 1", got)
	}
	if cp := h.storedCheckpoint(r); cp == nil || !cp.Cursor.Equal(t0.Add(-h.cfg.IngestionDelay)) {
		t.Fatalf("stored cursor %+v, want the window's end", cp)
	}
	if h.logs.FilterMessageSnippet("over the size limit").Len() == 0 {
		t.Error("nothing logged about the answer over its limit")
	}
}

// A row whose cell alone is over max_cell_bytes cannot be read in any
// slice: the rows before it go on, the poll stops before it and says so,
// and the cursor never passes it.
func TestCellOverMaxCellBytesStopsThePollBeforeIt(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxCellBytes = 64 << 10
	before := spread("a", 3, t0.Add(-time.Hour))
	big := userMessage("big", t0.Add(-time.Hour+10*time.Second), "conv-big", strings.Repeat("y", 100<<10))
	after := spread("b", 2, t0.Add(-time.Hour+20*time.Second))
	h.ai.AddRows(append(append(before, big), after...)...)
	r := h.start()
	r.poll(ctx)

	wantEachOnce(t, h.sink.itemIDs(), before)
	if got := h.counter("polls", "outcome", outcomeTooLarge); got != 1 {
		t.Fatalf("response_too_large polls = %d, want 1", got)
	}
	if got := h.counter("responses_too_large", "limit", appinsights.TooLargeCell); got == 0 {
		t.Error("no answer counted as over max_cell_bytes")
	}
	if r.state.Cursor.After(big.IngestionTime) {
		t.Fatalf("cursor %v passed the row it could not read (%v)", r.state.Cursor, big.IngestionTime)
	}
	errs := h.logs.FilterMessageSnippet("cannot be read in smaller slices").All()
	if len(errs) != 1 || !strings.Contains(entryText(errs[0]), "max_cell_bytes") {
		t.Fatalf("want one error naming max_cell_bytes, got %v", errs)
	}
	// Raising the limit reads on from there, nothing skipped.
	h.cfg.MaxCellBytes = 1 << 20
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r2 := h.start()
	h.ai.Advance(10 * time.Minute)
	r2.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), before, []fakeappinsights.Row{big}, after)
}

// A host clock running ahead of the service's must not end a window after
// rows not ingested yet: the cursor would pass them.
func TestFastHostClockSkipsNoRow(t *testing.T) {
	h := newHarness(t)
	early := userMessage("early", t0.Add(-10*time.Minute), "c1", "before the first poll")
	late := userMessage("late", t0.Add(time.Minute), "c2", "ingested after the first poll")
	h.ai.AddRows(early, late)
	h.clock = newFakeClock(h.ai, true)
	h.clock.skew = 10 * time.Minute
	r := h.startWith(true)

	r.poll(ctx)
	if want := t0.Add(-h.cfg.IngestionDelay); !r.state.Cursor.Equal(want) {
		t.Fatalf("cursor %v after the first poll, want the service's now less ingestion_delay (%v)", r.state.Cursor, want)
	}
	h.clock.Advance(10 * time.Minute)
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), []fakeappinsights.Row{early, late})
	reqs := h.ai.Requests()
	if last := reqs[len(reqs)-1]; last.IngestUpper.After(h.ai.Now().Add(-h.cfg.IngestionDelay)) {
		t.Errorf("the second query ends at %v, after the service's now less ingestion_delay", last.IngestUpper)
	}
	warnings := h.logs.FilterMessageSnippet("host's clock differs").All()
	if len(warnings) != 1 || !strings.Contains(entryText(warnings[0]), "-10m") {
		t.Fatalf("want one warning giving the skew, got %v", warnings)
	}
}

func TestRetryAfterOverTheCapEndsThePoll(t *testing.T) {
	h := newHarness(t)
	rows := spread("a", 3, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	h.ai.InjectFault(1, fakeappinsights.Fault{Kind: fakeappinsights.Throttle, RetryAfter: maxRetryWait + time.Minute})
	r := h.start()
	r.poll(ctx)
	if s := h.clock.sleepsSoFar(); len(s) != 0 {
		t.Fatalf("waited %v, want no wait past the %v cap", s, maxRetryWait)
	}
	if got := h.counter("polls", "outcome", outcomeQuery); got != 1 || !r.state.Cursor.IsZero() {
		t.Fatalf("query_error polls = %d, cursor %v: want the poll ended, the cursor kept", got, r.state.Cursor)
	}
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), rows)
}

// State

func (h *harness) storeRawCursor(raw string) {
	h.t.Helper()
	client := h.storageClient()
	if err := client.Set(ctx, storageKey(testAppID), []byte(raw)); err != nil {
		h.t.Fatal(err)
	}
	_ = client.Close(ctx)
}

func TestUnreadableCursorStopsStartAndSaysWhatToDo(t *testing.T) {
	for name, raw := range map[string]string{
		"corrupt":     `{"version":1,"cursor":"not a time"`,
		"newer":       `{"version":2,"cursor":"2026-02-18T11:00:00Z","seen":{}}`,
		"no position": `{"version":1,"seen":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.storeRawCursor(raw)
			r, err := newLogsReceiver(h.cfg, receiverSettings(t), h.sink)
			if err != nil {
				t.Fatal(err)
			}
			r.manualPolling = true
			err = r.Start(ctx, h.host)
			_ = r.Shutdown(ctx)
			if err == nil {
				t.Fatal("Start went on from an unreadable cursor")
			}
			for _, want := range []string{"cannot be read", "Keep the storage directory", "on_unreadable_cursor: restart_from_lookback", "initial_lookback (24h0m0s)", "never read", "version that wrote the cursor"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			if name == "newer" && !strings.Contains(err.Error(), "newer collector") {
				t.Errorf("a newer format not named: %v", err)
			}
			// The stored cursor is left as it was.
			client := h.storageClient()
			got, _ := client.Get(ctx, storageKey(testAppID))
			_ = client.Close(ctx)
			if string(got) != raw {
				t.Fatalf("stored cursor changed to %q", got)
			}
		})
	}
}

func TestUnreadableCursorRestartsFromLookbackWhenAsked(t *testing.T) {
	h := newHarness(t)
	h.cfg.OnUnreadableCursor = UnreadableCursorRestart
	h.storeRawCursor(`{"version":1,"cursor":"not a time"`)
	rows := spread("a", 3, t0.Add(-23*time.Hour))
	h.ai.AddRows(rows...)

	r := h.start()
	if got := h.counter("state_resets", "", ""); got != 1 {
		t.Fatalf("state resets = %d, want 1", got)
	}
	if h.logs.FilterMessageSnippet("cannot resume from the stored cursor").Len() != 1 {
		t.Fatal("the unreadable cursor was not logged")
	}
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), rows)
}

// Guarantees

// everyCall records every batch passed on, refused ones too.
type everyCall struct {
	next consumer.Logs
	mu   sync.Mutex
	all  []plog.Logs
}

func (e *everyCall) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (e *everyCall) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	e.mu.Lock()
	e.all = append(e.all, ld)
	e.mu.Unlock()
	return e.next.ConsumeLogs(ctx, ld)
}

func TestEveryBatchSaysWhereAReReadStarts(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxBatchSize = 3
	h.cfg.MaxRowsPerQuery = 5 // two windows in the first poll
	rows := spread("a", 8, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	h.sink.refuseAfter(2, 1) // the first window's two batches go, the second window's is refused
	r := h.start()
	calls := &everyCall{next: h.sink}
	r.next = calls
	r.poll(ctx)
	h.ai.Advance(10 * time.Minute)
	r.poll(ctx) // reads the refused window again
	wantEachOnce(t, h.sink.itemIDs(), rows)

	lowers := map[int64]bool{}
	for _, req := range h.ai.Requests() {
		lowers[req.IngestLower.UnixNano()] = true
	}
	if len(calls.all) != 4 {
		t.Fatalf("%d calls, want 4 (2 batches, a refused one, its re-read)", len(calls.all))
	}
	var replays []int64
	for i, ld := range calls.all {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				attrs := sl.Scope().Attributes()
				replay, ok := attrs.Get(schema.ReplayFrom)
				poll, ok2 := attrs.Get(schema.PollInterval)
				if !ok || !ok2 || poll.Int() != int64(h.cfg.PollInterval) {
					t.Fatalf("batch %d scope attributes %v", i, attrs.AsRaw())
				}
				if !lowers[replay.Int()] {
					t.Errorf("batch %d: replay_from %v is no window's lower bound", i, time.Unix(0, replay.Int()).UTC())
				}
				for _, lr := range sl.LogRecords().All() {
					if int64(lr.ObservedTimestamp()) < replay.Int() {
						t.Errorf("batch %d: a record ingested at %v, before replay_from", i, lr.ObservedTimestamp().AsTime())
					}
				}
				replays = append(replays, replay.Int())
			}
		}
	}
	// From the look-back for the first window, from the cursor then.
	if got, want := time.Unix(0, replays[0]).UTC(), t0.Add(-h.cfg.InitialLookback); !got.Equal(want) {
		t.Errorf("first batch replays from %v, want %v", got, want)
	}
	cursorAfterFirstWindow := rows[5].IngestionTime.UnixNano()
	if replays[2] != cursorAfterFirstWindow || replays[3] != cursorAfterFirstWindow {
		t.Errorf("the refused batch and its re-read replay from %v and %v, want the cursor %v",
			time.Unix(0, replays[2]).UTC(), time.Unix(0, replays[3]).UTC(), rows[5].IngestionTime)
	}
}

// Agent identity

func TestANewAgentsFirstRowsCarryItsIdentity(t *testing.T) {
	h := newHarness(t)
	dv := withDataverse(h, hrBot)
	h.ai.AddRows(rowsOf("HR Agent", "a", 2, t0.Add(-time.Hour), "")...)
	h.startRunning()
	h.clock.waitUntil(t, "the first read and poll", func(s clockState) bool { return h.polled(1)(s) && h.readsEnded(1)(s) })

	// A new agent is published and starts talking: the poll that first
	// sees it reads the agents (the last read was more than the spacing
	// ago) before its records are built.
	dv.SetBots(hrBot, fakedataverse.Bot{BotID: "bot-new", Name: "New Agent", SchemaName: "cr44e_newAgent", AuthenticationMode: 1})
	firstTurns := rowsOf("New Agent", "n", 3, t0.Add(time.Minute), "")
	h.ai.AddRows(firstTurns...)
	h.clock.Advance(h.cfg.PollInterval)
	h.clock.waitUntil(t, "the second poll and the early read", func(s clockState) bool { return h.polled(2)(s) && h.readsEnded(2)(s) })

	ids := agentIDs(h.sink.records())
	for _, r := range firstTurns {
		if ids[r.ItemID] != "bot-new" {
			t.Errorf("first row %s of the new agent went out with agent id %q, want bot-new", r.ItemID, ids[r.ItemID])
		}
	}
	if got := h.counter("rows_unenriched", "", ""); got != 0 {
		t.Errorf("unenriched rows = %d, want 0", got)
	}
}

// The early read keeps its spacing, and a window waits for it at most
// dataverse.initial_wait: past that its rows go on without the identity
// (counted), and the rows after the read carry it.
func TestEarlyReadWaitBoundedByInitialWaitAndSpacing(t *testing.T) {
	h := newHarness(t)
	h.cfg.PollInterval = 25 * time.Second
	dv := withDataverse(h, hrBot)
	wait := h.cfg.Dataverse.Get().InitialWait
	h.ai.AddRows(rowsOf("HR Agent", "a", 2, t0.Add(-time.Hour), "")...)
	h.startRunning()
	h.clock.waitUntil(t, "the first read and poll", func(s clockState) bool { return h.polled(1)(s) && h.readsEnded(1)(s) })

	dv.SetBots(hrBot, fakedataverse.Bot{BotID: "bot-new", Name: "New Agent", SchemaName: "cr44e_newAgent", AuthenticationMode: 1})
	firstTurns := rowsOf("New Agent", "n", 2, t0.Add(-h.cfg.IngestionDelay+time.Second), "")
	h.ai.AddRows(firstTurns...)
	h.clock.Advance(h.cfg.PollInterval) // t0+25s: the early read may start at t0+60s only
	h.clock.waitUntil(t, "the second poll waiting for the early read", func(s clockState) bool {
		return s.count(s.tickers, wait) == 2 && s.sleeping[dataverse.EarlyRefreshSpacing-h.cfg.PollInterval] == 1
	})
	h.clock.Advance(wait) // t0+55s: the window goes on without it
	h.clock.waitUntil(t, "the second poll", h.polled(2))
	ids := agentIDs(h.sink.records())
	for _, r := range firstTurns {
		if ids[r.ItemID] != "" {
			t.Errorf("row %s enriched before Dataverse was read", r.ItemID)
		}
	}
	if got := h.counter("rows_unenriched", "", ""); got != int64(len(firstTurns)) {
		t.Errorf("unenriched rows = %d, want %d", got, len(firstTurns))
	}
	if got := h.counter("dataverse_refreshes", "", ""); got != 1 {
		t.Fatalf("reads = %d before the spacing passed, want 1", got)
	}

	h.clock.Advance(dataverse.EarlyRefreshSpacing - h.cfg.PollInterval - wait) // t0+60s
	h.clock.waitUntil(t, "the early read", h.readsEnded(2))
	laterTurns := rowsOf("New Agent", "m", 2, h.clock.Now().Add(-h.cfg.IngestionDelay), "")
	h.ai.AddRows(laterTurns...)
	h.clock.Advance(h.cfg.PollInterval - (dataverse.EarlyRefreshSpacing - h.cfg.PollInterval - wait)) // t0+80s
	h.clock.waitUntil(t, "the third poll", h.polled(3))
	ids = agentIDs(h.sink.records())
	for _, r := range laterTurns {
		if ids[r.ItemID] != "bot-new" {
			t.Errorf("row %s after the read has agent id %q, want bot-new", r.ItemID, ids[r.ItemID])
		}
	}
	if got := h.counter("dataverse_refreshes", "", ""); got != 2 {
		t.Errorf("reads = %d, want 2", got)
	}
}

package copilotstudiotranscriptsreceiver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiotranscriptsreceiver/internal/metadatatest"
)

var ctx = context.Background()

func TestTimeoutMustBePositiveAndCursorPolicyKnown(t *testing.T) {
	cfg := validConfig()
	cfg.Timeout = 0
	cfg.OnUnreadableCursor = "ignore"
	err := cfg.Validate()
	for _, want := range []string{"timeout 0s must be positive", `on_unreadable_cursor "ignore" is unknown`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if d := createDefaultConfig().(*Config); !d.TLS.IncludeSystemCACertsPool || d.OnUnreadableCursor != UnreadableCursorStop {
		t.Errorf("defaults: tls %+v, on_unreadable_cursor %q", d.TLS, d.OnUnreadableCursor)
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

func (h *harness) storageClient() storage.Client {
	h.t.Helper()
	c, err := h.host.Extension.(storage.Extension).GetClient(ctx, component.KindReceiver, component.MustNewID("copilotstudio_transcripts"), "")
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func TestUnreadableCursorStopsStartAndSaysWhatToDo(t *testing.T) {
	h := newHarness(t)
	const raw = `{"version":7,"cursor":"2026-03-02T11:00:00Z","seen":{}}`
	client := h.storageClient()
	if err := client.Set(ctx, storageKey(h.cfg.environment()), []byte(raw)); err != nil {
		t.Fatal(err)
	}
	_ = client.Close(ctx)

	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(ctx) }()
	r, err := newLogsReceiver(h.cfg, metadatatest.NewSettings(tel), h.sink)
	if err != nil {
		t.Fatal(err)
	}
	r.manualPolling = true
	err = r.Start(ctx, h.host)
	_ = r.Shutdown(ctx)
	if err == nil {
		t.Fatal("Start went on from an unreadable cursor")
	}
	for _, want := range []string{"newer collector", "Keep the storage directory", "on_unreadable_cursor: restart_from_lookback", "initial_lookback (24h0m0s)", "never read"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	client = h.storageClient()
	got, _ := client.Get(ctx, storageKey(h.cfg.environment()))
	_ = client.Close(ctx)
	if string(got) != raw {
		t.Fatalf("stored cursor changed to %q", got)
	}

	// Knowingly: start again from initial_lookback.
	h.cfg.OnUnreadableCursor = UnreadableCursorRestart
	h.dv.AddTranscripts(row(1, botHR, t0.Add(-time.Hour)))
	r = h.start()
	r.poll(ctx)
	wantEachOnce(t, h.sink.transcriptIDs(), 1)
	if got := h.counter("state_resets", "", ""); got != 1 {
		t.Errorf("state_resets = %d, want 1", got)
	}
}

func TestEveryBatchSaysWhereAReReadStarts(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxPageSize = 2
	for i := range 4 {
		h.dv.AddTranscripts(row(i, botHR, t0.Add(-time.Duration(40-i)*time.Minute)))
	}
	r := h.start()
	// Every batch is recorded; the second (the second page) is refused,
	// then read again by the next poll.
	var calls []plog.Logs
	r.next = consumerFunc(func(c context.Context, ld plog.Logs) error {
		calls = append(calls, ld)
		if len(calls) == 2 {
			return errRefused
		}
		return h.sink.ConsumeLogs(c, ld)
	})
	r.poll(ctx)
	cursorAfterPage1 := r.state.Cursor
	r.poll(ctx)
	wantEachOnce(t, h.sink.transcriptIDs(), 0, 1, 2, 3)

	var replays []time.Time
	for i, ld := range calls {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				attrs := sl.Scope().Attributes()
				replay, ok := attrs.Get(schema.ReplayFrom)
				poll, ok2 := attrs.Get(schema.PollInterval)
				if !ok || !ok2 || poll.Int() != int64(h.cfg.PollInterval) {
					t.Fatalf("batch %d scope attributes %v", i, attrs.AsRaw())
				}
				for _, lr := range sl.LogRecords().All() {
					if int64(lr.ObservedTimestamp()) < replay.Int() {
						t.Errorf("batch %d: a record created at %v, before replay_from %v", i, lr.ObservedTimestamp().AsTime(), time.Unix(0, replay.Int()).UTC())
					}
				}
				replays = append(replays, time.Unix(0, replay.Int()).UTC())
			}
		}
	}
	if len(replays) != 3 {
		t.Fatalf("%d batches, want 3 (a page, a refused page, its re-read)", len(replays))
	}
	if want := t0.Add(-h.cfg.InitialLookback); !replays[0].Equal(want) {
		t.Errorf("the first page replays from %v, want the look-back %v", replays[0], want)
	}
	want := cursorAfterPage1.Add(-h.cfg.Overlap)
	if !replays[1].Equal(want) || !replays[2].Equal(want) {
		t.Errorf("the refused page and its re-read replay from %v and %v, want the cursor less the overlap, %v", replays[1], replays[2], want)
	}
}

type consumerFunc func(context.Context, plog.Logs) error

func (f consumerFunc) Capabilities() consumer.Capabilities               { return consumer.Capabilities{} }
func (f consumerFunc) ConsumeLogs(c context.Context, ld plog.Logs) error { return f(c, ld) }

var errRefused = errTest("downstream queue is full")

type errTest string

func (e errTest) Error() string { return string(e) }

func TestNextLinkToItselfEndsThePoll(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxPageSize = 1
	h.dv.AddTranscripts(row(1, botHR, t0.Add(-time.Hour)), row(2, botHR, t0.Add(-50*time.Minute)))
	h.dv.InjectTranscriptFault(1000, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultSelfNextLink})
	r := h.start()
	done := make(chan struct{})
	go func() { r.poll(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // failure guard only
		t.Fatalf("the poll follows a next link to itself without end (%d requests)", len(h.dv.TranscriptRequests()))
	}
	if got := len(h.dv.TranscriptRequests()); got != 1 {
		t.Errorf("%d transcripts requests, want 1: its link to itself is not followed", got)
	}
	wantEachOnce(t, h.sink.transcriptIDs(), 1)
	if got := h.counter("polls", "outcome", "query_error"); got != 1 {
		t.Errorf("polls{query_error} = %d, want 1", got)
	}
	if h.logs.FilterMessageSnippet("reading transcripts failed").FilterFieldKey("error").Len() != 1 {
		t.Error("the loop was not logged")
	}
}

func TestEndlessNextLinksStopAtThePageLimit(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxPageSize = 1
	h.dv.AddTranscripts(row(1, botHR, t0.Add(-time.Hour)), row(2, botHR, t0.Add(-50*time.Minute)))
	h.dv.InjectTranscriptFault(1000, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultEndlessNextLink})
	r := h.start()
	r.maxPages = 5
	done := make(chan struct{})
	go func() { r.poll(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // failure guard only
		t.Fatalf("the poll follows new next links without end (%d requests)", len(h.dv.TranscriptRequests()))
	}
	if got := len(h.dv.TranscriptRequests()); got != 5 {
		t.Errorf("%d transcripts requests, want the 5 pages a poll may read", got)
	}
	wantEachOnce(t, h.sink.transcriptIDs(), 1, 2)
	if got := h.counter("polls", "outcome", outcomePageLimit); got != 1 {
		t.Errorf("polls{page_limit} = %d, want 1", got)
	}
}

func TestRedirectIsRefusedNotFollowed(t *testing.T) {
	h := newHarness(t)
	var hits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer evil.Close()
	h.dv.AddTranscripts(row(1, botHR, t0.Add(-time.Hour)))
	h.dv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultRedirect, Location: evil.URL + "/api/data/v9.2/conversationtranscripts"})
	r := h.start()
	r.poll(ctx)
	if hits.Load() != 0 {
		t.Fatalf("the redirect was followed with the bearer token (%d requests)", hits.Load())
	}
	if got := h.counter("polls", "outcome", "query_error"); got != 1 {
		t.Errorf("polls{query_error} = %d, want 1", got)
	}
	if got := len(h.dv.TranscriptRequests()); got != 1 {
		t.Errorf("%d requests, want 1: a redirect is not retried", got)
	}
}

// The cursor is the transcripts' own createdon; the first poll's reach is
// by Dataverse's clock, so a host clock two days fast still reads the last
// initial_lookback.
func TestFastHostClockFirstPollReachesBackByDataverse(t *testing.T) {
	h := newHarness(t)
	h.skew = 48 * time.Hour
	h.dv.AddTranscripts(row(1, botHR, t0.Add(-time.Hour)))
	r := h.start()
	r.poll(ctx)
	wantEachOnce(t, h.sink.transcriptIDs(), 1)
	if f := h.dv.TranscriptRequests()[0].Filter; !strings.HasPrefix(f, "createdon ge 2026-03-01T12:00:00Z") {
		t.Errorf("filter %q: want 24h before Dataverse's now", f)
	}
	r.poll(ctx)
	if got := h.logs.FilterMessageSnippet("host's clock differs from Dataverse's").Len(); got != 1 {
		t.Errorf("%d clock warnings over two polls, want 1", got)
	}
}

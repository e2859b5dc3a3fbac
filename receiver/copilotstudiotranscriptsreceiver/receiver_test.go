package copilotstudiotranscriptsreceiver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

func TestDeliversActivitiesWithTheirAgents(t *testing.T) {
	h := newHarness(t)
	h.dv.AddTranscripts(row(1, botHR, t0.Add(-2*time.Hour)), row(2, botIT, t0.Add(-time.Hour)), row(3, botGone, t0.Add(-30*time.Minute)))
	r := h.start()
	r.poll(context.Background())

	wantEachOnce(t, h.sink.transcriptIDs(), 1, 2, 3)
	for _, rec := range h.sink.records() {
		attrs, res := rec.record.Attributes(), rec.resource
		agentID, _ := res.Get(schema.AgentID)
		name, _ := res.Get(schema.AgentName)
		switch agentID.Str() {
		case botIT:
			unauth, _ := res.Get(schema.AgentUnauthenticated)
			env, _ := res.Get(schema.AgentEnvironmentID)
			if name.Str() != "IT Helpdesk" || !unauth.Bool() || env.Str() != "env-0001" {
				t.Errorf("IT Helpdesk resource %v", res.AsRaw())
			}
		case botGone:
			// Not in the bots table: named by the metadata, no agent facts.
			if _, ok := res.Get(schema.AgentAuthenticationMode); ok || name.Str() != "cr_meta3" {
				t.Errorf("unknown agent's resource %v", res.AsRaw())
			}
		}
		if src, _ := res.Get(schema.Source); src.Str() != schema.SourceTranscripts {
			t.Errorf("resource source %q", src.Str())
		}
		if n, _ := attrs.Get(schema.AgentName); n.Str() != name.Str() {
			t.Errorf("record agent name %q, resource %q", n.Str(), name.Str())
		}
		if conv, _ := attrs.Get(schema.ConversationID); !strings.HasPrefix(conv.Str(), "conv-") || strings.Contains(conv.Str(), "_") {
			t.Errorf("conversation id %q: want the name before its last _", conv.Str())
		}
		if rec.record.ObservedTimestamp() == 0 {
			t.Error("observed timestamp (the row's createdon) missing")
		}
	}
	if got := h.counter("records_unenriched", "", ""); got != 4 {
		t.Errorf("records_unenriched = %d, want the unknown agent's 4", got)
	}
	if got := h.counter("records", "", ""); got != 12 {
		t.Errorf("records = %d, want 12", got)
	}
	// The agents list was read with the same credential, then the transcripts.
	reqs := h.dv.TranscriptRequests()
	if len(reqs) != 1 || reqs[0].Prefer != "odata.maxpagesize=50" || !strings.HasPrefix(reqs[0].Filter, "createdon ge 2026-03-01T12:00:00Z") {
		t.Errorf("requests %+v: want one page, maxpagesize 50, from 24h back", reqs)
	}
}

func TestRestartResumesAndTheOverlapDoesNotRepeat(t *testing.T) {
	h := newHarness(t)
	h.dv.AddTranscripts(row(1, botHR, t0.Add(-3*time.Hour)), row(2, botHR, t0.Add(-time.Minute)))
	r := h.start()
	r.poll(context.Background())
	wantEachOnce(t, h.sink.transcriptIDs(), 1, 2)

	// A late row: created before the cursor (inside the overlap), committed
	// after the poll passed; and a new row.
	h.dv.AddTranscripts(fakedataverse.Transcript(row(3, botIT, t0.Add(-3*time.Minute))), row(4, botIT, t0.Add(4*time.Minute)))
	late := row(5, botIT, t0.Add(-2*time.Minute))
	late.VisibleAt = t0.Add(5 * time.Minute)
	h.dv.AddTranscripts(late)
	h.dv.Advance(6 * time.Minute)

	r = h.restart(r)
	if r.state.Cursor != t0.Add(-time.Minute) || len(r.state.Seen) != 1 {
		t.Fatalf("restored cursor %v with %d overlap ids, want %v and row 2", r.state.Cursor, len(r.state.Seen), t0.Add(-time.Minute))
	}
	r.poll(context.Background())
	r.poll(context.Background())
	wantEachOnce(t, h.sink.transcriptIDs(), 1, 2, 3, 4, 5)
	for id, n := range h.sink.itemIDs() {
		if n != 1 {
			t.Errorf("item %s delivered %d times", id, n)
		}
	}
	if got := h.counter("rows_dropped", "reason", "duplicate"); got < 2 {
		t.Errorf("rows_dropped{duplicate} = %d: the overlap was not read again", got)
	}
}

func TestPagingThrottlingAndServerErrors(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxPageSize = 2
	var ids []int
	for i := range 7 {
		h.dv.AddTranscripts(row(i, botHR, t0.Add(-time.Duration(10-i)*time.Minute)))
		ids = append(ids, i)
	}
	h.dv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultThrottle, RetryAfter: 3 * time.Second})
	h.dv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultUnavailable})
	r := h.start()
	r.poll(context.Background())
	wantEachOnce(t, h.sink.transcriptIDs(), ids...)
	if sl := h.sleepsSoFar(); len(sl) != 2 || sl[0] != 3*time.Second {
		t.Errorf("sleeps %v: want the 3s Retry-After, then a backoff", sl)
	}
	pages := 0
	for _, req := range h.dv.TranscriptRequests() {
		if req.Status == 200 {
			pages++
			if req.Rows > 2 {
				t.Errorf("a page of %d rows for maxpagesize 2", req.Rows)
			}
		}
	}
	if pages != 4 {
		t.Errorf("%d pages, want 4", pages)
	}
	// Each page was accepted, then the cursor stored: its rows are the overlap.
	if r.state.Cursor != t0.Add(-4*time.Minute) {
		t.Errorf("cursor %v after the last page", r.state.Cursor)
	}
}

func TestMalformedRowIsSkippedAndCounted(t *testing.T) {
	h := newHarness(t)
	bad := row(2, botHR, t0.Add(-20*time.Minute))
	bad.Content = bad.Content[:len(bad.Content)/2]
	notJSON := row(3, botHR, t0.Add(-15*time.Minute))
	notJSON.Content = "System.Collections.Generic.List`1[Activity]"
	h.dv.AddTranscripts(row(1, botHR, t0.Add(-30*time.Minute)), bad, notJSON, row(4, botHR, t0.Add(-10*time.Minute)))
	r := h.start()
	r.poll(context.Background())
	r.poll(context.Background())

	wantEachOnce(t, h.sink.transcriptIDs(), 1, 4)
	if got := h.counter("rows_dropped", "reason", "content_truncated"); got != 1 {
		t.Errorf("rows_dropped{content_truncated} = %d, want 1 (counted once over two polls)", got)
	}
	if got := h.counter("rows_dropped", "reason", "content_not_json"); got != 1 {
		t.Errorf("rows_dropped{content_not_json} = %d, want 1", got)
	}
	logged := h.logs.FilterMessageSnippet("cannot be read").All()
	if len(logged) != 2 || logged[0].ContextMap()["conversationtranscriptid"] != rowID(2) {
		t.Fatalf("logged %v, want one line per bad row with its id", logged)
	}
	for _, l := range logged {
		if strings.Contains(l.ContextMap()["detail"].(string), "Ticket") {
			t.Error("the log quotes the content")
		}
	}
}

func TestRefusedPageIsReadAgain(t *testing.T) {
	h := newHarness(t)
	h.dv.AddTranscripts(row(1, botHR, t0.Add(-time.Hour)))
	r := h.start()
	h.sink.refuse = 1
	r.poll(context.Background())
	if len(h.sink.records()) != 0 || !r.state.Cursor.IsZero() {
		t.Fatal("a refused page moved the cursor")
	}
	r.poll(context.Background())
	wantEachOnce(t, h.sink.transcriptIDs(), 1)
	if got := h.counter("polls", "outcome", "consumer_error"); got != 1 {
		t.Errorf("polls{consumer_error} = %d", got)
	}
}

func TestAgentsBySchemaName(t *testing.T) {
	h := newHarness(t)
	h.cfg.Agents = []string{"crx_helpdesk", botGone}
	h.dv.AddTranscripts(row(1, botHR, t0.Add(-time.Hour)), row(2, botIT, t0.Add(-time.Hour)), row(3, botGone, t0.Add(-time.Hour)))
	r := h.start()
	r.poll(context.Background())
	wantEachOnce(t, h.sink.transcriptIDs(), 2, 3)
	filter := h.dv.TranscriptRequests()[0].Filter
	if !strings.Contains(filter, botIT) || !strings.Contains(filter, botGone) || strings.Contains(filter, botHR) {
		t.Errorf("filter %q", filter)
	}
}

func TestAgentsUnresolvedWaits(t *testing.T) {
	h := newHarness(t)
	h.cfg.Agents = []string{"crx_helpdesk"}
	h.dv.AddTranscripts(row(1, botHR, t0.Add(-time.Hour)))
	h.dv.SetUnavailable(true) // the bots table cannot be read
	r := h.start()
	r.poll(context.Background())
	if n := len(h.dv.TranscriptRequests()); n != 0 {
		t.Fatalf("%d transcripts requests without the agent's id: it would have read every agent", n)
	}
	if got := h.counter("polls", "outcome", "agents_unresolved"); got != 1 {
		t.Errorf("polls{agents_unresolved} = %d", got)
	}
}

func TestForbiddenIsAnAuthError(t *testing.T) {
	h := newHarness(t)
	h.dv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultForbidden})
	r := h.start()
	r.poll(context.Background())
	if got := h.counter("polls", "outcome", "auth_error"); got != 1 {
		t.Errorf("polls{auth_error} = %d", got)
	}
	l := h.logs.FilterMessageSnippet("refused").All()
	if len(l) != 1 || !strings.Contains(l[0].ContextMap()["error"].(string), "Bot Transcript Viewer") {
		t.Errorf("logged %v", l)
	}
	for _, e := range h.logs.All() {
		if strings.Contains(e.Message+fmt.Sprint(e.ContextMap()), testSecret) {
			t.Fatal("the secret reached the log")
		}
	}
}

// TestOneMegabyteTranscripts: generated 1 MB transcripts, served in pages
// of the default size, arrive whole, each activity once.
func TestOneMegabyteTranscripts(t *testing.T) {
	h := newHarness(t)
	cfg := workload.DefaultTranscriptConfig(5, 3)
	cfg.PadTo, cfg.SplitRate, cfg.LateRate, cfg.DuplicateRate = 1<<20, 0, 0, 0
	cfg.Start = t0.Add(-3 * time.Hour)
	w := workload.GenerateTranscripts(cfg)
	h.dv.SetBots(w.Bots...)
	h.dv.AddTranscripts(w.Rows...)
	r := h.start()
	r.poll(context.Background())
	want := len(w.ConversationItemIDs)
	for _, turn := range w.Turns {
		want += len(turn.ItemIDs)
	}
	got := h.sink.itemIDs()
	if len(got) != want {
		t.Fatalf("%d distinct activities delivered, want %d", len(got), want)
	}
	if req := h.dv.TranscriptRequests()[0]; req.Bytes < 3<<20 {
		t.Errorf("the page was %d bytes: the transcripts were not 1 MB", req.Bytes)
	}
}

package copilotstudioreceiver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/dataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
)

// withDataverse points the harness's receiver at a Dataverse stand-in that
// accepts only Entra tokens issued for its own scope, so the test proves the
// scope is derived from dataverse.url and the real azidentity flow is used.
func withDataverse(h *harness, bots ...fakedataverse.Bot) *fakedataverse.Server {
	h.t.Helper()
	var dv *fakedataverse.Server
	dv = fakedataverse.New(fakedataverse.Options{
		TokenValidator: func(tok string) bool {
			scope, ok := h.entra.Scope(tok)
			return ok && scope == dv.URL+"/.default"
		},
		EnvironmentID: "env-contoso",
		TLS:           h.tls.ServerTLSConfig(),
	}, bots...)
	h.t.Cleanup(dv.Close)
	h.cfg.Dataverse = configoptional.Some(DataverseConfig{URL: dv.URL, RefreshInterval: time.Hour, InitialWait: defaultDataverseInitialWait})
	if err := h.cfg.Validate(); err != nil {
		h.t.Fatal(err)
	}
	return dv
}

func rowsOf(agent, prefix string, n int, first time.Time, topic string) []fakeappinsights.Row {
	rows := spread(prefix, n, first)
	for i := range rows {
		rows[i].RoleInstance = agent
	}
	if topic != "" {
		rows = append(rows, row(prefix+"-topic", first, schema.EventTopicStart, map[string]string{
			"conversationId": "conv-" + prefix, "TopicName": topic,
		}))
		rows[len(rows)-1].RoleInstance = agent
	}
	return rows
}

func TestDataverseEnrichesRowsByDisplayAndSchemaName(t *testing.T) {
	h := newHarness(t)
	withDataverse(h,
		fakedataverse.Bot{BotID: "bot-hr", Name: "HR Agent", SchemaName: "cr44e_hrAgent", AuthenticationMode: 2, PublishedOn: "2026-02-01T00:00:00Z"},
		fakedataverse.Bot{BotID: "bot-faq", Name: "Public FAQ", SchemaName: "cr44e_publicFaq", AuthenticationMode: 1, PublishedOn: "2026-02-01T00:00:00Z"},
	)
	first := t0.Add(-time.Hour)
	h.ai.AddRows(rowsOf("HR Agent", "hr", 2, first, "")...)
	// Renamed in telemetry, but its topics carry the schema name.
	h.ai.AddRows(rowsOf("FAQ (renamed)", "faq", 2, first, "cr44e_publicFaq.topic.Greeting")...)
	h.ai.AddRows(rowsOf("Shadow Agent", "shadow", 2, first, "")...)

	r := h.start()
	r.agents.Refresh(ctx)
	r.poll(ctx)

	byAgent := map[string]pcommon.Map{}
	for _, rec := range h.sink.records() {
		name, _ := rec.resource.Get(schema.AgentName)
		byAgent[name.Str()] = rec.resource
	}
	hr := byAgent["HR Agent"]
	for key, want := range map[string]string{
		schema.AgentID: "bot-hr", schema.AgentSchemaName: "cr44e_hrAgent", schema.AgentEnvironmentID: "env-contoso",
		schema.AgentAuthenticationMode: schema.AuthEntraID, schema.AgentPublishedState: schema.PublishedStatePublished,
	} {
		if v, _ := hr.Get(key); v.AsString() != want {
			t.Errorf("HR Agent %s = %q, want %q", key, v.AsString(), want)
		}
	}
	if v, _ := hr.Get(schema.AgentUnauthenticated); v.Bool() {
		t.Error("HR Agent (Entra ID) marked unauthenticated")
	}
	faq := byAgent["FAQ (renamed)"]
	if v, _ := faq.Get(schema.AgentID); v.Str() != "bot-faq" {
		t.Errorf("renamed agent not matched by its topics' schema name: id %q", v.Str())
	}
	if v, ok := faq.Get(schema.AgentUnauthenticated); !ok || !v.Bool() {
		t.Error("agent with authentication None not marked unauthenticated")
	}
	if _, ok := byAgent["Shadow Agent"].Get(schema.AgentID); ok {
		t.Error("an agent unknown to Dataverse got an id")
	}
	// The unknown agent's rows still flow, and are counted as unenriched.
	if got := h.counter("rows_unenriched", "", ""); got != 2 {
		t.Errorf("unenriched rows = %d, want the unknown agent's 2", got)
	}
	if got := h.counter("dataverse_refreshes", "result", "success"); got != 1 {
		t.Errorf("successful refreshes = %d, want 1", got)
	}
}

func TestDataverseOutageNeverStopsTelemetry(t *testing.T) {
	h := newHarness(t)
	dv := withDataverse(h, fakedataverse.Bot{BotID: "bot-hr", Name: "HR Agent", SchemaName: "cr44e_hrAgent", AuthenticationMode: 1})
	dv.SetUnavailable(true)
	rows := rowsOf("HR Agent", "a", 3, t0.Add(-time.Hour), "")
	h.ai.AddRows(rows...)

	r := h.start()
	r.agents.Refresh(ctx)
	r.poll(ctx)

	wantEachOnce(t, h.sink.itemIDs(), rows)
	if _, ok := h.sink.records()[0].resource.Get(schema.AgentID); ok {
		t.Error("rows enriched although Dataverse never answered")
	}
	if got := h.counter("dataverse_refreshes", "result", "failure"); got != 1 {
		t.Errorf("failed refreshes = %d, want 1", got)
	}
	if got := h.counter("rows_unenriched", "", ""); got != 3 {
		t.Errorf("unenriched rows = %d, want 3", got)
	}
	warned := false
	for _, e := range h.logs.All() {
		if strings.Contains(e.Message, "Dataverse failed") {
			warned = true
		}
	}
	if !warned {
		t.Error("no log line says Dataverse could not be read")
	}

	// Dataverse comes back: the next refresh enriches the next rows.
	dv.SetUnavailable(false)
	r.agents.Refresh(ctx)
	more := rowsOf("HR Agent", "b", 1, t0, "")
	h.ai.AddRows(more...)
	h.ai.Advance(10 * time.Minute)
	r.poll(ctx)
	recs := h.sink.records()
	if len(recs) != 4 {
		t.Fatalf("delivered %d records, want 4", len(recs))
	}
	if v, _ := recs[3].resource.Get(schema.AgentID); v.Str() != "bot-hr" {
		t.Errorf("after recovery the agent id is %q, want bot-hr", v.Str())
	}
}

func TestDataverseConfigValidation(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.ApplicationID = testAppID
	cfg.Auth = azureauth.Config{Type: azureauth.APIKey, APIKey: "legacy-key"}
	cfg.Dataverse = configoptional.Some(DataverseConfig{URL: "contoso.crm.dynamics.com", InitialWait: -time.Second})
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"dataverse.url", "dataverse.refresh_interval", "dataverse.initial_wait -1s must not be negative", "dataverse needs a Microsoft Entra ID credential"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "legacy-key") {
		t.Error("the api key leaked into the error")
	}
}

var hrBot = fakedataverse.Bot{BotID: "bot-hr", Name: "HR Agent", SchemaName: "cr44e_hrAgent", AuthenticationMode: 2, PublishedOn: "2026-02-01T00:00:00Z"}

// polled is a waitUntil condition: the nth poll is done and the receiver
// sleeps until the next one. (The poll interval must differ from the waits
// before an early read of the agents, which also sleep.)
func (h *harness) polled(n int) func(clockState) bool {
	return func(s clockState) bool {
		return h.counter("polls", "", "") == int64(n) && s.sleeping[h.cfg.PollInterval] == 1
	}
}

// readsEnded is a waitUntil condition: n reads of the agents ended (each
// is followed by a wait for the next regular read).
func (h *harness) readsEnded(n int) func(clockState) bool {
	return func(s clockState) bool { return s.count(s.tickers, h.cfg.Dataverse.Get().RefreshInterval) == n }
}

func agentIDs(recs []recordWithResource) map[string]string {
	ids := map[string]string{}
	for _, rec := range recs {
		item, _ := rec.record.Attributes().Get(schema.ItemID)
		agent, _ := rec.resource.Get(schema.AgentID)
		ids[item.Str()] = agent.Str()
	}
	return ids
}

func TestBacklogReadAtStartIsEnrichedFromItsFirstBatch(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxBatchSize = 3
	withDataverse(h, hrBot)
	backlog := rowsOf("HR Agent", "a", 7, t0.Add(-time.Hour), "")
	h.ai.AddRows(backlog...)

	h.startRunning()
	h.clock.waitUntil(t, "the first poll", h.polled(1))

	wantEachOnce(t, h.sink.itemIDs(), backlog)
	for item, agent := range agentIDs(h.sink.records()) {
		if agent != "bot-hr" {
			t.Errorf("backlog row %s went out with agent id %q, want bot-hr: the first poll did not wait for the agent list", item, agent)
		}
	}
	if got := h.counter("rows_unenriched", "", ""); got != 0 {
		t.Errorf("unenriched rows = %d, want 0", got)
	}
	if got := h.counter("dataverse_refreshes", "result", "success"); got != 1 {
		t.Errorf("successful refreshes = %d, want 1", got)
	}
}

func TestDataverseDownAtStartRowsGoOnThenEnrichedOnceBack(t *testing.T) {
	h := newHarness(t)
	dv := withDataverse(h, hrBot)
	dv.SetUnavailable(true)
	first := rowsOf("HR Agent", "a", 3, t0.Add(-time.Hour), "")
	h.ai.AddRows(first...)

	h.startRunning()
	// The first read fails: polling starts without the list, and the rows of
	// an agent not in it ask for an early read, a minute after the failed
	// one. The window waits for it at most initial_wait, then goes on.
	wait := h.cfg.Dataverse.Get().InitialWait
	h.clock.waitUntil(t, "the first poll waiting for an early read", func(s clockState) bool {
		return s.count(s.tickers, wait) == 2 && s.sleeping[dataverse.EarlyRefreshSpacing] == 1
	})
	h.clock.Advance(wait)
	h.clock.waitUntil(t, "the first poll, and an early read waiting", func(s clockState) bool {
		return h.polled(1)(s) && s.sleeping[dataverse.EarlyRefreshSpacing] == 1
	})
	wantEachOnce(t, h.sink.itemIDs(), first)
	for item, agent := range agentIDs(h.sink.records()) {
		if agent != "" {
			t.Errorf("row %s enriched (%q) although Dataverse never answered", item, agent)
		}
	}
	if got := h.counter("rows_unenriched", "", ""); got != 3 {
		t.Errorf("unenriched rows = %d, want 3", got)
	}
	if got := h.counter("dataverse_refreshes", "result", "failure"); got != 1 {
		t.Errorf("failed refreshes = %d, want 1", got)
	}
	for _, want := range []string{"reading the agents from Dataverse failed", "polling starts without the agent list"} {
		if h.logs.FilterMessageSnippet(want).Len() != 1 {
			t.Errorf("no warning %q", want)
		}
	}

	dv.SetUnavailable(false)
	later := rowsOf("HR Agent", "b", 2, t0.Add(30*time.Second), "")
	h.ai.AddRows(later...)
	h.clock.Advance(dataverse.EarlyRefreshSpacing - wait)
	h.clock.waitUntil(t, "the early read", h.readsEnded(2))
	if got := h.counter("dataverse_refreshes", "result", "success"); got != 1 {
		t.Fatalf("successful refreshes = %d, want 1", got)
	}
	h.clock.Advance(h.cfg.PollInterval - (dataverse.EarlyRefreshSpacing - wait))
	h.clock.waitUntil(t, "the second poll", h.polled(2))
	ids := agentIDs(h.sink.records())
	for _, r := range later {
		if ids[r.ItemID] != "bot-hr" {
			t.Errorf("row %s after Dataverse came back has agent id %q, want bot-hr", r.ItemID, ids[r.ItemID])
		}
	}
	if got := h.counter("rows_unenriched", "", ""); got != 3 {
		t.Errorf("unenriched rows = %d, want still 3", got)
	}
}

func TestNewAgentPickedUpWithinTheSpacingNotTheHourlyRead(t *testing.T) {
	h := newHarness(t)
	dv := withDataverse(h, hrBot)
	h.ai.AddRows(rowsOf("HR Agent", "a", 2, t0.Add(-time.Hour), "")...)
	h.startRunning()
	h.clock.waitUntil(t, "the first read and poll", func(s clockState) bool { return h.polled(1)(s) && h.readsEnded(1)(s) })

	// A new agent is published and starts talking.
	dv.SetBots(hrBot, fakedataverse.Bot{BotID: "bot-new", Name: "New Agent", SchemaName: "cr44e_newAgent", AuthenticationMode: 1})
	firstTurns := rowsOf("New Agent", "n", 2, t0.Add(time.Minute), "")
	h.ai.AddRows(firstTurns...)
	h.clock.Advance(h.cfg.PollInterval)
	// Its rows ask for an early read; the last read was longer ago than the
	// spacing, so it starts at once.
	h.clock.waitUntil(t, "the second poll and the early read", func(s clockState) bool { return h.polled(2)(s) && h.readsEnded(2)(s) })

	laterTurns := rowsOf("New Agent", "m", 2, t0.Add(11*time.Minute), "")
	h.ai.AddRows(laterTurns...)
	h.clock.Advance(h.cfg.PollInterval)
	h.clock.waitUntil(t, "the third poll", h.polled(3))

	ids := agentIDs(h.sink.records())
	for _, r := range laterTurns {
		if ids[r.ItemID] != "bot-new" {
			t.Errorf("row %s of the new agent, 20 minutes in, has agent id %q, want bot-new", r.ItemID, ids[r.ItemID])
		}
	}
	if h.clock.Now().Sub(t0) >= h.cfg.Dataverse.Get().RefreshInterval {
		t.Fatal("the test waited for the regular read")
	}
	if got := h.counter("dataverse_refreshes", "result", "success"); got != 2 {
		t.Errorf("reads = %d, want 2 (at start, and the early one)", got)
	}
}

func TestUnknownAgentsReadDataverseAtMostOncePerSpacing(t *testing.T) {
	h := newHarness(t)
	// Early reads start a multiple of the poll interval after t0, so the
	// wait before the next one (60 s less a multiple of 25 s) never sleeps
	// as long as a poll does.
	h.cfg.PollInterval = 25 * time.Second
	withDataverse(h, hrBot)
	// No window waits for the early reads here (that is
	// TestEarlyReadWaitBoundedByInitialWaitAndSpacing): each poll ends at
	// once, and what is counted is how often Dataverse is read.
	h.cfg.Dataverse.Get().InitialWait = 0
	h.ai.AddRows(rowsOf("Shadow 0", "s0", 1, t0.Add(-time.Hour), "")...)
	h.startRunning()
	h.clock.waitUntil(t, "the first poll", h.polled(1))

	// Every poll brings a row of an agent Dataverse has never heard of, for
	// five minutes.
	const polls = 12
	for i := 1; i <= polls; i++ {
		h.ai.AddRows(rowsOf(fmt.Sprintf("Shadow %d", i), fmt.Sprintf("s%d", i), 1, h.clock.Now().Add(-h.cfg.IngestionDelay), "")...)
		h.clock.Advance(h.cfg.PollInterval)
		h.clock.waitUntil(t, fmt.Sprintf("poll %d", i+1), h.polled(i+1))
	}
	elapsed := h.clock.Now().Sub(t0)
	reads := h.counter("dataverse_refreshes", "", "")
	if limit := 1 + int64(elapsed/dataverse.EarlyRefreshSpacing); reads > limit || reads < 2 {
		t.Fatalf("%d reads of Dataverse in %v of unknown agents, want 2 to %d (one at start, at most one a minute)", reads, elapsed, limit)
	}
	if got := h.counter("rows_unenriched", "", ""); got != polls+1 {
		t.Errorf("unenriched rows = %d, want %d", got, polls+1)
	}
}

package copilotstudioreceiver

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
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
	h.cfg.Dataverse = configoptional.Some(DataverseConfig{URL: dv.URL, RefreshInterval: time.Hour})
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
	r.agents.refresh(ctx)
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
	r.agents.refresh(ctx)
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
	r.agents.refresh(ctx)
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
	cfg.Dataverse = configoptional.Some(DataverseConfig{URL: "contoso.crm.dynamics.com"})
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"dataverse.url", "dataverse.refresh_interval", "dataverse needs a Microsoft Entra ID credential"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "legacy-key") {
		t.Error("the api key leaked into the error")
	}
}

package activitypairprocessor

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/aktocheck"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadatatest"
)

// activity is one transcript activity as the transcripts receiver writes
// its record: the attributes below, on a resource of the agent.
type activity struct {
	event, item       string
	at                time.Duration
	typ, id, name, vt string // activity type, id, name, valueType
	replyTo, role     string
	text, value       string
	attrs             map[string]any // the step attributes the receiver reads from the value
}

const helpdeskConv = "8YYe8iif49ZKkycZLe7HUO-o"

func userMessage(item string, at time.Duration, id, text string) activity {
	return activity{event: schema.EventMessageReceived, item: item, at: at, typ: "message", id: id, role: schema.RoleUser, text: text}
}

func botMessage(item string, at time.Duration, replyTo, text string) activity {
	return activity{event: schema.EventMessageSend, item: item, at: at, typ: "message", id: "b-" + item, replyTo: replyTo, role: schema.RoleBot, text: text}
}

func planEvent(kind, item string, at time.Duration, replyTo, value string, attrs map[string]any) activity {
	a := activity{event: kind, item: item, at: at, typ: "event", id: "e-" + item, name: kind, replyTo: replyTo, role: schema.RoleBot, value: value, attrs: attrs}
	if kind == schema.EventPlanReceived || kind == schema.EventPlanStepTriggered || kind == schema.EventPlanFinished {
		a.vt = kind
	}
	return a
}

func trace(kind, item string, at time.Duration, replyTo, value string, attrs map[string]any) activity {
	return activity{event: kind, item: item, at: at, typ: "trace", vt: kind, replyTo: replyTo, role: schema.RoleBot, value: value, attrs: attrs}
}

// transcriptLogs is the transcripts receiver's output for activities of
// one conversation of the helpdesk agent.
func transcriptLogs(conv string, acts ...activity) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(schema.Source, schema.SourceTranscripts)
	res.PutStr(schema.DataverseURL, "https://contoso.crm.dynamics.com")
	res.PutStr(schema.AgentName, "Helpdesk")
	res.PutStr(schema.AgentID, "198eca5f-0000-4000-8000-0000000000a1")
	res.PutStr(schema.AgentSchemaName, "crx_helpdesk")
	res.PutStr(schema.AgentEnvironmentID, "env-1")
	res.PutStr(schema.AgentAuthenticationMode, schema.AuthEntraID)
	res.PutStr(schema.AgentPublishedState, schema.PublishedStatePublished)
	res.PutBool(schema.AgentUnauthenticated, false)
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, a := range acts {
		rec := recs.AppendEmpty()
		at := base.Add(a.at)
		rec.SetTimestamp(pcommon.NewTimestampFromTime(at))
		rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(base.Add(30 * time.Minute)))
		rec.SetEventName(a.event)
		attrs := rec.Attributes()
		attrs.PutStr(schema.EventName, a.event)
		attrs.PutStr(schema.ItemID, a.item)
		attrs.PutStr(schema.ConversationID, conv)
		attrs.PutStr(schema.AgentName, "Helpdesk")
		attrs.PutStr(schema.ChannelID, "msteams")
		attrs.PutStr(schema.Locale, "en-US")
		for k, v := range map[string]string{
			schema.ActivityType: a.typ, schema.ActivityID: a.id, schema.ActivityName: a.name, schema.ActivityValueType: a.vt,
			schema.ReplyToActivityID: a.replyTo, schema.ActivityRole: a.role, schema.ActivityValue: a.value,
		} {
			if v != "" {
				attrs.PutStr(k, v)
			}
		}
		if a.role == schema.RoleUser {
			attrs.PutStr(schema.UserID, "29:user")
		}
		for k, v := range a.attrs {
			require.NoError(nil, attrs.PutEmpty(k).FromRaw(v))
		}
		if a.text != "" {
			rec.Body().SetStr(a.text)
		}
	}
	return ld
}

// helpdeskTurns is the reference's example transcript, and a second turn
// whose step fails, between a ConversationInfo and a SessionInfo.
var helpdeskTurns = []activity{
	trace(schema.EventConversationInfo, "ci", 0, "", `{"isDesignMode":false,"locale":"en-US"}`, nil),
	userMessage("u1", 1*s, "1767261601000", "Is ticket 4711 closed?"),
	planEvent(schema.EventPlanReceived, "p1", 3*s, "1767261601000", `{"planIdentifier":"p-1","steps":["crx_helpdesk.action.GetTicket"],"isFinalPlan":false}`,
		map[string]any{schema.PlanID: "p-1"}),
	planEvent(schema.EventPlanStepTriggered, "st1", 3*s+10*time.Millisecond, "1767261601000",
		`{"planIdentifier":"p-1","stepId":"s-1","taskDialogId":"crx_helpdesk.action.GetTicket","thought":"Look up the ticket status.","state":1,"type":"Action"}`,
		map[string]any{schema.PlanID: "p-1", schema.ToolCallID: "s-1", schema.ToolID: "crx_helpdesk.action.GetTicket", schema.ToolKind: schema.ToolKindAction,
			schema.StepState: schema.StepStateTriggered, schema.PlannerThought: "Look up the ticket status."}),
	planEvent(schema.EventPlanStepBindUpdate, "bu1", 3*s+30*time.Millisecond, "1767261601000",
		`{"planIdentifier":"p-1","stepId":"s-1","taskDialogId":"crx_helpdesk.action.GetTicket","arguments":{"ticketId":"4711"}}`,
		map[string]any{schema.PlanID: "p-1", schema.ToolCallID: "s-1", schema.ToolID: "crx_helpdesk.action.GetTicket", schema.ToolArguments: `{"ticketId":"4711"}`}),
	planEvent(schema.EventPlanStepFinished, "sf1", 5*s, "1767261601000",
		`{"planIdentifier":"p-1","stepId":"s-1","taskDialogId":"crx_helpdesk.action.GetTicket","observation":{"Response":{"status":"Closed"}},"state":"completed","executionTime":"00:00:01.7800000"}`,
		map[string]any{schema.PlanID: "p-1", schema.ToolCallID: "s-1", schema.ToolID: "crx_helpdesk.action.GetTicket", schema.StepState: schema.StepStateCompleted,
			schema.StepDurationMS: int64(1780), schema.ToolResult: `{"Response":{"status":"Closed"}}`}),
	botMessage("r1", 6*s, "1767261601000", "Ticket 4711 is closed."),
	planEvent(schema.EventPlanFinished, "pf1", 6*s+100*time.Millisecond, "1767261601000", `{"planId":"p-1"}`, map[string]any{schema.PlanID: "p-1"}),

	userMessage("u2", 20*s, "1767261620000", "Reopen it."),
	planEvent(schema.EventPlanStepTriggered, "st2", 21*s, "1767261620000",
		`{"planIdentifier":"p-2","stepId":"s-2","taskDialogId":"crx_helpdesk.action.ReopenTicket","thought":"Reopen.","state":1,"type":"Action"}`,
		map[string]any{schema.PlanID: "p-2", schema.ToolCallID: "s-2", schema.ToolID: "crx_helpdesk.action.ReopenTicket", schema.ToolKind: schema.ToolKindAction,
			schema.StepState: schema.StepStateTriggered}),
	planEvent(schema.EventPlanStepTriggered, "st3", 21*s+5*time.Millisecond, "1767261620000",
		`{"planIdentifier":"p-2","stepId":"s-3","taskDialogId":"P:UniversalSearchTool","state":1,"type":"KnowledgeSource"}`,
		map[string]any{schema.PlanID: "p-2", schema.ToolCallID: "s-3", schema.ToolID: "P:UniversalSearchTool", schema.ToolKind: schema.ToolKindKnowledge,
			schema.StepState: schema.StepStateTriggered}),
	planEvent(schema.EventPlanStepFinished, "sf2", 22*s, "1767261620000",
		`{"planIdentifier":"p-2","stepId":"s-2","state":"failed","error":{"code":"ConnectorRequestFailure","message":"502"}}`,
		map[string]any{schema.PlanID: "p-2", schema.ToolCallID: "s-2", schema.ToolID: "crx_helpdesk.action.ReopenTicket", schema.StepState: schema.StepStateFailed,
			schema.ErrorCode: "ConnectorRequestFailure", schema.ErrorMessage: "502"}),
	botMessage("r2", 23*s, "1767261620000", "Sorry, that failed."),
	trace(schema.EventSessionInfo, "si", 30*s, "", `{"outcome":"Resolved","turnCount":2}`, nil),
}

func helpdeskAgent() aktocheck.Agent {
	return aktocheck.Agent{Name: "Helpdesk", Published: true, Identified: true, SchemaName: "crx_helpdesk"}
}

func TestTranscriptTurnsCarryTheirStepsToAkto(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	require.NoError(t, h.p.ConsumeLogs(context.Background(), transcriptLogs(helpdeskConv, helpdeskTurns...)))
	h.shutdown()
	turns := h.turns()
	require.Len(t, turns, 2)
	require.NoError(t, aktocheck.Records(aktoValues(h), aktocheck.Options{Agents: []aktocheck.Agent{helpdeskAgent()}}))

	first, second := decodeRecord(t, turns[0].Body), decodeRecord(t, turns[1].Body)
	assert.Equal(t, "Is ticket 4711 closed?", turns[0].RequestText)
	assert.Equal(t, []string{"Ticket 4711 is closed."}, turns[0].Replies)
	assert.Equal(t, []string{"u1", "p1", "st1", "bu1", "sf1", "r1", "pf1"}, turns[0].Items, "the conversation-level traces are in no turn")
	assert.Equal(t, "crx_helpdesk.action.GetTicket=completed", first.headers[schema.AktoHeaderToolCalls])
	assert.Equal(t, "200", first.fields["statusCode"])

	// _traces: the turn's activities in the transcript shape, which Akto's
	// runtime reads as a trace (a user message and a DynamicPlan activity).
	acts := first.traces
	require.Len(t, acts, 7)
	assert.Equal(t, map[string]any{"type": "message", "id": "1767261601000", "from": map[string]any{"role": float64(1)},
		"timestampMs": float64(base.Add(1 * s).UnixMilli()), "text": "Is ticket 4711 closed?"}, acts[0])
	assert.Equal(t, map[string]any{"type": "event", "id": "e-bu1", "name": schema.EventPlanStepBindUpdate, "replyToId": "1767261601000",
		"from": map[string]any{"role": float64(0)}, "timestampMs": float64(base.Add(3*s + 30*time.Millisecond).UnixMilli()),
		"value": map[string]any{"planIdentifier": "p-1", "stepId": "s-1", "taskDialogId": "crx_helpdesk.action.GetTicket", "arguments": map[string]any{"ticketId": "4711"}}}, acts[3])
	assert.Equal(t, schema.EventPlanReceived, acts[1]["valueType"])
	assert.Equal(t, "message", acts[5]["type"])
	assert.Equal(t, "1767261601000", acts[5]["replyToId"])
	for _, a := range acts {
		assert.NotContains(t, []any{schema.EventConversationInfo, schema.EventSessionInfo}, a["valueType"])
	}

	// A failed step fails its turn; a step that never finished is triggered.
	assert.Equal(t, "500", second.fields["statusCode"])
	assert.Equal(t, "crx_helpdesk.action.ReopenTicket=failed, P:UniversalSearchTool=triggered", second.headers[schema.AktoHeaderToolCalls])
	assert.Equal(t, "ConnectorRequestFailure", second.headers[schema.AktoHeaderErrorCodes])
	assert.True(t, turns[1].Failed)

	metadatatest.AssertEqualActivitypairRowsAbsorbed(t, h.tel, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
}

func TestTranscriptTurnsCarryTheirStepsAsAttributes(t *testing.T) {
	cfg := testConfig()
	cfg.Format = formatOTLP
	h := newHarness(t, cfg, nil)
	require.NoError(t, h.p.ConsumeLogs(context.Background(), transcriptLogs(helpdeskConv, helpdeskTurns...)))
	h.shutdown()
	var got []map[string]any
	for _, ld := range h.sink.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, rec := range rl.ScopeLogs().At(0).LogRecords().All() {
				got = append(got, rec.Attributes().AsRaw())
			}
		}
	}
	require.Len(t, got, 2)
	assert.Equal(t, []any{map[string]any{
		schema.PlanID: "p-1", schema.ToolCallID: "s-1", schema.ToolID: "crx_helpdesk.action.GetTicket", schema.ToolKind: schema.ToolKindAction,
		schema.StepState: schema.StepStateCompleted, schema.PlannerThought: "Look up the ticket status.",
		schema.ToolArguments: `{"ticketId":"4711"}`, schema.ToolResult: `{"Response":{"status":"Closed"}}`, schema.StepDurationMS: int64(1780),
	}}, got[0][schema.TurnSteps])
	assert.Equal(t, []any{
		map[string]any{schema.PlanID: "p-2", schema.ToolCallID: "s-2", schema.ToolID: "crx_helpdesk.action.ReopenTicket", schema.ToolKind: schema.ToolKindAction,
			schema.StepState: schema.StepStateFailed, schema.PlannerThought: "Reopen.", schema.ErrorCode: "ConnectorRequestFailure", schema.ErrorMessage: "502"},
		map[string]any{schema.PlanID: "p-2", schema.ToolCallID: "s-3", schema.ToolID: "P:UniversalSearchTool", schema.ToolKind: schema.ToolKindKnowledge,
			schema.StepState: schema.StepStateTriggered},
	}, got[1][schema.TurnSteps])
	assert.Equal(t, schema.OutcomeFailed, got[1][schema.TurnOutcome])
	assert.Equal(t, []any{"ConnectorRequestFailure"}, got[1][schema.TurnErrorCodes])
}

func TestTracesOverTheCapAreCut(t *testing.T) {
	big := strings.Repeat("search result text ", 4000) // 76 KB
	bigArgs := strings.Repeat("an attachment ", 5000)  // 70 KB
	observation := func(item string, at time.Duration) activity {
		return planEvent(schema.EventPlanStepFinished, item, at, "q1",
			`{"stepId":"s-`+item+`","state":"completed","observation":{"search_result":"`+big+`"}}`,
			map[string]any{schema.ToolCallID: "s-" + item, schema.StepState: schema.StepStateCompleted})
	}
	args := planEvent(schema.EventPlanStepBindUpdate, "args", 9*s, "q1", `{"stepId":"s-x","arguments":{"body":"`+bigArgs+`"}}`, map[string]any{schema.ToolCallID: "s-x"})
	acts := []activity{
		userMessage("q", 1*s, "q1", "Summarise the wiki"),
		planEvent(schema.EventPlanReceived, "plan", 2*s, "q1", `{"planIdentifier":"p"}`, nil),
		observation("o1", 3*s), observation("o2", 4*s), observation("o3", 5*s),
		args,
		botMessage("r", 10*s, "q1", "Here is the summary."),
	}
	for _, tt := range []struct {
		name                    string
		max                     int
		outputsCut, dropped     int
		keepsReply, keepsObserv bool
	}{
		{"under the cap: whole", 1 << 20, 0, 0, true, true},
		{"observations first", 120 << 10, 3, 0, true, false},
		{"then activities from the end", 16 << 10, 3, 2, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxTracesBytes = tt.max
			h := newHarness(t, cfg, nil)
			require.NoError(t, h.p.ConsumeLogs(context.Background(), transcriptLogs("cut", acts...)))
			h.shutdown()
			turns := h.turns()
			require.Len(t, turns, 1)
			rec := decodeRecord(t, turns[0].Body)
			assert.LessOrEqual(t, len(rec.fields["_traces"]), tt.max)
			names := []string{}
			for _, a := range rec.traces {
				name, _ := a["name"].(string)
				names = append(names, name)
			}
			assert.Equal(t, "message", rec.traces[0]["type"], "the user message stays")
			assert.Equal(t, schema.EventPlanReceived, rec.traces[1]["name"], "the plan stays")
			assert.Equal(t, tt.keepsObserv, strings.Contains(rec.fields["_traces"], big))
			last := rec.traces[len(rec.traces)-1]
			if tt.outputsCut == 0 && tt.dropped == 0 {
				assert.NotEqual(t, tracesCutMarker, last["name"])
				return
			}
			require.Equal(t, tracesCutMarker, last["name"], "%v", names)
			assert.Equal(t, map[string]any{"maxTracesBytes": float64(tt.max), "bytes": last["value"].(map[string]any)["bytes"],
				"outputsCut": float64(tt.outputsCut), "activitiesDropped": float64(tt.dropped)}, last["value"])
			if tt.keepsReply {
				assert.Contains(t, rec.fields["_traces"], `"[cut: `)
			}
			require.NoError(t, aktocheck.Records(aktoValues(h), aktocheck.Options{}))
		})
	}
}

// A tool call the threat-detection webhook reported, as its receiver writes it.
func toolCallLogs(record string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(schema.AgentName, "Helpdesk")
	res.PutStr(schema.AgentID, "198eca5f-0000-4000-8000-0000000000a1")
	res.PutStr(schema.AgentTenantID, "tenant-a")
	res.PutStr(schema.AgentEnvironmentID, "env-1")
	res.PutStr(schema.AgentPublishedState, schema.PublishedStatePublished)
	rec := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	rec.SetTimestamp(pcommon.NewTimestampFromTime(base))
	rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(base))
	rec.SetEventName(schema.ToolCallEventName)
	rec.Body().SetStr("Mail the Q3 payroll export to my private address")
	a := rec.Attributes()
	for k, v := range map[string]string{
		schema.EventName: schema.ToolCallEventName, schema.ToolCallRecordID: record, schema.ConversationID: helpdeskConv,
		schema.PlanID: "plan-1", schema.ToolCallID: "step-" + record, schema.ToolID: "crx_helpdesk.action.Office365Outlook-SendanemailV2",
		schema.ToolType: "ToolDefinition", schema.ToolName: "Send-an-email-V2", schema.ToolKind: schema.ToolKindAction,
		schema.ToolArguments: `{"To":"someone@example.org","Body":"emp_id,gross\n1001,98000"}`, schema.PlannerThought: "The user asked for the export to be emailed.",
		schema.ToolPreviousOutputs: `[{"toolId":"x","outputs":[{"name":"body","value":"emp_id,gross"}]}]`, schema.ChannelID: "pva-studio",
		schema.UserID: "d3c9e8f7", schema.UserTenantID: "tenant-b", schema.ClientAddress: "203.0.113.24",
		schema.WebhookCorrelationID: "corr-1", schema.ChatHistory: `[{"role":"user","content":"secret history"}]`,
	} {
		a.PutStr(k, v)
	}
	a.PutBool(schema.UserCrossTenant, true)
	return ld
}

func TestToolCallsAreRecordsOfTheirOwnAtOnce(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	batch := transcriptLogs(helpdeskConv, helpdeskTurns[:3]...) // a message, still open
	toolCallLogs("rec-1").ResourceLogs().At(0).CopyTo(batch.ResourceLogs().AppendEmpty())
	require.NoError(t, h.p.ConsumeLogs(context.Background(), batch))

	all := h.sink.AllLogs()
	require.Len(t, all, 1, "the tool call is passed on in the same call, the open turn is not")
	rl := all[0].ResourceLogs().At(0)
	assert.Equal(t, helpdeskConv, rl.Resource().Attributes().AsRaw()[schema.ConversationID])
	rec := rl.ScopeLogs().At(0).LogRecords().At(0)
	id, _ := rec.Attributes().Get(schema.ToolCallRecordID)
	assert.Equal(t, "rec-1", id.Str())
	r := decodeRecord(t, rec.Body().Bytes().AsRaw())
	assert.Equal(t, "/copilot/conversation/"+helpdeskConv+"/tool/step-rec-1", r.fields["path"])
	assert.Equal(t, "203.0.113.24", r.fields["ip"])
	assert.Equal(t, `{"blockAction":false}`, r.fields["responsePayload"])
	assert.Equal(t, map[string]any{
		"text": "Mail the Q3 payroll export to my private address", "tool": "Send-an-email-V2",
		"arguments":       map[string]any{"To": "someone@example.org", "Body": "emp_id,gross\n1001,98000"},
		"thought":         "The user asked for the export to be emailed.",
		"previousOutputs": []any{map[string]any{"toolId": "x", "outputs": []any{map[string]any{"name": "body", "value": "emp_id,gross"}}}},
	}, jsonObject(t, r.fields["requestPayload"]), "what the guardrails scan; the chat history is not in it")
	for k, want := range map[string]string{
		schema.AktoHeaderMessageID: "rec-1", schema.AktoHeaderConversationID: helpdeskConv, schema.AktoHeaderPlanID: "plan-1",
		schema.AktoHeaderStepID: "step-rec-1", schema.AktoHeaderToolID: "crx_helpdesk.action.Office365Outlook-SendanemailV2",
		schema.AktoHeaderCrossTenant: "true", schema.AktoHeaderUserTenantID: "tenant-b", "host": schema.AktoDefaultHost,
	} {
		assert.Equal(t, want, r.headers[k], k)
	}
	assert.Equal(t, map[string]any{"source": "COPILOT_STUDIO", "bot-name": "helpdesk", "gen-ai": "Gen AI", "bot-id": "198eca5f-0000-4000-8000-0000000000a1",
		"bot-environment-id": "env-1", "bot-published-state": "published"}, jsonObject(t, r.fields["tag"]), "the agent's collection and tag rules")

	// The turn comes later, into the same collection.
	require.NoError(t, h.p.ConsumeLogs(context.Background(), transcriptLogs(helpdeskConv, helpdeskTurns[3:]...)))
	h.shutdown()
	var values [][]byte
	for _, ld := range h.sink.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, rec := range rl.ScopeLogs().At(0).LogRecords().All() {
				values = append(values, rec.Body().Bytes().AsRaw())
			}
		}
	}
	require.Len(t, values, 3)
	// The webhook knows less of the agent than Dataverse: two tags, one collection.
	require.NoError(t, aktocheck.Records(values, aktocheck.Options{Agents: []aktocheck.Agent{helpdeskAgent()}, TagSetsPerAgent: 2}))
	metadatatest.AssertEqualActivitypairToolCalls(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
}

func TestToolCallsPassOnAsTheyCameInOTLP(t *testing.T) {
	cfg := testConfig()
	cfg.Format = formatOTLP
	h := newHarness(t, cfg, nil)
	in := toolCallLogs("rec-1")
	require.NoError(t, h.p.ConsumeLogs(context.Background(), in))
	all := h.sink.AllLogs()
	require.Len(t, all, 1)
	got := all[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	want := in.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	assert.Equal(t, want.Attributes().AsRaw(), got.Attributes().AsRaw())
	assert.Equal(t, schema.ToolCallEventName, got.EventName())
	assert.Equal(t, want.Body().Str(), got.Body().Str())
}

// A batch with a turn's rows and a tool call that the next consumer
// refuses comes again: the tool call goes out then, the turn once.
func TestARefusedMixedBatchRetriesBoth(t *testing.T) {
	failing := &switchableSink{err: errors.New("queue is full")}
	h := &harness{t: t, sink: &failing.LogsSink, clock: newFakeClock(), tel: newTelemetry(t)}
	p, err := newProcessor(metadatatest.NewSettings(h.tel), testConfig(), failing, h.clock)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), nil))
	h.p = p
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })

	batch := func() plog.Logs {
		ld := transcriptLogs(helpdeskConv, helpdeskTurns...)
		toolCallLogs("rec-1").ResourceLogs().At(0).CopyTo(ld.ResourceLogs().AppendEmpty())
		return ld
	}
	require.ErrorContains(t, p.ConsumeLogs(context.Background(), batch()), "queue is full")
	assert.Empty(t, failing.AllLogs())
	failing.err = nil
	require.NoError(t, p.ConsumeLogs(context.Background(), batch()))
	h.shutdown()
	calls, turnIDs := 0, map[string]int{}
	for _, ld := range failing.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, rec := range rl.ScopeLogs().At(0).LogRecords().All() {
				if _, ok := rec.Attributes().Get(schema.ToolCallRecordID); ok {
					calls++
				} else if id, ok := rec.Attributes().Get(schema.TurnID); ok {
					turnIDs[id.Str()]++
				}
			}
		}
	}
	assert.Equal(t, 1, calls)
	assert.Len(t, turnIDs, 2)
	for id, n := range turnIDs {
		assert.Equal(t, 1, n, id)
	}
}

func TestDotOnlyConversationIDsStayOneSegment(t *testing.T) {
	for conv, want := range map[string]string{
		".":   "/copilot/conversation/%2E/message/0",
		"..":  "/copilot/conversation/%2E%2E/message/0",
		"a.b": "/copilot/conversation/a.b/message/0",
	} {
		h := newHarness(t, testConfig(), nil)
		h.consume(msg(conv, "m1", 0, "a1", "Hi"), reply(conv, "r1", 1*s, "a1", "Hello."))
		h.shutdown()
		turns := h.turns()
		require.Len(t, turns, 1)
		assert.Equal(t, want, decodeRecord(t, turns[0].Body).fields["path"])
		assert.Equal(t, conv, turns[0].ConversationID, "it decodes back")
		require.NoError(t, aktocheck.Records(aktoValues(h), aktocheck.Options{}))
	}
}

// decoded is an Akto record with its headers and _traces read.
type decoded struct {
	fields  map[string]string
	headers map[string]string
	traces  []map[string]any
}

func decodeRecord(t *testing.T, body []byte) decoded {
	t.Helper()
	var d decoded
	require.NoError(t, json.Unmarshal(body, &d.fields))
	require.NoError(t, json.Unmarshal([]byte(d.fields["requestHeaders"]), &d.headers))
	if traces, ok := d.fields["_traces"]; ok {
		require.NoError(t, json.Unmarshal([]byte(traces), &d.traces))
	}
	return d
}

// A turn's steps are stored with it: after a SIGKILL between its steps
// and its next message, its record is the one an uninterrupted run writes.
func TestStepsSurviveARestart(t *testing.T) {
	whole := newHarness(t, testConfig(), nil)
	require.NoError(t, whole.p.ConsumeLogs(context.Background(), transcriptLogs(helpdeskConv, helpdeskTurns...)))
	whole.shutdown()
	want := aktoValues(whole)

	host := newFileStorage(t)
	h := newHarness(t, storageConfig(), host)
	require.NoError(t, h.p.ConsumeLogs(context.Background(), transcriptLogs(helpdeskConv, helpdeskTurns[:7]...)))
	h.kill()
	assert.Empty(t, h.sink.AllLogs())
	h.start(storageConfig(), host)
	require.NoError(t, h.p.ConsumeLogs(context.Background(), transcriptLogs(helpdeskConv, helpdeskTurns[7:]...)))
	h.clock.Advance(time.Hour)
	require.NoError(t, h.p.sweep(context.Background()))
	got := aktoValues(h)
	require.Len(t, got, 2)
	assert.Equal(t, string(want[0]), string(got[0]), "the first turn, _traces and tool calls included")
	assert.Equal(t, string(want[1]), string(got[1]))
}

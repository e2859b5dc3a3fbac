package activitypairprocessor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/aktocheck"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const teamsThread = "19:abcDEF@thread.v2;messageid=1700000000001"

// goldenRows: a greeting, a two-reply turn with awkward text, and a failed
// turn, in a Teams channel thread whose id needs escaping in the path.
var goldenRows = []testRow{
	event(teamsThread, "i0", 0, "conversationUpdate", "1700000000000"),
	topicStart(teamsThread, "i1", 1*s, "cr44e_hrAgent.topic.Greeting"),
	reply(teamsThread, "i2", 2*s, "1700000000000", "Hi! I'm HR Agent \U0001F44B"),
	msg(teamsThread, "i3", 10*s, "1700000010000", "What's \"PTO\"?\nAnd\tsick <leave> & bad \xff byte"),
	topicStart(teamsThread, "i4", 11*s, "cr44e_hrAgent.topic.Leave"),
	action(teamsThread, "i5", 12*s, "cr44e_hrAgent.topic.Leave", "SearchAndSummarizeContent"),
	reply(teamsThread, "i6", 13*s, "1700000010000", "PTO is paid time off.\n\n- 25 days"),
	reply(teamsThread, "i7", 14*s, "", "Anything else?"),
	msg(teamsThread, "i8", 30*s, "1700000030000", "Book leave"),
	action(teamsThread, "i9", 31*s, "cr44e_hrAgent.topic.Book", "InvokeFlowAction"),
	failure(teamsThread, "i10", 32*s, "FlowActionException"),
}

func TestAktoRecordsMatchGolden(t *testing.T) {
	for i := range goldenRows {
		goldenRows[i].agent = "HR Agent (Contoso) – EU"
	}
	h := newHarness(t, testConfig(), nil)
	h.consume(goldenRows...)
	h.shutdown()
	var got bytes.Buffer
	for _, e := range h.turns() {
		// Akto reads every field as a JSON string.
		var fields map[string]any
		require.NoError(t, json.Unmarshal(e.Body, &fields))
		for k, v := range fields {
			assert.IsType(t, "", v, "field %s", k)
		}
		for _, k := range []string{"requestHeaders", "responseHeaders", "tag"} {
			assert.NotNil(t, jsonObject(t, fields[k].(string)), k)
		}
		got.Write(e.Body)
		got.WriteByte('\n')
	}
	path := filepath.Join("testdata", "akto_turns.golden.jsonl")
	if *update {
		require.NoError(t, os.WriteFile(path, got.Bytes(), 0o600))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), got.String())

	require.NoError(t, aktocheck.Records(aktoValues(h), aktocheck.Options{Agents: []aktocheck.Agent{{Name: "HR Agent (Contoso) – EU"}}}))
	turns := h.turns()
	require.Len(t, turns, 3)
	assert.Equal(t, "hr-agent-contoso-eu", turns[0].BotName)
	assert.Equal(t, []string{"0", "1", "2"}, []string{turns[0].Index, turns[1].Index, turns[2].Index})
	assert.Equal(t, teamsThread, turns[1].ConversationID, "the path escapes the id and it decodes back")
	assert.Equal(t, "What's \"PTO\"?\nAnd\tsick <leave> & bad \uFFFD byte", turns[1].RequestText)
	assert.True(t, turns[2].Failed)
}

func TestAktoTagCarriesTheAgentFromDataverse(t *testing.T) {
	attrs := pcommon.NewMap()
	attrs.PutStr(schema.AppInsightsAppID, "00000000-app")
	attrs.PutStr(schema.AgentName, "  Contoso__IT  Help!! ")
	attrs.PutStr(schema.AgentID, "bot-1")
	attrs.PutStr(schema.AgentSchemaName, "cr44e_ContosoIT")
	attrs.PutStr(schema.AgentEnvironmentID, "env-1")
	attrs.PutStr(schema.AgentPublishedState, schema.PublishedStatePublished)
	attrs.PutStr(schema.AgentAuthenticationMode, schema.AuthNone)
	attrs.PutBool(schema.AgentUnauthenticated, true)
	res := newAktoSource(attrs)
	assert.Equal(t, "contoso-it-help", res.botName)
	assert.Equal(t, `,\"x-copilotstudio-app-id\":\"00000000-app\"`, res.headerTail, "the app id is a request header, not a tag")
	assert.Equal(t, map[string]any{
		"source": "COPILOT_STUDIO", "bot-name": "contoso-it-help", "gen-ai": "Gen AI",
		"bot-id": "bot-1", "bot-schemaname": "cr44e_ContosoIT", "bot-environment-id": "env-1",
		"bot-published-state": "published", "bot-authentication-mode": "none", "unauthenticated": "true",
	}, jsonObject(t, jsonString(t, res.tag)), "the schema name exactly as Dataverse has it")

	// Akto reads the key's presence as published: an agent that is not has none.
	for _, state := range []string{schema.PublishedStateUnpublished, schema.PublishedStateInactive} {
		attrs.PutStr(schema.AgentPublishedState, state)
		tag := jsonObject(t, jsonString(t, newAktoSource(attrs).tag))
		assert.NotContains(t, tag, "bot-published-state", state)
	}
	// Without Dataverse: what is constant per agent and nothing else.
	bare := pcommon.NewMap()
	bare.PutStr(schema.AgentName, "HR Agent")
	assert.Equal(t, map[string]any{"source": "COPILOT_STUDIO", "bot-name": "hr-agent", "gen-ai": "Gen AI"},
		jsonObject(t, jsonString(t, newAktoSource(bare).tag)))
}

// jsonString decodes a JSON string literal.
func jsonString(t *testing.T, literal string) string {
	t.Helper()
	var s string
	require.NoError(t, json.Unmarshal([]byte(literal), &s))
	return s
}

func TestSanitizeAgentName(t *testing.T) {
	for in, want := range map[string]string{
		"HR Agent":                "hr-agent",
		"HR Agent (Contoso) – EU": "hr-agent-contoso-eu",
		"--Ünïcode Bøt--":         "ünïcode-bøt",
		"a - b":                   "a-b",
		"Agent_v2.1 (beta)":       "agent-v2-1-beta",
		"日本語 エージェント":              "日本語-エージェント",
		"!!!":                     "",
	} {
		assert.Equal(t, want, sanitizeAgentName(in), in)
	}
}

func TestOTLPFormat(t *testing.T) {
	cfg := testConfig()
	cfg.Format = formatOTLP
	h := newHarness(t, cfg, nil)
	h.consume(goldenRows...)
	h.shutdown()
	var got []map[string]any
	for _, ld := range h.sink.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			assert.Equal(t, teamsThread, rl.Resource().Attributes().AsRaw()[schema.ConversationID])
			for _, rec := range rl.ScopeLogs().At(0).LogRecords().All() {
				got = append(got, rec.Attributes().AsRaw())
			}
		}
	}
	require.Len(t, got, 3)
	turn := got[1]
	delete(turn, schema.TurnID)
	assert.Equal(t, map[string]any{
		schema.EventName:             schema.TurnEventName,
		schema.TurnIndex:             int64(1),
		schema.TurnOutcome:           schema.OutcomePaired,
		schema.TurnTrigger:           "complete",
		schema.ChannelID:             testChannel,
		schema.Locale:                "en-US",
		schema.UserID:                "29:user",
		schema.TurnRequest:           "What's \"PTO\"?\nAnd\tsick <leave> & bad \xff byte",
		schema.TurnRequestActivityID: "1700000010000",
		schema.TurnResponse:          []any{"PTO is paid time off.\n\n- 25 days", "Anything else?"},
		schema.TurnResponseIDs:       []any{"", ""},
		schema.TurnActions:           []any{"SearchAndSummarizeContent"},
		schema.TurnTopics:            []any{"cr44e_hrAgent.topic.Leave"},
		schema.TurnItemIDs:           []any{"i3", "i4", "i5", "i6", "i7"},
		schema.TurnDurationMS:        int64(4000),
		schema.TurnFirstReplyMS:      int64(3000),
	}, turn)
	assert.Equal(t, schema.OutcomeResponseOnly, got[0][schema.TurnOutcome])
	assert.Equal(t, schema.OutcomeFailed, got[2][schema.TurnOutcome])
	assert.Equal(t, []any{"FlowActionException"}, got[2][schema.TurnErrorCodes])
}

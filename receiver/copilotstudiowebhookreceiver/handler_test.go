package copilotstudiowebhookreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

func TestValidate(t *testing.T) {
	sink := new(consumertest.LogsSink)
	f := newFixture(t, sink, fixtureOptions{})
	a, err := f.client.Validate(context.Background())
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, a.Status)
	assert.Equal(t, `{"isSuccessful":true,"status":"OK"}`, string(a.Body))
	assert.Empty(t, sink.AllLogs(), "validate made a record")
	assert.Equal(t, int64(1), f.calls(endpointValidate, outcomeAccepted))
}

// TestAnalyzeRecord checks every attribute of the reference's example call.
func TestAnalyzeRecord(t *testing.T) {
	sink := new(consumertest.LogsSink)
	f := newFixture(t, sink, fixtureOptions{})
	before := time.Now()
	a := f.analyze(webhookclient.Example())
	assert.Equal(t, http.StatusOK, a.Status)
	assert.Equal(t, `{"blockAction":false}`, string(a.Body))
	assert.Equal(t, outcomeAccepted, a.Record)

	rl, lr := onlyRecord(t, sink)
	assert.Equal(t, map[string]any{
		schema.AgentName:           "HR Helper",
		schema.AgentID:             "3f2a9c41-7d6e-4b80-a1c2-9e4d5f6a7b8c",
		schema.AgentTenantID:       testTenant,
		schema.AgentEnvironmentID:  "Default-" + testTenant,
		schema.AgentPublishedState: schema.PublishedStatePublished,
	}, rl.Resource().Attributes().AsRaw())
	assert.Equal(t, "Mail the Q3 payroll export to my private address", lr.Body().Str())
	assert.False(t, lr.Timestamp().AsTime().Before(before.Truncate(time.Millisecond)))
	assert.Equal(t, lr.Timestamp(), lr.ObservedTimestamp())

	attrs := lr.Attributes().AsRaw()
	require.Len(t, attrs[schema.ToolCallRecordID], 32)
	assert.Equal(t, map[string]any{
		schema.EventName:            schema.ToolCallEventName,
		schema.ToolCallRecordID:     recordID("5b7e2d90-1c3f-4a6e-8d2b-7f9a0c1e3d5b", "a4c6e8f0-2b4d-4f6a-8c0e-1d3f5a7c9e2b", "e1f3a5c7-9b2d-4e6f-8a0c-2e4a6c8e0f1d", "", nil),
		schema.ConversationID:       "5b7e2d90-1c3f-4a6e-8d2b-7f9a0c1e3d5b",
		schema.PlanID:               "a4c6e8f0-2b4d-4f6a-8c0e-1d3f5a7c9e2b",
		schema.ToolCallID:           "e1f3a5c7-9b2d-4e6f-8a0c-2e4a6c8e0f1d",
		schema.AgentName:            "HR Helper",
		schema.UserID:               "d3c9e8f7-2b1a-4c5d-8e9f-0a1b2c3d4e5f",
		schema.UserTenantID:         testTenant,
		schema.UserCrossTenant:      false,
		schema.ChannelID:            "pva-studio",
		schema.ClientAddress:        "203.0.113.24",
		schema.ToolID:               "crd4f_hrhelper.action.Office365Outlook-SendanemailV2",
		schema.ToolType:             "ToolDefinition",
		schema.ToolName:             "Send-an-email-V2",
		schema.ToolDescription:      "Sends an email message.",
		schema.ToolKind:             schema.ToolKindAction,
		schema.ToolArguments:        `{"To":"someone@example.org","Subject":"Q3 payroll","Body":"emp_id,gross\n1001,98000"}`,
		schema.PlannerThought:       "The user asked for the payroll export to be emailed, so I will call Send an email (V2).",
		schema.ChatHistory:          `[{"id":"6c1f0b7e-2d4a-4f3b-9e21-5a7d8c9e0f11","role":"user","content":"Mail the Q3 payroll export to my private address","timestamp":"2026-03-11T09:15:42.5120394+00:00"},{"id":"0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b","role":"assistant","content":"Hi, I'm HR Helper. What can I do for you?","timestamp":"2026-03-11T09:15:30.0046611+00:00"}]`,
		schema.ToolPreviousOutputs:  `[{"toolId":"crd4f_hrhelper.action.SharePoint-Getfilecontent","toolName":"Get-file-content","outputs":[{"name":"body","value":"emp_id,gross\n1001,98000"}],"timestamp":"2026-03-11T09:15:44.1038812+00:00"}]`,
		schema.WebhookAPIVersion:    "2025-05-01",
		schema.WebhookCorrelationID: a.CorrelationID,
	}, attrs)
}

func TestRecordIDStableAcrossRepeats(t *testing.T) {
	sink := new(consumertest.LogsSink)
	f := newFixture(t, sink, fixtureOptions{})
	f.analyze(webhookclient.Example())
	f.analyze(webhookclient.Example()) // another correlation id, the same call
	calls := webhookclient.Generate(3, 1, webhookclient.Options{})
	f.analyze(calls[0].Body)
	ids := []string{}
	for _, ld := range sink.AllLogs() {
		v, _ := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get(schema.ToolCallRecordID)
		ids = append(ids, v.Str())
	}
	require.Len(t, ids, 3)
	assert.Equal(t, ids[0], ids[1], "the same call got two record ids")
	assert.NotEqual(t, ids[0], ids[2], "two calls share a record id")
}

func TestGeneratedVariants(t *testing.T) {
	sink := new(consumertest.LogsSink)
	f := newFixture(t, sink, fixtureOptions{})
	calls := webhookclient.Generate(11, 2*len(webhookclient.Variants), webhookclient.Options{AgentTenantID: testTenant, OtherTenantID: testOtherTenant})
	for _, c := range calls {
		a := f.analyze(c.Body)
		require.Equal(t, http.StatusOK, a.Status, "%s: %s", c.Variant, a.Body)
		require.Equal(t, outcomeAccepted, a.Record)
	}
	all := sink.AllLogs()
	require.Len(t, all, len(calls))
	for i, c := range calls {
		rl := all[i].ResourceLogs().At(0)
		lr := rl.ScopeLogs().At(0).LogRecords().At(0)
		attrs := lr.Attributes()
		str := func(k string) string { v, _ := attrs.Get(k); return v.AsString() }
		assert.Equal(t, c.ConversationID, str(schema.ConversationID), c.Variant)
		assert.Equal(t, c.StepID, str(schema.ToolCallID), c.Variant)
		assert.Equal(t, c.ToolID, str(schema.ToolID), c.Variant)
		assert.Equal(t, c.UserMessage, lr.Body().AsString(), c.Variant)
		name, _ := rl.Resource().Attributes().Get(schema.AgentName)
		assert.Equal(t, c.AgentName, name.Str())

		cross, ok := attrs.Get(schema.UserCrossTenant)
		if c.UserTenantID == "" {
			assert.False(t, ok, "%s: cross_tenant set without a user", c.Variant)
		} else {
			require.True(t, ok, c.Variant)
			assert.Equal(t, pcommon.ValueTypeBool, cross.Type())
			assert.Equal(t, c.CrossTenant(), cross.Bool(), c.Variant)
		}
		switch c.Variant {
		case "topic":
			// Microsoft's spelling, outputs as one object: kept as sent.
			assert.Contains(t, str(schema.ToolPreviousOutputs), `"outputs":{"value":[`)
			assert.Equal(t, schema.ToolKindTopic, str(schema.ToolKind))
			assert.NotEmpty(t, str(schema.TriggerID))
			assert.NotEmpty(t, str(schema.TriggerSchemaName))
		case "mcp":
			assert.Equal(t, schema.ToolKindMCP, str(schema.ToolKind))
			assert.Equal(t, "2001:db8::42", str(schema.ClientAddress))
			_, hasThought := attrs.Get(schema.PlannerThought)
			_, hasUser := attrs.Get(schema.UserID)
			assert.False(t, hasThought || hasUser, "null fields became attributes")
			assert.Equal(t, pcommon.ValueTypeEmpty, lr.Body().Type(), "a null message became a body")
		case "cross_tenant":
			assert.Contains(t, str(schema.ChatHistory), `"content":{"body":[`)
		case "extras":
			published, _ := rl.Resource().Attributes().Get(schema.AgentPublishedState)
			version, _ := rl.Resource().Attributes().Get(schema.AgentVersion)
			assert.Equal(t, schema.PublishedStateUnpublished, published.Str())
			assert.Equal(t, "1.4.2", version.Str())
			// The credential is in the record as sent: masking is the
			// pipeline's (transform/redaction), and it must reach it there.
			assert.Contains(t, str(schema.ToolArguments), c.Secret)
		}
	}
}

func TestBothSpellingsInOneCall(t *testing.T) {
	sink := new(consumertest.LogsSink)
	f := newFixture(t, sink, fixtureOptions{})
	body := `{"plannerContext":{"previousToolsOutputs":[{"toolId":"a","outputs":[]}],"previousToolOutputs":[{"toolId":"b","outputs":{"x":1}}]},
		"conversationMetadata":{"conversationId":"c1","planId":"p1","planStepId":"s1"}}`
	require.Equal(t, http.StatusOK, f.analyze([]byte(body)).Status)
	_, lr := onlyRecord(t, sink)
	v, _ := lr.Attributes().Get(schema.ToolPreviousOutputs)
	assert.JSONEq(t, `[{"toolId":"a","outputs":[]},{"toolId":"b","outputs":{"x":1}}]`, v.Str())
}

func TestUnknownAPIVersionServedAndLoggedOnce(t *testing.T) {
	sink := new(consumertest.LogsSink)
	f := newFixture(t, sink, fixtureOptions{})
	c := *f.client
	c.APIVersion = "2099-01-01"
	for range 3 {
		a, err := c.Analyze(context.Background(), webhookclient.Example())
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, a.Status)
	}
	f.analyze(webhookclient.Example())
	assert.Len(t, f.logged("api-version this receiver does not know"), 1)
	v, _ := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get(schema.WebhookAPIVersion)
	assert.Equal(t, "2099-01-01", v.Str())
}

func TestBadInput(t *testing.T) {
	sink := new(consumertest.LogsSink)
	f := newFixture(t, sink, fixtureOptions{configure: func(c *Config) { c.ServerConfig.MaxRequestBodySize = 64 << 10 }})
	deep := `{"inputValues":` + strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1) + `}`
	for _, c := range []struct {
		name, body, reason, message string
	}{
		{"empty", "", badNotJSON, "the request body is empty: expected a JSON object"},
		{"not JSON", "plannerContext=1", badNotJSON, "the request body is not valid JSON"},
		{"truncated JSON", `{"plannerContext":{"userMessage":"hi"`, badNotJSON, "the request body is not valid JSON"},
		{"an array", `[{"plannerContext":{}}]`, badNotObject, "the request body is JSON but not an object"},
		{"null", `null`, badNotObject, "the request body is JSON but not an object"},
		{"a string", `"analyze"`, badNotObject, "the request body is JSON but not an object"},
		{"too deep", deep, badTooDeep, fmt.Sprintf("the request body nests objects and arrays deeper than %d levels", maxNesting)},
		{"too large", `{"inputValues":"` + strings.Repeat("x", 64<<10) + `"}`, badTooLarge, fmt.Sprintf("the request body exceeds %d bytes", 64<<10)},
		{"string field as number", `{"conversationMetadata":{"conversationId":42}}`, badWrongType, "field conversationMetadata.conversationId is a JSON number, expected a string or null"},
		{"bool field as string", `{"conversationMetadata":{"agent":{"isPublished":"yes"}}}`, badWrongType, "field conversationMetadata.agent.isPublished is a JSON string, expected a boolean or null"},
		{"object as string", `{"conversationMetadata":{"agent":"HR Helper"}}`, badWrongType, "field conversationMetadata.agent is a JSON string, expected an object or null"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := f.sum("copilotstudio_webhook_bad_requests", attribute.String("reason", c.reason))
			a := f.analyze([]byte(c.body))
			assert.Equal(t, http.StatusBadRequest, a.Status)
			var got errorBody
			require.NoError(t, json.Unmarshal(a.Body, &got), string(a.Body))
			assert.Equal(t, errorBody{ErrorCode: 4001, Message: c.message, HTTPStatus: 400}, got)
			assert.Equal(t, before+1, f.sum("copilotstudio_webhook_bad_requests", attribute.String("reason", c.reason)))
		})
	}
	assert.Empty(t, sink.AllLogs(), "an unreadable call made a record")
	assert.Equal(t, int64(11), f.calls(endpointAnalyze, outcomeBadRequest))
	assert.NotEmpty(t, f.logged("its body cannot be read"))

	// Still serving.
	assert.Equal(t, http.StatusOK, f.analyze(webhookclient.Example()).Status)
	assert.Len(t, sink.AllLogs(), 1)
}

func TestToleratedInput(t *testing.T) {
	sink := new(consumertest.LogsSink)
	f := newFixture(t, sink, fixtureOptions{})
	for _, body := range []string{
		`{}`,
		`{"plannerContext":null,"toolDefinition":null,"conversationMetadata":null,"inputValues":null}`,
		`{"conversationMetadata":{"agent":{"name":null,"version":null,"isPublished":null},"user":null,"trigger":null}}`,
		`{"unknown":{"deep":[1,{"x":[]}]},"plannerContext":{"chatHistory":"not an array","future":true}}`,
		`{"inputValues":["not","an","object"],"plannerContext":{"previousToolsOutputs":{"one":"object"}}}`,
		"\n\t {\"conversationMetadata\":{\"incomingClientIp\":\"not an ip\"}}",
	} {
		a := f.analyze([]byte(body))
		assert.Equal(t, http.StatusOK, a.Status, "%s: %s", body, a.Body)
	}
	require.Len(t, sink.AllLogs(), 6)
	for _, ld := range sink.AllLogs() {
		v, _ := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get(schema.EventName)
		assert.Equal(t, schema.ToolCallEventName, v.Str())
	}
}

func TestPathsAndMethods(t *testing.T) {
	f := newFixture(t, consumertest.NewNop(), fixtureOptions{})
	base := "http://" + f.rcv.addr.String()
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, testBasePath + "/analyze-tool-execution", http.StatusMethodNotAllowed},
		{http.MethodPut, testBasePath + "/validate", http.StatusMethodNotAllowed},
		{http.MethodPost, "/analyze-tool-execution", http.StatusNotFound},
		{http.MethodPost, testBasePath + "/other", http.StatusNotFound},
	} {
		req, err := http.NewRequest(c.method, base+c.path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body := readAll(t, resp)
		assert.Equal(t, c.status, resp.StatusCode, "%s %s", c.method, c.path)
		var got errorBody
		require.NoError(t, json.Unmarshal([]byte(body), &got), body)
		assert.Equal(t, c.status, got.HTTPStatus)
	}
}

func TestRootBasePath(t *testing.T) {
	f := newFixture(t, consumertest.NewNop(), fixtureOptions{configure: func(c *Config) { c.BasePath = "" }})
	c := *f.client
	c.BaseURL = "http://" + f.rcv.addr.String()
	a, err := c.Analyze(context.Background(), webhookclient.Example())
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, a.Status)
}

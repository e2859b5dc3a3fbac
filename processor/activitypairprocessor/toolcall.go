package activitypairprocessor

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// Tool calls (event.name copilotstudio.tool_call: one per call Copilot
// Studio announced to its threat-detection webhook, before the tool ran)
// are not paired: each becomes a record of its own in the same ConsumeLogs
// call, before the turns it completes. Nothing of them is kept: their
// record id is what a consumer drops a repeat by.

// toolCall is a tool-call record of the batch being consumed.
type toolCall struct {
	rec plog.LogRecord
	src pairing.Source
}

// passToolCalls passes the batch's tool calls on, one record each, in one
// call to the next consumer. If it refuses them, the error goes back to the
// receiver with the batch; its rows are buffered already, so a retry of
// the batch brings the tool calls again and the rows as duplicates.
func (p *pairProcessor) passToolCalls(ctx context.Context) error {
	calls := p.calls
	if len(calls) == 0 {
		return nil
	}
	defer func() {
		clear(calls) // hold nothing of this batch
		p.calls = calls[:0]
	}()
	ld := plog.NewLogs()
	rls := ld.ResourceLogs()
	rls.EnsureCapacity(len(calls))
	for _, c := range calls {
		conversation := ""
		if v, ok := c.rec.Attributes().Get(schema.ConversationID); ok {
			conversation = v.Str()
		}
		// One resource per call, with its conversation id, as turns have:
		// a Kafka exporter partitioning by resource keeps a conversation's
		// tool calls and turns together.
		out := newConversationLogs(rls, p.resources.get(c.src), conversation, 1).AppendEmpty()
		p.enc.encodeToolCall(out, c.rec, c.src)
	}
	if err := p.next.ConsumeLogs(ctx, ld); err != nil {
		return fmt.Errorf("passing on tool calls: %w", err)
	}
	p.telemetry.ActivitypairToolCalls.Add(ctx, int64(len(calls)))
	return nil
}

// encodeToolCall passes the receiver's record on as it is.
func (e *otlpEncoder) encodeToolCall(out, in plog.LogRecord, _ pairing.Source) { in.CopyTo(out) }

// toolCallFields is what an Akto tool-call record takes from the receiver's
// record.
type toolCallFields struct {
	recordID, conversation, plan, step, userMessageID  string
	toolID, toolType, toolName, toolKind               string
	arguments, thought, previousOutputs                string
	channel, user, userTenant, crossTenant, clientAddr string
	triggerID, triggerSchema, correlationID, parent    string
}

func readToolCall(in plog.LogRecord) (c toolCallFields) {
	for k, v := range in.Attributes().All() {
		switch k {
		case schema.ToolCallRecordID:
			c.recordID = v.Str()
		case schema.ConversationID:
			c.conversation = v.Str()
		case schema.PlanID:
			c.plan = v.Str()
		case schema.ToolCallID:
			c.step = v.Str()
		case schema.MessageID:
			c.userMessageID = v.Str()
		case schema.ToolID:
			c.toolID = v.Str()
		case schema.ToolType:
			c.toolType = v.Str()
		case schema.ToolName:
			c.toolName = v.Str()
		case schema.ToolKind:
			c.toolKind = v.Str()
		case schema.ToolArguments:
			c.arguments = v.Str()
		case schema.PlannerThought:
			c.thought = v.Str()
		case schema.ToolPreviousOutputs:
			c.previousOutputs = v.Str()
		case schema.ChannelID:
			c.channel = v.Str()
		case schema.UserID:
			c.user = v.Str()
		case schema.UserTenantID:
			c.userTenant = v.Str()
		case schema.UserCrossTenant:
			c.crossTenant = v.AsString()
		case schema.ClientAddress:
			c.clientAddr = v.Str()
		case schema.TriggerID:
			c.triggerID = v.Str()
		case schema.TriggerSchemaName:
			c.triggerSchema = v.Str()
		case schema.WebhookCorrelationID:
			c.correlationID = v.Str()
		case schema.ParentAgentComponentID:
			c.parent = v.Str()
		}
	}
	return c
}

// encodeToolCall writes the Akto record of a tool call: in the agent's
// collection (the same host and tag as its turns), on a path of its own
// (/copilot/conversation/{id}/tool/{step id}, which Akto templates apart
// from the turns' /message/{n}). The request payload holds what Akto's
// guardrails should scan: the user's message (text, where Akto finds the
// prompt), the tool, its proposed arguments, the planner's thought and the
// earlier tools' outputs (what an injected instruction would hide in). The
// response is the observe-mode verdict, {"blockAction":false}. Ids go into
// request headers: the record id (x-akto-message-id), the conversation,
// plan, step and user message, so a consumer can join the call with the
// turn Application Insights or a transcript brings later.
func (e *aktoEncoder) encodeToolCall(out, in plog.LogRecord, src pairing.Source) {
	out.SetTimestamp(in.Timestamp())
	out.SetObservedTimestamp(in.ObservedTimestamp())
	c := readToolCall(in)
	message := ""
	if in.Body().Type() == pcommon.ValueTypeStr {
		message = in.Body().Str()
	}
	at := int64(in.Timestamp())
	if at == 0 {
		at = int64(in.ObservedTimestamp())
	}
	s := e.source(src)

	b := append(e.buf[:0], `{"path":"/copilot/conversation/`...)
	if c.conversation == "" {
		b = append(b, "unknown"...)
	} else {
		b = appendPathSegment(b, c.conversation)
	}
	b = append(b, "/tool/"...)
	if c.step != "" {
		b = appendPathSegment(b, c.step)
	} else {
		b = appendPathSegment(b, c.recordID)
	}
	b = append(b, `","method":"POST","requestHeaders":`...)
	b = append(b, e.headersHead...)
	b = appendNestedContent(b, c.recordID)
	b = append(b, `\"`...)
	for _, h := range [...]struct{ key, value string }{
		{schema.AktoHeaderConversationID, c.conversation},
		{schema.AktoHeaderPlanID, c.plan},
		{schema.AktoHeaderStepID, c.step},
		{schema.AktoHeaderUserMessageID, c.userMessageID},
		{schema.AktoHeaderToolID, c.toolID},
		{schema.AktoHeaderToolType, c.toolType},
		{schema.AktoHeaderToolKind, c.toolKind},
		{schema.AktoHeaderChannel, c.channel},
		{schema.AktoHeaderUserID, c.user},
		{schema.AktoHeaderUserTenantID, c.userTenant},
		{schema.AktoHeaderCrossTenant, c.crossTenant},
		{schema.AktoHeaderTriggerID, c.triggerID},
		{schema.AktoHeaderTriggerSchema, c.triggerSchema},
		{schema.AktoHeaderCorrelationID, c.correlationID},
		{schema.AktoHeaderParentAgentID, c.parent},
	} {
		if h.value != "" {
			b = appendHeader(b, h.key, h.value)
		}
	}
	b = append(b, s.headerTail...)
	b = append(b, `}","responseHeaders":"{\"content-type\":\"application/json\"}","requestPayload":"{\"text\":\"`...)
	b = appendNestedContent(b, message)
	tool := c.toolName
	if tool == "" {
		tool = c.toolID
	}
	b = append(b, `\",\"tool\":\"`...)
	b = appendNestedContent(b, tool)
	b = append(b, `\"`...)
	if c.arguments != "" {
		b = append(b, `,\"arguments\":`...)
		b = e.appendNestedJSON(b, c.arguments)
	}
	if c.thought != "" {
		b = append(b, `,\"thought\":\"`...)
		b = appendNestedContent(b, c.thought)
		b = append(b, `\"`...)
	}
	if c.previousOutputs != "" {
		b = append(b, `,\"previousOutputs\":`...)
		b = e.appendNestedJSON(b, c.previousOutputs)
	}
	b = append(b, `}","responsePayload":"{\"blockAction\":false}","ip":`...)
	if c.clientAddr != "" {
		b = appendJSONString(b, c.clientAddr)
	} else {
		b = append(b, `"`+aktoIPPlaceholder+`"`...)
	}
	b = append(b, `,"time":"`...)
	b = strconv.AppendInt(b, at/int64(time.Second), 10)
	b = append(b, `","statusCode":"200","type":"HTTP/1.1","status":"OK"`...)
	b = e.trailer(b, s)
	b = append(b, '}')
	e.buf = b

	out.Attributes().PutStr(schema.ToolCallRecordID, c.recordID)
	out.Body().SetEmptyBytes().FromRaw(b)
}

// appendNestedJSON appends JSON text as a member value of a JSON document
// that is itself a JSON string (a payload): compacted and escaped once. A
// text that is not JSON goes in as a string.
func (e *aktoEncoder) appendNestedJSON(b []byte, text string) []byte {
	e.traces.compact.Reset()
	if err := compactJSON(&e.traces.compact, text); err != nil {
		b = append(b, `\"`...)
		b = appendNestedContent(b, text)
		return append(b, `\"`...)
	}
	return appendJSONContent(b, unsafeString(e.traces.compact.Bytes()))
}

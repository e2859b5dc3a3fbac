package activitypairprocessor

import (
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// otlpMaxAttributes is how many attributes an OTLP turn record has at most.
const otlpMaxAttributes = 19

var outcomeNames = [pairing.OutcomeCount]string{schema.OutcomePaired, schema.OutcomeRequestOnly, schema.OutcomeResponseOnly, schema.OutcomeFailed}

// otlpEncoder writes the turn as structured attributes.
type otlpEncoder struct {
	ids   textArena
	steps []stepSummary
}

func (e *otlpEncoder) readsText() bool { return false }

func (e *otlpEncoder) encode(rec plog.LogRecord, t *pairing.Turn) {
	c := t.Conversation()
	attrs := rec.Attributes()
	attrs.EnsureCapacity(otlpMaxAttributes)
	attrs.PutStr(schema.EventName, schema.TurnEventName)
	putTurnKeys(attrs, t, &e.ids)
	attrs.PutInt(schema.TurnIndex, int64(t.Index()))
	attrs.PutStr(schema.TurnOutcome, outcomeNames[t.Outcome()])
	attrs.PutStr(schema.TurnTrigger, t.Trigger().String())
	if ch := c.Channel(); ch != "" {
		attrs.PutStr(schema.ChannelID, ch)
	}
	if l := c.Locale(); l != "" {
		attrs.PutStr(schema.Locale, l)
	}
	request := t.Request()
	if r := request; r != nil {
		attrs.PutStr(schema.TurnRequest, r.Text)
		attrs.PutStr(schema.TurnRequestActivityID, r.Activity)
		if r.Detail != "" {
			attrs.PutStr(schema.UserID, r.Detail)
		}
	}
	texts := attrs.PutEmptySlice(schema.TurnResponse)
	ids := attrs.PutEmptySlice(schema.TurnResponseIDs)
	actions := attrs.PutEmptySlice(schema.TurnActions)
	var errorCodes pcommon.Slice
	hasErrors := false
	var first, last, firstReply int64 = t.Row(0).At, t.Row(0).At, 0
	hasSteps := false
	for i := range t.Len() {
		r := t.Row(i)
		last = max(last, r.At)
		switch r.Kind {
		case pairing.KindStepError:
			if code := unpackStep(r.Detail).errorCode; code != "" {
				if !hasErrors {
					errorCodes, hasErrors = attrs.PutEmptySlice(schema.TurnErrorCodes), true
				}
				errorCodes.AppendEmpty().SetStr(code)
			}
			hasSteps = true
		case pairing.KindStep:
			hasSteps = true
		case pairing.KindReply:
			texts.AppendEmpty().SetStr(r.Text)
			ids.AppendEmpty().SetStr(r.Activity)
			if firstReply == 0 {
				firstReply = r.At
			}
		case pairing.KindAction:
			actions.AppendEmpty().SetStr(r.Detail)
		case pairing.KindError:
			if !hasErrors {
				errorCodes, hasErrors = attrs.PutEmptySlice(schema.TurnErrorCodes), true
			}
			errorCodes.AppendEmpty().SetStr(r.Detail)
		}
	}
	topics := attrs.PutEmptySlice(schema.TurnTopics)
	for _, name := range t.Topics(nil) {
		topics.AppendEmpty().SetStr(name)
	}
	attrs.PutInt(schema.TurnDurationMS, (last-first)/int64(time.Millisecond))
	if request != nil && firstReply != 0 {
		attrs.PutInt(schema.TurnFirstReplyMS, (firstReply-request.At)/int64(time.Millisecond))
	}
	if hasSteps {
		e.putSteps(attrs, t)
	}
}

// putSteps writes the turn's plan steps as a slice of maps (schema.TurnSteps).
func (e *otlpEncoder) putSteps(attrs pcommon.Map, t *pairing.Turn) {
	e.steps = collectSteps(e.steps[:0], t, true)
	if len(e.steps) == 0 {
		return
	}
	steps := attrs.PutEmptySlice(schema.TurnSteps)
	steps.EnsureCapacity(len(e.steps))
	for i := range e.steps {
		st := &e.steps[i]
		m := steps.AppendEmpty().SetEmptyMap()
		m.EnsureCapacity(11)
		for _, kv := range [...]struct{ key, value string }{
			{schema.PlanID, st.planID},
			{schema.ToolCallID, st.stepID},
			{schema.ToolID, st.toolID},
			{schema.ToolKind, st.toolKind},
			{schema.StepState, st.state},
			{schema.PlannerThought, st.thought},
			{schema.ToolArguments, st.arguments},
			{schema.ToolResult, st.result},
			{schema.ErrorCode, st.errorCode},
			{schema.ErrorMessage, st.errorMessage},
		} {
			if kv.value != "" {
				m.PutStr(kv.key, kv.value)
			}
		}
		if ms, err := strconv.ParseInt(st.durationMS, 10, 64); err == nil {
			m.PutInt(schema.StepDurationMS, ms)
		}
	}
	clear(e.steps) // hold no strings of these rows
}

package activitypairprocessor

import (
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// inputWindow is how many decoded rows are handed to the core at once: few
// enough to stay in the CPU caches between decoding and adding (see
// internal/pairing/warm.go).
const inputWindow = 16

// add decodes the records of ld and buffers them in the core, a window at
// a time; tool-call records are set aside in p.calls. It returns how many
// rows were duplicates, how many were malformed (a record without item id:
// each is logged, up to a cap per call) and how many had no conversation id
// (rows the telemetry does not tie to a conversation, such as TopicAction:
// logged at debug level). Neither can be paired.
func (p *pairProcessor) add(ld plog.Logs, now int64) (duplicates, malformed, noConversation int) {
	in := p.inputs[:0]
	for _, rl := range ld.ResourceLogs().All() {
		src, srcKnown := pairing.Source(0), false
		for _, sl := range rl.ScopeLogs().All() {
			p.noteScope(rl.Resource(), sl.Scope())
			for _, rec := range sl.LogRecords().All() {
				if len(in) == inputWindow {
					duplicates += p.core.Add(in, now)
					clear(in)
					in = in[:0]
				}
				in = append(in, pairing.Input{})
				e := &in[len(in)-1]
				item := decodeRow(rec, &e.Row, &e.Context)
				if e.Row.Kind == 0 { // a tool call: passed on at once, not paired
					if !srcKnown {
						src, srcKnown = p.resources.of(rl.Resource()), true
					}
					p.calls = append(p.calls, toolCall{rec: rec, src: src})
					in = in[:len(in)-1]
					continue
				}
				if item == "" {
					malformed++
					p.badRows.Warn("Row without item id skipped: it cannot be paired", zap.String("conversation_id", e.Context.Conversation))
					in = in[:len(in)-1]
					continue
				}
				if e.Context.Conversation == "" {
					noConversation++
					p.logger.Debug("Row without conversation id skipped: it cannot be paired", zap.String("item_id", item))
					in = in[:len(in)-1]
					continue
				}
				if !srcKnown {
					src, srcKnown = p.resources.of(rl.Resource()), true
				}
				e.Source = src
			}
		}
	}
	duplicates += p.core.Add(in, now)
	clear(in) // hold no strings of this batch
	p.inputs = in[:0]
	p.core.EndBatch()
	p.badRows.EndRound("More rows without item id skipped")
	return duplicates, malformed, noConversation
}

// decodeRow reads one log record into r and rc (zero) and returns its item
// id as text: a record without it or without a conversation id cannot be
// paired. r is filled in place: a row is 128 bytes, copied at every return.
// A tool-call record is not a row: r.Kind is left 0.
func decodeRow(rec plog.LogRecord, r *pairing.Row, rc *pairing.Context) (item string) {
	var eventName, activityType, userID, topicKind, errorCode, errorMessage string
	// Str is "" for a value that is not a string: such a value counts as
	// absent.
	for k, v := range rec.Attributes().All() {
		switch k {
		case schema.EventName:
			eventName = v.Str()
		case schema.ConversationID:
			rc.Conversation = v.Str()
		case schema.ItemID:
			item = v.Str()
		case schema.ActivityID:
			r.Activity = v.Str()
		case schema.ReplyToActivityID:
			r.ReplyTo = v.Str()
		case schema.ActivityType:
			activityType = v.Str()
		case schema.ChannelID:
			rc.Channel = v.Str()
		case schema.Locale:
			rc.Locale = v.Str()
		case schema.UserID:
			userID = v.Str()
		case schema.TopicName:
			r.Topic = v.Str()
		case schema.TopicKind:
			topicKind = v.Str()
		case schema.ErrorCode:
			errorCode = v.Str()
		case schema.ErrorMessage:
			errorMessage = v.Str()
		}
	}
	if body := rec.Body(); body.Type() == pcommon.ValueTypeStr {
		r.Text = body.Str()
	}

	switch eventName {
	case schema.EventMessageReceived:
		r.Kind = pairing.KindEvent
		// the exact spelling first: it is the one the telemetry uses
		if activityType == "" || activityType == "message" || strings.EqualFold(activityType, "message") {
			r.Kind = pairing.KindRequest
			r.Detail = userID
		}
	case schema.EventMessageSend:
		r.Kind = pairing.KindReply
	case schema.EventTopicAction:
		r.Kind = pairing.KindAction
		r.Detail = topicKind
	case schema.EventOnErrorLog:
		r.Kind = pairing.KindError
		r.Detail = errorCode
		if errorMessage != "" {
			r.Text = errorMessage
		}
	case schema.ToolCallEventName:
		r.Kind = 0 // not a row: passed on at once (toolcall.go)
		return item
	case schema.EventPlanReceived, schema.EventPlanReceivedDebug, schema.EventPlanStepTriggered,
		schema.EventPlanStepBindUpdate, schema.EventPlanStepFinished, schema.EventPluginStepFinished,
		schema.EventPlanFinished, schema.EventUniversalSearch, schema.EventKnowledgeTrace:
		r.Kind = pairing.KindStep
	case schema.EventPlanStepBlocked, schema.EventErrorTrace, schema.EventLegacyErrorCodeKind, schema.EventDynamicServerError:
		r.Kind = pairing.KindStepError
	case schema.EventConversationInfo, schema.EventSessionInfo:
		r.Kind = pairing.KindContext
	default:
		r.Kind = pairing.KindFlow
	}
	if r.Kind != pairing.KindRequest && r.Kind != pairing.KindReply && r.Kind != pairing.KindError {
		text := r.Text
		r.Text = "" // not output: do not hold it
		if r.Kind.IsStep() {
			decodeStep(rec, r, activityType, text)
		}
	}

	r.At = int64(rec.Timestamp())
	observed := int64(rec.ObservedTimestamp())
	if r.At == 0 {
		r.At = observed
	}
	if observed == 0 {
		observed = r.At
	}
	r.SetObserved(observed)
	r.Item = pairing.NewItemID(item)
	return item
}

// decodeStep reads what a plan, step or error row carries (see stepInfo):
// the activity's value becomes the row's Text, the rest is packed into its
// Detail. A step the receiver read as failed or blocked fails its turn.
// Only step rows pay for this second pass over the attributes.
func decodeStep(rec plog.LogRecord, r *pairing.Row, activityType, text string) {
	info := stepInfo{typ: activityType, text: text}
	for k, v := range rec.Attributes().All() {
		switch k {
		case schema.ActivityName:
			info.name = v.Str()
		case schema.ActivityValueType:
			info.valueType = v.Str()
		case schema.ActivityRole:
			info.role = v.Str()
		case schema.ActivityValue:
			r.Text = v.Str()
		case schema.PlanID:
			info.planID = v.Str()
		case schema.ToolCallID:
			info.stepID = v.Str()
		case schema.ToolID:
			info.toolID = v.Str()
		case schema.ToolKind:
			info.toolKind = v.Str()
		case schema.StepState:
			info.state = v.Str()
		case schema.StepDurationMS:
			if v.Type() == pcommon.ValueTypeInt {
				info.durationMS = strconv.FormatInt(v.Int(), 10)
			}
		case schema.ErrorCode:
			info.errorCode = v.Str()
		case schema.ErrorMessage:
			info.errorMessage = v.Str()
		}
	}
	if info.name == "" && info.valueType == "" {
		// a record from elsewhere than the transcripts receiver: its event
		// name is the activity's kind
		info.name = rec.EventName()
		if v, ok := rec.Attributes().Get(schema.EventName); ok {
			info.name = v.Str()
		}
	}
	if info.state == schema.StepStateFailed || info.state == schema.StepStateBlocked {
		r.Kind = pairing.KindStepError
	}
	r.Detail = info.pack()
}

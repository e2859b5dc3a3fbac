package activitypairprocessor

import (
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
// a time. It returns how many rows were duplicates, how many were malformed
// (a record without item id: each is logged, up to a cap per call) and how
// many had no conversation id (rows the telemetry does not tie to a
// conversation, such as TopicAction: logged at debug level). Neither can be
// paired.
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
	default:
		r.Kind = pairing.KindFlow
	}
	if r.Kind != pairing.KindRequest && r.Kind != pairing.KindReply && r.Kind != pairing.KindError {
		r.Text = "" // not output: do not hold it
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

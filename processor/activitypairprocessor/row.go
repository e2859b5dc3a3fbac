package activitypairprocessor

import (
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// rowKind is what a telemetry row is to a turn.
type rowKind uint8

const (
	kindFlow    rowKind = iota + 1 // TopicStart/End, GenerativeAnswers, Agent*, updates, custom events
	kindRequest                    // BotMessageReceived of type message: the user speaks
	kindEvent                      // any other BotMessageReceived (event, invoke, conversationUpdate, ...)
	kindReply                      // BotMessageSend: the agent speaks
	kindAction                     // TopicAction
	kindError                      // OnErrorLog: the turn failed
	kindLimit                      // first invalid value, for decoding stored state
)

// row is one buffered telemetry row, reduced to what pairing and output
// need. Its strings share memory with the incoming log record (pdata does not
// copy on read), so a row costs its header and nothing more.
type row struct {
	// The first 64 bytes hold what ordering and planning read for every
	// row (rows are 128 bytes, two cache lines; planning a conversation
	// mostly touches only the first line of each row).
	at int64 // event time, Unix nanoseconds
	// lagMS is how long after at the row was ingested, in milliseconds
	// (negative when the event's clock ran ahead): 4 bytes where the
	// ingestion time itself would take 8.
	lagMS    int32
	kind     rowKind
	item     itemID // unique per row
	activity string // the activity's own id (request, event, reply)

	replyTo string // reply: the activity id it answers
	text    string // request and reply text; error message
	topic   string // topic name (flow, action, error rows)
	// detail depends on kind: request: the user id; action: the node kind
	// (SendActivity, HttpRequest, ...); error: the error code.
	detail string
}

// observed is the row's ingestion time, Unix nanoseconds, at millisecond
// precision. All completion decisions are made on it, never on event time,
// which a fast clock can put ahead.
func (r *row) observed() int64 { return r.at + int64(r.lagMS)*int64(time.Millisecond) }

// setObserved records the ingestion time; a lag past what 32 bits of
// milliseconds hold (24 days either way) is clamped.
func (r *row) setObserved(observed int64) {
	lag := (observed - r.at) / int64(time.Millisecond)
	r.lagMS = int32(min(max(lag, math.MinInt32), math.MaxInt32))
}

// before orders rows by event time, ties by item id, so that the order is
// the same whatever order the rows arrived in.
func (r *row) before(o *row) bool {
	if r.at != o.at {
		return r.at < o.at
	}
	return r.item.compare(o.item) < 0
}

// rowContext is what a row carries that belongs to its conversation rather
// than to the row itself.
type rowContext struct {
	conversation string
	channel      string
	locale       string
}

// decodeRow reads one log record into r (zero) and returns its item id as
// text too: a record without it or without a conversation id cannot be
// paired. r is filled in place: a row is 128 bytes, copied at every return.
func decodeRow(rec plog.LogRecord, r *row) (c rowContext, item string) {
	var eventName, activityType, userID, topicKind, errorCode, errorMessage string
	// Str is "" for a value that is not a string: such a value counts as
	// absent.
	for k, v := range rec.Attributes().All() {
		switch k {
		case schema.EventName:
			eventName = v.Str()
		case schema.ConversationID:
			c.conversation = v.Str()
		case schema.ItemID:
			item = v.Str()
		case schema.ActivityID:
			r.activity = v.Str()
		case schema.ReplyToActivityID:
			r.replyTo = v.Str()
		case schema.ActivityType:
			activityType = v.Str()
		case schema.ChannelID:
			c.channel = v.Str()
		case schema.Locale:
			c.locale = v.Str()
		case schema.UserID:
			userID = v.Str()
		case schema.TopicName:
			r.topic = v.Str()
		case schema.TopicKind:
			topicKind = v.Str()
		case schema.ErrorCode:
			errorCode = v.Str()
		case schema.ErrorMessage:
			errorMessage = v.Str()
		}
	}
	if body := rec.Body(); body.Type() == pcommon.ValueTypeStr {
		r.text = body.Str()
	}

	switch eventName {
	case schema.EventMessageReceived:
		r.kind = kindEvent
		// the exact spelling first: it is the one the telemetry uses
		if activityType == "" || activityType == "message" || strings.EqualFold(activityType, "message") {
			r.kind = kindRequest
			r.detail = userID
		}
	case schema.EventMessageSend:
		r.kind = kindReply
	case schema.EventTopicAction:
		r.kind = kindAction
		r.detail = topicKind
	case schema.EventOnErrorLog:
		r.kind = kindError
		r.detail = errorCode
		if errorMessage != "" {
			r.text = errorMessage
		}
	default:
		r.kind = kindFlow
	}
	if r.kind != kindRequest && r.kind != kindReply && r.kind != kindError {
		r.text = "" // not output: do not hold it
	}

	r.at = int64(rec.Timestamp())
	observed := int64(rec.ObservedTimestamp())
	if r.at == 0 {
		r.at = observed
	}
	if observed == 0 {
		observed = r.at
	}
	r.setObserved(observed)
	r.item = newItemID(item)
	return c, item
}

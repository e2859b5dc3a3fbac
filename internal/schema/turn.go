package schema

// Resource and record attributes of the turns the activitypair processor emits.
// A turn is one user message and the agent's replies to it.
const (
	// TurnID is stable for the same rows on every run, so a consumer can drop
	// a turn the Kafka path repeated after a crash.
	TurnID       = "copilotstudio.turn.id"
	TurnIndex    = "copilotstudio.turn.index"
	TurnOutcome  = "copilotstudio.turn.outcome"
	TurnRequest  = "copilotstudio.turn.request.text"
	TurnResponse = "copilotstudio.turn.response.texts" // slice, in send order
	TurnTopics   = "copilotstudio.turn.topics"         // slice
	TurnActions  = "copilotstudio.turn.actions"        // slice
	TurnItemIDs  = "copilotstudio.turn.item_ids"       // slice: every row the turn holds
)

// Values of TurnOutcome.
const (
	OutcomePaired       = "paired"
	OutcomeRequestOnly  = "request_only"
	OutcomeResponseOnly = "response_only"
	OutcomeFailed       = "failed"
)

// The event name and further attributes of a turn record in the otlp format.
// The record also carries the row keys ChannelID, Locale and UserID of its
// request.
const (
	TurnEventName         = "copilotstudio.turn"                       // event.name of a turn record
	TurnRequestActivityID = "copilotstudio.turn.request.activity_id"   // the user message's activity id
	TurnResponseIDs       = "copilotstudio.turn.response.activity_ids" // slice, parallel to TurnResponse
	TurnErrorCodes        = "copilotstudio.turn.error_codes"           // slice: OnErrorLog codes
	TurnDurationMS        = "copilotstudio.turn.duration_ms"           // int: first row to last row, event time
	TurnFirstReplyMS      = "copilotstudio.turn.first_reply_ms"        // int: request to first reply, event time
	TurnTrigger           = "copilotstudio.turn.trigger"               // complete, timeout, evicted, shutdown
)

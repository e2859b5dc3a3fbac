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

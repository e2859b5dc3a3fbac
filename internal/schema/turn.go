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

// TurnSteps (format otlp) is a turn's plan steps, in the order they were
// triggered: a slice of maps, each with the keys PlanID, ToolCallID (the step
// id), ToolID, ToolKind, StepState (triggered when it never finished),
// PlannerThought, ToolArguments, ToolResult, StepDurationMS, ErrorCode and
// ErrorMessage, each where known.
const TurnSteps = "copilotstudio.turn.steps"

// The Akto traffic record (format akto; shared/reference/akto-traffic-format.md).
// Akto files a record in the collection <bot-name>.<host>: the tag holds only
// what is constant per agent, everything per turn goes into request headers.
const (
	AktoDefaultHost    = "copilot.microsoft.com" // where Akto's own connector puts Copilot Studio agents
	AktoTagSourceValue = "COPILOT_STUDIO"        // tag source: the collection is a Copilot Studio agent
	AktoGenAIValue     = "Gen AI"                // tag gen-ai: Akto also keeps agent query records

	// Tag keys Akto reads.
	AktoTagSource          = "source"
	AktoTagBotName         = "bot-name" // the agent's name, sanitised as Akto spells it
	AktoTagGenAI           = "gen-ai"
	AktoTagBotID           = "bot-id"
	AktoTagSchemaName      = "bot-schemaname" // exactly as Dataverse has it
	AktoTagEnvironmentID   = "bot-environment-id"
	AktoTagAuthMode        = "bot-authentication-mode"
	AktoTagUnauthenticated = "unauthenticated"
	// AktoTagPublishedState is set only for a published agent: Akto treats
	// the key's presence as "published".
	AktoTagPublishedState = "bot-published-state"

	// AktoHeaderMessageID is the record's stable id (a turn id, a tool call's
	// record id): Akto names its agent query records by it, and a consumer
	// drops repeats by it.
	AktoHeaderMessageID = "x-akto-message-id"
	// AktoHeaderPrefix is the prefix of every other per-record request header.
	AktoHeaderPrefix = "x-copilotstudio-"

	AktoHeaderConversationID = AktoHeaderPrefix + "conversation-id"
	AktoHeaderTurnIndex      = AktoHeaderPrefix + "turn-index"  // {n} of the path
	AktoHeaderActivityID     = AktoHeaderPrefix + "activity-id" // the user message's activity id
	AktoHeaderChannel        = AktoHeaderPrefix + "channel"
	AktoHeaderLocale         = AktoHeaderPrefix + "locale"
	AktoHeaderUserID         = AktoHeaderPrefix + "user-id"
	AktoHeaderAppID          = AktoHeaderPrefix + "app-id"      // the Application Insights app the rows came from
	AktoHeaderTopics         = AktoHeaderPrefix + "topics"      // topic names, comma-separated
	AktoHeaderErrorCodes     = AktoHeaderPrefix + "error-codes" // comma-separated
	// AktoHeaderToolCalls lists the turn's tool calls, "<tool id>=<state>"
	// joined by ", ", in the order they were triggered.
	AktoHeaderToolCalls = AktoHeaderPrefix + "tool-calls"

	// Headers of a tool-call record (besides conversation id, channel and
	// user id above).
	AktoHeaderPlanID        = AktoHeaderPrefix + "plan-id"
	AktoHeaderStepID        = AktoHeaderPrefix + "step-id"
	AktoHeaderUserMessageID = AktoHeaderPrefix + "user-message-id" // the user message's id, when Copilot Studio sends it
	AktoHeaderToolID        = AktoHeaderPrefix + "tool-id"
	AktoHeaderToolType      = AktoHeaderPrefix + "tool-type"
	AktoHeaderToolKind      = AktoHeaderPrefix + "tool-kind"
	AktoHeaderUserTenantID  = AktoHeaderPrefix + "user-tenant-id"
	AktoHeaderCrossTenant   = AktoHeaderPrefix + "cross-tenant"
	AktoHeaderTriggerID     = AktoHeaderPrefix + "trigger-id"
	AktoHeaderTriggerSchema = AktoHeaderPrefix + "trigger-schema-name"
	AktoHeaderCorrelationID = AktoHeaderPrefix + "correlation-id"
	AktoHeaderParentAgentID = AktoHeaderPrefix + "parent-agent-component-id"
	AktoHeaderAgentVersion  = AktoHeaderPrefix + "agent-version"
	AktoHeaderAgentTenantID = AktoHeaderPrefix + "agent-tenant-id"
)

// Package schema is the one place that names what the copilotstudio receiver
// writes and the activitypair processor reads and writes: event names,
// attribute keys and their fixed values. Both components import it, so a
// rename here is a rename everywhere.
//
// OpenTelemetry semantic conventions are used where one exists; everything
// specific to Copilot Studio lives under the copilotstudio.* namespace.
package schema

// Event names Copilot Studio writes to the customEvents table (column "name").
const (
	EventMessageReceived = "BotMessageReceived" // user -> agent
	EventMessageSend     = "BotMessageSend"     // agent -> user
	EventMessageUpdate   = "BotMessageUpdate"
	EventMessageDelete   = "BotMessageDelete"
	EventTopicStart      = "TopicStart"
	EventTopicEnd        = "TopicEnd"
	EventTopicAction     = "TopicAction"
	EventGenerative      = "GenerativeAnswers"
	EventOnErrorLog      = "OnErrorLog"
	EventAgentStarted    = "AgentStarted"
	EventAgentCompleted  = "AgentCompleted"
)

// MessageEvents are the conversation's messages; FlowEvents are what the agent
// did in between. Together they are the receiver's default event filter.
var (
	MessageEvents = []string{EventMessageReceived, EventMessageSend, EventMessageUpdate, EventMessageDelete}
	FlowEvents    = []string{EventTopicStart, EventTopicEnd, EventTopicAction, EventGenerative, EventOnErrorLog, EventAgentStarted, EventAgentCompleted}
)

// Resource attributes set by the receiver.
const (
	// AppInsightsAppID is the Application Insights application the rows came from.
	AppInsightsAppID = "copilotstudio.appinsights.app_id"
	// AgentName (semconv gen_ai.agent.name) is the agent: cloud_RoleInstance.
	// It is on the resource and repeated on each record.
	AgentName = "gen_ai.agent.name"
)

// Log record attributes set by the receiver, one record per telemetry row.
const (
	EventName      = "event.name"             // semconv; the row's "name" column
	ConversationID = "gen_ai.conversation.id" // semconv; customDimensions.conversationId
	UserID         = "user.id"                // semconv; customDimensions.fromId
	UserName       = "user.name"              // semconv; customDimensions.fromName (sensitive logging only)
	// UserTenantID is the tenant of the user talking to the agent: a
	// transcript's channelData.tenant.id (else metadata.AADTenantId), a tool
	// call's conversationMetadata.user.tenantId.
	UserTenantID = "copilotstudio.user.tenant_id"

	ItemID            = "copilotstudio.item_id"              // the row's itemId: unique per row
	ActivityID        = "copilotstudio.activity.id"          // customDimensions.activityId
	ReplyToActivityID = "copilotstudio.activity.reply_to_id" // customDimensions.replyActivityId
	ActivityType      = "copilotstudio.activity.type"        // message, event, invoke, conversationUpdate, ...
	ActivityName      = "copilotstudio.activity.name"        // name of an event or invoke, e.g. signin/tokenExchange
	ActivityValue     = "copilotstudio.activity.value"       // value of an event or invoke, as JSON text
	ChannelID         = "copilotstudio.channel.id"           // msteams, webchat, directline, pva-studio, ...
	DesignMode        = "copilotstudio.design_mode"          // bool; designMode or DesignMode
	Locale            = "copilotstudio.locale"
	RecipientID       = "copilotstudio.recipient.id"
	RecipientName     = "copilotstudio.recipient.name"
	TopicName         = "copilotstudio.topic.name" // TopicName, fully qualified
	TopicKind         = "copilotstudio.topic.kind" // TopicAction Kind: SendActivity, HttpRequest, ...
	ErrorCode         = "copilotstudio.error.code"
	ErrorMessage      = "copilotstudio.error.message"

	// DimensionPrefix holds the customDimensions keys that have no better home
	// above, one string attribute each: copilotstudio.dimensions.<key>.
	DimensionPrefix = "copilotstudio.dimensions."
)

// ActivityTypes are the Bot Framework activity types a message row's `type`
// may hold; the receiver counts a message row with any other type as
// malformed. Compared case-insensitively.
var ActivityTypes = []string{
	"message", "event", "invoke", "invokeResponse", "installationUpdate", "messageReaction",
	"conversationUpdate", "typing", "endOfConversation", "handoff", "trace", "command",
	"commandResult", "messageUpdate", "messageDelete", "deleteUserData",
	"contactRelationUpdate", "suggestion",
}

// Scope attributes the polling receivers (Application Insights, transcripts)
// put on every batch, so that a stateful stage downstream can keep what a
// re-read needs and check its settings against the source's.
const (
	// ReplayFrom (int, Unix nanoseconds) is the earliest observed time
	// (ingestion time, or a transcript's createdon) of a row the receiver
	// may deliver again: after a refused batch or a crash it reads again from
	// there. The processor keeps the ids of emitted rows at least until
	// ReplayFrom has passed them, so a re-read never emits a turn twice.
	ReplayFrom = "copilotstudio.replay_from"
	// PollInterval (int, nanoseconds) is the receiver's poll_interval: a
	// reply can arrive one poll after its message.
	PollInterval = "copilotstudio.poll_interval"
)

package schema

// The record of one tool call Copilot Studio announced to its external threat
// detection webhook (analyze-tool-execution), before the tool ran. The
// threat-detection receiver writes one per call. Besides the names below it
// carries the shared ones: ConversationID, PlanID, ToolCallID (the plan step),
// ToolID, ToolType, ToolName, ToolKind, ToolArguments (the proposed input
// values), PlannerThought, ChannelID, UserID, AgentName, AgentID,
// AgentEnvironmentID and AgentPublishedState. Its body is the user's message.
const (
	// ToolCallEventName is the event.name of a tool-call record.
	ToolCallEventName = "copilotstudio.tool_call"

	// ToolCallRecordID is the same every time the same call is recorded (a
	// hash of conversation, plan and step ids), so a consumer can drop a
	// record the Kafka path repeated after a crash.
	ToolCallRecordID = "copilotstudio.tool_call.record_id"

	ToolDescription     = "gen_ai.tool.description"             // semconv; toolDefinition.description
	ToolPreviousOutputs = "copilotstudio.tool.previous_outputs" // JSON text: earlier tool outputs of the turn, as sent
	ChatHistory         = "copilotstudio.chat_history"          // JSON text: the recent messages, newest first, as sent

	AgentTenantID = "copilotstudio.agent.tenant_id" // the tenant the agent lives in
	AgentVersion  = "copilotstudio.agent.version"
	// UserCrossTenant is true when the user's tenant is not the agent's: a
	// multitenant agent answering someone from another organisation.
	UserCrossTenant = "copilotstudio.user.cross_tenant"

	ClientAddress = "client.address" // semconv; incomingClientIp, IPv4-mapped IPv6 unmapped

	TriggerID         = "copilotstudio.trigger.id"
	TriggerSchemaName = "copilotstudio.trigger.schema_name"

	MessageID              = "copilotstudio.message.id"                // messageId, when sent
	ParentAgentComponentID = "copilotstudio.parent_agent_component.id" // parentAgentComponentId

	WebhookAPIVersion    = "copilotstudio.webhook.api_version"    // the call's api-version query value
	WebhookCorrelationID = "copilotstudio.webhook.correlation_id" // the x-ms-correlation-id header
)

package schema

// Attributes describing the agent itself, read from its Dataverse environment
// (the bots table). The receiver puts them on the resource of an agent's rows;
// the processor carries them onto each turn and into the Akto tag.
const (
	AgentID                 = "copilotstudio.agent.id"                  // bots.botid
	AgentSchemaName         = "copilotstudio.agent.schema_name"         // bots.schemaname, e.g. cr44e_hrAgent
	AgentEnvironmentID      = "copilotstudio.agent.environment_id"      // the Power Platform environment
	AgentAuthenticationMode = "copilotstudio.agent.authentication_mode" // AuthNone, AuthEntraID, AuthManual, AuthUnspecified
	AgentPublishedState     = "copilotstudio.agent.published_state"     // PublishedState values
	// AgentUnauthenticated is true when anyone who knows the agent's id can
	// talk to it: the first thing a security analyst wants to filter on.
	AgentUnauthenticated = "copilotstudio.agent.unauthenticated"
)

// Values of AgentAuthenticationMode.
const (
	AuthNone        = "none"
	AuthEntraID     = "microsoft_entra_id"
	AuthManual      = "manual"
	AuthUnspecified = "unspecified"
)

// Values of AgentPublishedState.
const (
	PublishedStatePublished   = "published"
	PublishedStateUnpublished = "unpublished"
	PublishedStateInactive    = "inactive"
)

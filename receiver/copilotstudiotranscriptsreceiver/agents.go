package copilotstudiotranscriptsreceiver

import (
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/dataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiotranscriptsreceiver/internal/transcript"
)

// agentIndex is the agents list by bot id (what a transcript's lookup
// column holds) and by schema name (what agents may list).
type agentIndex struct {
	mu       sync.RWMutex
	byID     map[string]dataverse.Agent
	bySchema map[string]dataverse.Agent
	loaded   bool
}

func (x *agentIndex) replace(agents []dataverse.Agent) {
	byID := make(map[string]dataverse.Agent, len(agents))
	bySchema := make(map[string]dataverse.Agent, len(agents))
	for _, a := range agents {
		byID[strings.ToLower(a.ID)] = a
		if a.SchemaName != "" {
			bySchema[strings.ToLower(a.SchemaName)] = a
		}
	}
	x.mu.Lock()
	x.byID, x.bySchema, x.loaded = byID, bySchema, true
	x.mu.Unlock()
}

func (x *agentIndex) isLoaded() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.loaded
}

func (x *agentIndex) bySchemaName(name string) (dataverse.Agent, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	a, ok := x.bySchema[strings.ToLower(name)]
	return a, ok
}

// resource writes an agent's resource attributes, as the copilotstudio
// receiver's Dataverse enrichment does, and returns the agent's name. An
// agent the list does not know is named by the transcript's metadata
// (BotName, its schema name in current content), else by its id.
func (x *agentIndex) resource(res pcommon.Map, agentID, metaBotName, environment string) (name string, known bool) {
	x.mu.RLock()
	a, known := x.byID[agentID]
	x.mu.RUnlock()
	res.PutStr(schema.Source, schema.SourceTranscripts)
	res.PutStr(schema.DataverseURL, environment)
	switch {
	case known && a.Name != "":
		name = a.Name
	case metaBotName != "":
		name = metaBotName
	default:
		name = agentID
	}
	res.PutStr(schema.AgentName, name)
	if agentID != "" {
		res.PutStr(schema.AgentID, agentID)
	}
	if known {
		res.PutStr(schema.AgentSchemaName, a.SchemaName)
		res.PutStr(schema.AgentEnvironmentID, a.EnvironmentID)
		res.PutStr(schema.AgentAuthenticationMode, a.AuthenticationMode)
		res.PutStr(schema.AgentPublishedState, a.PublishedState)
		res.PutBool(schema.AgentUnauthenticated, a.Unauthenticated())
	}
	return name, known
}

// conversations keeps the state of the latest conversations read, for
// their next pieces; the oldest is forgotten first.
type conversations struct {
	max   int
	byKey map[string]*transcript.Conversation
	order []string
}

func newConversations(max int) conversations {
	return conversations{max: max, byKey: map[string]*transcript.Conversation{}}
}

func (c *conversations) get(name string) *transcript.Conversation {
	if conv, ok := c.byKey[name]; ok {
		return conv
	}
	if len(c.order) >= c.max {
		delete(c.byKey, c.order[0])
		c.order = c.order[1:]
	}
	conv := transcript.NewConversation()
	c.byKey[name] = conv
	c.order = append(c.order, name)
	return conv
}

package copilotstudiotranscriptsreceiver

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/dataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiotranscriptsreceiver/internal/transcript"
)

// agentResource writes an agent's resource attributes, as the copilotstudio
// receiver's Dataverse enrichment does, and returns the agent's name. An
// agent the list does not know is named by the transcript's metadata
// (BotName, its schema name in current content), else by its id.
func agentResource(agents *dataverse.Directory, res pcommon.Map, agentID, metaBotName, environment string) (name string, known bool) {
	a, known := agents.ByID(agentID)
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
	if known {
		a.PutResource(res)
	} else if agentID != "" {
		res.PutStr(schema.AgentID, agentID)
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

package activitypairprocessor

import (
	"strings"
	"unicode"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// resource is one distinct source resource (an agent in an Application
// Insights app), shared by all its conversations, with what the output
// needs from it worked out once.
type resource struct {
	attrs   pcommon.Map // a copy of the source resource's attributes
	botName string      // agent name, sanitised as Akto spells hosts and tags
	// aktoHeaders (a JSON string holding the request headers) and
	// aktoTagTail (the agent's members of the tag, escaped for inside the
	// tag string) are the parts of an Akto record that depend only on the
	// agent, written once.
	aktoHeaders string
	aktoTagTail string
}

// aktoTagKeys are the agent attributes (from Dataverse, when the receiver
// has them) repeated in the Akto tag, under the tag's own key names. Names
// are sanitised as Akto spells bot-name.
var aktoTagKeys = []struct {
	attr, tag string
	sanitise  bool
}{
	{schema.AppInsightsAppID, "app-id", false},
	{schema.AgentID, "bot-id", false},
	{schema.AgentSchemaName, "bot-schemaname", true},
	{schema.AgentEnvironmentID, "bot-environment-id", false},
	{schema.AgentPublishedState, "bot-published-state", false},
	{schema.AgentAuthenticationMode, "bot-authentication-mode", false},
	{schema.AgentUnauthenticated, "unauthenticated", false},
}

// resourceOf interns the resource of a ResourceLogs.
func (s *state) resourceOf(r pcommon.Resource) *resource {
	var key []byte
	for k, v := range r.Attributes().All() {
		key = append(key, k...)
		key = append(key, 0, byte(v.Type()))
		key = append(key, v.AsString()...)
		key = append(key, 0)
	}
	if res, ok := s.resources[string(key)]; ok {
		return res
	}
	attrs := pcommon.NewMap()
	r.Attributes().CopyTo(attrs)
	res := newResource(attrs)
	s.resources[string(key)] = res
	return res
}

func newResource(attrs pcommon.Map) *resource {
	res := &resource{attrs: attrs}
	if v, ok := attrs.Get(schema.AgentName); ok {
		res.botName = sanitizeAgentName(v.AsString())
	}
	var b []byte
	b = append(b, `{"host":`...)
	b = appendJSONString(b, res.botName+".copilot-studio")
	b = append(b, `,"content-type":"application/json"}`...)
	res.aktoHeaders = string(appendJSONString(nil, string(b)))

	b = b[:0]
	for _, k := range aktoTagKeys {
		if v, ok := attrs.Get(k.attr); ok && v.AsString() != "" {
			value := v.AsString()
			if k.sanitise {
				value = sanitizeAgentName(value)
			}
			b = append(b, ',')
			b = appendJSONString(b, k.tag)
			b = append(b, ':')
			b = appendJSONString(b, value)
		}
	}
	res.aktoTagTail = string(appendJSONContent(nil, string(b)))
	return res
}

// sanitizeAgentName spells an agent name as Akto's hosts and tags do: every
// character that is not a letter or a digit becomes '-', runs of '-'
// collapse, leading and trailing '-' go, and the result is lower-cased.
func sanitizeAgentName(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			dash = true
			continue
		}
		if dash && b.Len() > 0 {
			b.WriteByte('-')
		}
		dash = false
		b.WriteRune(r)
	}
	return b.String()
}

// Package aktocheck is the acceptance check of what reaches Akto: it applies
// the filing rules of shared/reference/akto-traffic-format.md to every
// traffic record a test produces and reports each record that Akto would
// file wrongly, or read wrongly.
//
// Per record:
//   - the record is a JSON object whose every field is a string, with the
//     fields the reference lists; requestHeaders, responseHeaders and tag
//     hold JSON objects of strings; _traces, when present, a JSON array;
//   - source MIRRORING, method POST, a numeric time and statusCode;
//   - the path is /copilot/conversation/{id}/message/{n} (a turn) or
//     /copilot/conversation/{id}/tool/{step} (a tool call), with no segment
//     a resolver would read as "." or "..";
//   - the host is the configured one (the collection is <bot-name>.<host>,
//     Akto adds the bot name itself) and x-akto-message-id is set;
//   - the tag says source COPILOT_STUDIO, gen-ai, and a bot-name spelled as
//     Akto sanitises names, and holds nothing but keys constant per agent;
//     bot-published-state only with the value "published", and exactly for
//     the agents the test says are published; each turn of an agent
//     Dataverse knows carries its identity (bot-id, bot-schemaname exactly,
//     environment, authentication mode, unauthenticated);
//   - the payloads hold what was said: Akto's rules find the prompt in a
//     request payload that is not empty, and the answer in a turn's
//     response payload that is not empty; no ids or metadata in them.
//
// Across records:
//   - each agent (by bot-id, else bot-name) maps to exactly one collection;
//   - no tag key takes two values in one collection, and a collection has at
//     most Options.TagSetsPerAgent distinct tags: its tag list does not grow
//     with the number of turns.
package aktocheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// Agent is one agent the records belong to, as the test knows it.
type Agent struct {
	// Name is the agent's display name, as Copilot Studio has it.
	Name string
	// Published agents carry bot-published-state; no other agent may.
	Published bool
	// Identified agents are known to Dataverse: every turn of theirs
	// carries bot-id, bot-schemaname, bot-environment-id,
	// bot-authentication-mode and unauthenticated. (A tool-call record
	// carries what the webhook says of the agent.)
	Identified bool
	// SchemaName, when set, is what bot-schemaname must be, exactly.
	SchemaName string
}

// Options say what the records are checked against.
type Options struct {
	// Host is the request header host every record must carry; empty means
	// schema.AktoDefaultHost.
	Host string
	// Agents, when set, are every agent a record may belong to: a record
	// of another agent is a violation, and Published and Identified are
	// checked. Without them, bot-published-state may only say "published".
	Agents []Agent
	// TagSetsPerAgent is how many different tags a collection may carry,
	// one per source that knows the agent differently (a tool-call record
	// from the webhook knows less of an agent than a turn enriched from
	// Dataverse); 0 means 1.
	TagSetsPerAgent int
}

// Violation is one broken rule.
type Violation struct {
	Record int    // index of the record; -1 for a rule across records
	Rule   string // which rule, a short name
	Detail string
}

func (v Violation) String() string {
	if v.Record < 0 {
		return fmt.Sprintf("%s: %s", v.Rule, v.Detail)
	}
	return fmt.Sprintf("record %d: %s: %s", v.Record, v.Rule, v.Detail)
}

// maxReported bounds what Err lists.
const maxReported = 20

// Err is nil without violations, else an error listing them (the first
// few, and how many there are).
func Err(vs []Violation) error {
	if len(vs) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d violations of Akto's filing rules:", len(vs))
	for i, v := range vs {
		if i == maxReported {
			fmt.Fprintf(&b, "\n  ... %d more", len(vs)-i)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	return errors.New(b.String())
}

// Records checks records and returns the error Err makes of the violations.
func Records(records [][]byte, opts Options) error { return Err(Check(records, opts)) }

// requiredFields are the fields of a traffic record.
var requiredFields = []string{
	"path", "method", "requestHeaders", "responseHeaders", "requestPayload", "responsePayload",
	"ip", "time", "statusCode", "type", "status", "akto_account_id", "akto_vxlan_id", "is_pending", "source", "tag",
}

// agentTagKeys are the tag keys whose values are constant per agent (the
// ingestion service adds mode). Any other key is per record, or unknown.
var agentTagKeys = []string{
	schema.AktoTagSource, schema.AktoTagBotName, schema.AktoTagGenAI, schema.AktoTagBotID, schema.AktoTagSchemaName,
	schema.AktoTagEnvironmentID, schema.AktoTagAuthMode, schema.AktoTagUnauthenticated, schema.AktoTagPublishedState,
	"ai-agent", "saas-agent", "mode",
}

// identityTagKeys are what an agent Dataverse knows carries.
var identityTagKeys = []string{
	schema.AktoTagBotID, schema.AktoTagSchemaName, schema.AktoTagEnvironmentID, schema.AktoTagAuthMode, schema.AktoTagUnauthenticated,
}

// Where Akto's UI finds the prompt (arrays first) and the answer.
var (
	promptArrayKeys = []string{"messages", "input"}
	promptKeys      = []string{"prompt", "message", "text", "body"}
	answerKeys      = []string{"choices", "output", "content", "body", "text", "message"}
)

// metadataKeys are ids and metadata that must not be in a payload, where
// guardrails would scan them as if someone had typed them.
var metadataKeys = []string{"activityId", "channelId", "locale", "userId", "conversationId", "fromId", "turnId", "channel", "user"}

// Check applies the rules to records and returns every violation, those of
// each record in record order, then those across records.
func Check(records [][]byte, opts Options) []Violation {
	host := opts.Host
	if host == "" {
		host = schema.AktoDefaultHost
	}
	c := &checker{opts: opts, host: strings.ToLower(host), collections: map[string]*collection{}, agentCollections: map[string]map[string]bool{}}
	for i, r := range records {
		c.record(i, r)
	}
	c.across()
	return c.out
}

type checker struct {
	opts             Options
	host             string
	out              []Violation
	collections      map[string]*collection     // by name
	agentCollections map[string]map[string]bool // agent key -> collections
}

type collection struct {
	first   int                        // first record filed there
	values  map[string]map[string]bool // tag key -> values
	tagSets map[string]bool
}

func (c *checker) fail(record int, rule, format string, args ...any) {
	c.out = append(c.out, Violation{Record: record, Rule: rule, Detail: fmt.Sprintf(format, args...)})
}

func (c *checker) record(i int, raw []byte) {
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		c.fail(i, "json", "not a JSON object: %v", err)
		return
	}
	str := map[string]string{}
	for k, v := range fields {
		s, ok := v.(string)
		if !ok {
			c.fail(i, "field-type", "%s is %T, not a string", k, v)
			continue
		}
		str[k] = s
	}
	for _, k := range requiredFields {
		if _, ok := fields[k]; !ok {
			c.fail(i, "field-missing", "no %s", k)
		}
	}
	for k, want := range map[string]string{"source": "MIRRORING", "method": "POST", "is_pending": "false"} {
		if v, ok := str[k]; ok && v != want {
			c.fail(i, "field-value", "%s %q, want %q", k, v, want)
		}
	}
	for _, k := range []string{"time", "statusCode"} {
		if v, ok := str[k]; ok && !digits(v) {
			c.fail(i, "field-value", "%s %q is not a number", k, v)
		}
	}
	isTurn := c.path(i, str["path"])

	headers := c.objectOfStrings(i, "requestHeaders", str["requestHeaders"])
	c.objectOfStrings(i, "responseHeaders", str["responseHeaders"])
	tag := c.objectOfStrings(i, "tag", str["tag"])
	if traces, ok := str["_traces"]; ok {
		var arr []any
		if err := json.Unmarshal([]byte(traces), &arr); err != nil {
			c.fail(i, "traces-array", "_traces is not a JSON array: %v", err)
		}
	}

	if headers != nil {
		if h := headers["host"]; h != c.host {
			c.fail(i, "host", "host %q, want %q (Akto files the record in <bot-name>.<host>)", h, c.host)
		}
		if headers[schema.AktoHeaderMessageID] == "" {
			c.fail(i, "message-id", "no %s request header", schema.AktoHeaderMessageID)
		}
	}
	c.payloads(i, str["requestPayload"], str["responsePayload"], isTurn)
	if tag != nil {
		c.tag(i, tag, isTurn)
	}
}

// path checks the path and reports whether it is a turn's.
func (c *checker) path(i int, path string) (turn bool) {
	rest, ok := strings.CutPrefix(path, "/copilot/conversation/")
	segs := strings.Split(rest, "/")
	if !ok || len(segs) != 3 || segs[0] == "" || segs[2] == "" || (segs[1] != "message" && segs[1] != "tool") {
		c.fail(i, "path", "path %q is not /copilot/conversation/{id}/message/{n} or .../tool/{step}", path)
		return false
	}
	for _, s := range segs {
		if s == "." || s == ".." {
			c.fail(i, "path", "path %q has a %q segment: a resolver reads it as a relative step", path, s)
		}
	}
	if segs[1] == "message" && !digits(segs[2]) {
		c.fail(i, "path", "path %q: the turn index %q is not a number", path, segs[2])
	}
	return segs[1] == "message"
}

// objectOfStrings parses a field that must hold a JSON object of strings.
func (c *checker) objectOfStrings(i int, field, text string) map[string]string {
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil || m == nil {
		c.fail(i, "json-object", "%s is not a JSON object: %.80q", field, text)
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			c.fail(i, "json-object", "%s: %s is %T, not a string", field, k, v)
			continue
		}
		out[k] = s
	}
	return out
}

func (c *checker) payloads(i int, request, response string, turn bool) {
	if request != "" {
		obj := c.payloadObject(i, "requestPayload", request)
		if obj != nil && !foundPrompt(obj) {
			c.fail(i, "prompt", "Akto finds no prompt (messages/input arrays, prompt, message, text, body) in %.120q", request)
		}
	}
	if response != "" {
		obj := c.payloadObject(i, "responsePayload", response)
		if obj != nil && turn && !foundAnswer(obj) {
			c.fail(i, "answer", "Akto finds no answer (choices, output, content, body, text, message) in %.120q", response)
		}
	}
}

func (c *checker) payloadObject(i int, field, text string) map[string]any {
	var obj map[string]any
	if err := json.Unmarshal([]byte(text), &obj); err != nil || obj == nil {
		c.fail(i, "payload", "%s is not a JSON object: %.80q", field, text)
		return nil
	}
	check := func(where string, m map[string]any) {
		for _, k := range metadataKeys {
			if _, ok := m[k]; ok {
				c.fail(i, "payload-metadata", "%s holds %s%s: guardrails would scan it as if typed", field, where, k)
			}
		}
	}
	check("", obj)
	if msgs, ok := obj["messages"].([]any); ok {
		for _, m := range msgs {
			if m, ok := m.(map[string]any); ok {
				check("messages[].", m)
			}
		}
	}
	return obj
}

func foundPrompt(obj map[string]any) bool {
	for _, k := range promptArrayKeys {
		if _, ok := obj[k].([]any); ok {
			return true
		}
	}
	for _, k := range promptKeys {
		if _, ok := obj[k].(string); ok {
			return true
		}
	}
	return false
}

func foundAnswer(obj map[string]any) bool {
	for _, k := range answerKeys {
		if v, ok := obj[k]; ok && v != nil {
			return true
		}
	}
	return false
}

func (c *checker) tag(i int, tag map[string]string, turn bool) {
	if tag[schema.AktoTagSource] != schema.AktoTagSourceValue {
		c.fail(i, "tag", "source %q, want %s", tag[schema.AktoTagSource], schema.AktoTagSourceValue)
	}
	if _, ok := tag[schema.AktoTagGenAI]; !ok {
		c.fail(i, "tag", "no gen-ai: Akto keeps no agent query records without it")
	}
	for k := range tag {
		if !slices.Contains(agentTagKeys, k) {
			c.fail(i, "tag-per-record", "tag key %q is not constant per agent: each value would grow the collection's tag list", k)
		}
	}
	bot := tag[schema.AktoTagBotName]
	if bot == "" || Sanitize(bot) != bot {
		c.fail(i, "bot-name", "bot-name %q is not spelled as Akto sanitises it (%q)", bot, Sanitize(bot))
	}
	if v, ok := tag[schema.AktoTagPublishedState]; ok && v != schema.PublishedStatePublished {
		c.fail(i, "published", "bot-published-state %q: Akto reads the key's presence as published", v)
	}

	if len(c.opts.Agents) > 0 {
		agent := c.agentOf(bot)
		if agent == nil {
			c.fail(i, "agent", "bot-name %q is none of the agents %v", bot, agentNames(c.opts.Agents))
		} else {
			_, published := tag[schema.AktoTagPublishedState]
			if published != agent.Published {
				c.fail(i, "published", "agent %q: bot-published-state present %t, want %t", agent.Name, published, agent.Published)
			}
			if agent.Identified && turn {
				for _, k := range identityTagKeys {
					if tag[k] == "" {
						c.fail(i, "identity", "agent %q is known to Dataverse, but the tag has no %s", agent.Name, k)
					}
				}
			}
			if agent.SchemaName != "" && tag[schema.AktoTagSchemaName] != "" && tag[schema.AktoTagSchemaName] != agent.SchemaName {
				c.fail(i, "identity", "agent %q: bot-schemaname %q, want %q exactly", agent.Name, tag[schema.AktoTagSchemaName], agent.SchemaName)
			}
		}
	}

	name := bot + "." + c.host
	col := c.collections[name]
	if col == nil {
		col = &collection{first: i, values: map[string]map[string]bool{}, tagSets: map[string]bool{}}
		c.collections[name] = col
	}
	keys := make([]string, 0, len(tag))
	for k, v := range tag {
		if col.values[k] == nil {
			col.values[k] = map[string]bool{}
		}
		col.values[k][v] = true
		keys = append(keys, k+"="+v)
	}
	slices.Sort(keys)
	col.tagSets[strings.Join(keys, "\x00")] = true
	agentKey := "bot-name:" + bot
	if id := tag[schema.AktoTagBotID]; id != "" {
		agentKey = "bot-id:" + id
	}
	if c.agentCollections[agentKey] == nil {
		c.agentCollections[agentKey] = map[string]bool{}
	}
	c.agentCollections[agentKey][name] = true
}

func (c *checker) agentOf(bot string) *Agent {
	for k := range c.opts.Agents {
		if Sanitize(c.opts.Agents[k].Name) == bot {
			return &c.opts.Agents[k]
		}
	}
	return nil
}

func agentNames(agents []Agent) []string {
	var out []string
	for _, a := range agents {
		out = append(out, a.Name)
	}
	return out
}

func (c *checker) across() {
	maxSets := max(c.opts.TagSetsPerAgent, 1)
	names := make([]string, 0, len(c.collections))
	for name := range c.collections {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		col := c.collections[name]
		for k, values := range col.values {
			if len(values) > 1 {
				c.fail(-1, "tag-values", "collection %s: tag %s takes %d values (%v): its tag list grows with the records", name, k, len(values), keysOf(values))
			}
		}
		if len(col.tagSets) > maxSets {
			c.fail(-1, "tag-sets", "collection %s: %d different tags, at most %d allowed", name, len(col.tagSets), maxSets)
		}
	}
	agents := make([]string, 0, len(c.agentCollections))
	for a := range c.agentCollections {
		agents = append(agents, a)
	}
	slices.Sort(agents)
	for _, a := range agents {
		if cols := c.agentCollections[a]; len(cols) > 1 {
			c.fail(-1, "collections", "agent %s is filed in %d collections: %v", a, len(cols), keysOf(cols))
		}
	}
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Sanitize spells a name as Akto spells bot names: every run of characters
// that are not letters, digits or '-' becomes one '-', runs of '-'
// collapse, leading and trailing '-' go, then lower case; Unicode letters
// and digits stay. (Written from the reference, apart from the processor's, so
// that the check does not agree with a mistake there.)
func Sanitize(name string) string {
	mapped := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return '-'
	}, name)
	parts := strings.FieldsFunc(mapped, func(r rune) bool { return r == '-' })
	return strings.ToLower(strings.Join(parts, "-"))
}

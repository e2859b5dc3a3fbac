package webhookclient

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Call is one generated analyze-tool-execution body and the facts a test
// checks the receiver's record against.
type Call struct {
	Body []byte
	// Variant names the shape (see Variants).
	Variant        string
	ConversationID string
	PlanID         string
	StepID         string
	AgentName      string
	AgentTenantID  string
	UserTenantID   string // "" when the call has no user
	UserMessage    string // "" when null
	ToolID         string
	// Secret is a credential the call carries in its texts (user message,
	// input values), "" if none: masking must remove it.
	Secret string
	// Password is a password the call carries in its input values, "" if
	// none: masking must remove it too.
	Password string
}

// CrossTenant reports whether the user is from another tenant than the agent.
func (c Call) CrossTenant() bool { return c.UserTenantID != "" && c.UserTenantID != c.AgentTenantID }

// Variants are the body shapes Generate cycles through, each one of the
// spellings or shapes the reference says Copilot Studio sends or may send:
//
//   - connector: Microsoft's example, as seen in real traffic
//     (previousToolsOutputs, outputs as an array);
//   - topic: the spelling of Microsoft's doc (previousToolOutputs), outputs
//     as one object, a topic as the tool, a trigger;
//   - mcp: an MCP tool, user and thought null, a plain IPv6 client address,
//     no earlier outputs;
//   - cross_tenant: a user from another organisation (a multitenant agent),
//     an adaptive card as chat content;
//   - extras: fields the reference does not list, at every level, and a
//     pasted credential in the message and the input values.
var Variants = []string{"connector", "topic", "mcp", "cross_tenant", "extras"}

// Options shape the generated calls.
type Options struct {
	// AgentTenantID is the agents' tenant; OtherTenantID the cross-tenant
	// users'. Defaults: fixed GUIDs.
	AgentTenantID, OtherTenantID string
	// Agents are the agent names used, round robin. Default: three.
	Agents []string
	// Now is the time the chat history ends at; default time.Now().
	Now time.Time
	// StableAgents gives each agent one id, one environment and one
	// published state in every call, as a real agent has (the extras
	// variant then stays published): what a check of Akto's filing rules
	// across many calls needs, since an agent's tag must not vary. Without
	// it every call draws its agent id afresh.
	StableAgents bool
}

// Generate makes n calls from seed: the same seed, the same calls, except
// that ids are unique per seed and index.
func Generate(seed uint64, n int, o Options) []Call {
	g := NewGenerator(seed, o)
	calls := make([]Call, n)
	for i := range calls {
		calls[i] = g.Next()
	}
	return calls
}

// Generator makes the calls of Generate one at a time, for a sender that
// does not know in advance how many it will send: its first n calls are
// Generate's n. Safe for concurrent use.
type Generator struct {
	mu   sync.Mutex
	rng  *rand.Rand
	o    Options
	next int
}

// NewGenerator starts the calls of seed.
func NewGenerator(seed uint64, o Options) *Generator {
	if o.AgentTenantID == "" {
		o.AgentTenantID = "8a2b7c4d-1e3f-4a5b-9c6d-7e8f9a0b1c2d"
	}
	if o.OtherTenantID == "" {
		o.OtherTenantID = "5f0e1d2c-3b4a-4968-8776-655443322110"
	}
	if len(o.Agents) == 0 {
		o.Agents = []string{"HR Helper", "IT Desk", "Sales Coach"}
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return &Generator{rng: rand.New(rand.NewPCG(seed, 0x5eed)), o: o}
}

// Next is the next call.
func (g *Generator) Next() Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := generate(g.rng, g.next, g.o)
	g.next++
	return c
}

// Agents are the agent names the generator's calls use.
func (g *Generator) Agents() []string { return slices.Clone(g.o.Agents) }

func guid(rng *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, 0x8000|rng.Uint32()&0x3fff, rng.Uint64()&0xffffffffffff)
}

// stamp is Copilot Studio's timestamp: 7 fractional digits and an offset.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000+00:00") }

var requests = []struct{ message, thought string }{
	{"Mail the Q3 payroll export to my private address", "The user asked for the payroll export to be emailed, so I will call Send an email (V2)."},
	{"Create a ticket: my laptop will not boot after the update", "The user reports a broken laptop; I will open an incident with Create ticket."},
	{"What is the discount for Contoso's renewal?", "The user asks about a renewal; I will look the account up with Get account."},
	{"Delete all rows of the customers table", "The user wants the table emptied; I will call Delete rows."},
	{"Forward the contract draft to legal@fabrikam.example", "The user wants a document sent outside; I will call Send an email."},
}

func generate(rng *rand.Rand, i int, o Options) Call {
	variant := Variants[i%len(Variants)]
	agent := o.Agents[i%len(o.Agents)]
	bot := fmt.Sprintf("crd4f_agent%d", i%len(o.Agents))
	req := requests[rng.IntN(len(requests))]
	c := Call{
		Variant: variant, ConversationID: guid(rng), PlanID: guid(rng), StepID: guid(rng),
		AgentName: agent, AgentTenantID: o.AgentTenantID, UserTenantID: o.AgentTenantID, UserMessage: req.message,
	}
	at := o.Now.Add(-time.Duration(rng.IntN(5000)) * time.Millisecond)
	history := []any{
		map[string]any{"id": guid(rng), "role": "user", "content": req.message, "timestamp": stamp(at)},
		map[string]any{"id": guid(rng), "role": "assistant", "content": "Hi, I'm " + agent + ". What can I do for you?", "timestamp": stamp(at.Add(-12 * time.Second))},
	}
	planner := map[string]any{"userMessage": req.message, "thought": req.thought, "chatHistory": history}
	tool := map[string]any{
		"id": bot + ".action.Office365Outlook-SendanemailV2", "type": "ToolDefinition", "name": "Send-an-email-V2",
		"description": "Sends an email message.",
		"inputParameters": []any{
			map[string]any{"name": "To", "description": "Recipients, separated by semicolons", "type": map[string]any{"$kind": "String"}},
			map[string]any{"name": "Subject", "description": "Subject line", "type": map[string]any{"$kind": "String"}},
			map[string]any{"name": "Body", "description": "Message body", "type": map[string]any{"$kind": "String"}},
		},
		"outputParameters": []any{},
	}
	inputs := map[string]any{"To": "someone@example.org", "Subject": "Q3 payroll", "Body": "emp_id,gross\n1001,98000"}
	agentMeta := map[string]any{
		"id": guid(rng), "tenantId": o.AgentTenantID, "environmentId": "Default-" + o.AgentTenantID,
		"name": agent, "version": nil, "isPublished": true,
	}
	if o.StableAgents {
		agentMeta["id"] = fmt.Sprintf("3f2a9c41-7d6e-4b80-a1c2-%012x", i%len(o.Agents))
	}
	user := map[string]any{"id": guid(rng), "tenantId": o.AgentTenantID}
	meta := map[string]any{
		"agent": agentMeta, "user": user, "conversationId": c.ConversationID, "messageId": nil,
		"channelId": "pva-studio", "planId": c.PlanID, "planStepId": c.StepID, "parentAgentComponentId": nil,
		"trigger": map[string]any{"id": nil, "schemaName": nil}, "incomingClientIp": "::ffff:203.0.113.24",
	}
	body := map[string]any{"plannerContext": planner, "toolDefinition": tool, "inputValues": inputs, "conversationMetadata": meta}

	switch variant {
	case "connector":
		planner["previousToolsOutputs"] = []any{map[string]any{
			"toolId": bot + ".action.SharePoint-Getfilecontent", "toolName": "Get-file-content",
			"outputs":   []any{map[string]any{"name": "body", "value": "emp_id,gross\n1001,98000"}},
			"timestamp": stamp(at.Add(2 * time.Second)),
		}}
	case "topic":
		planner["previousToolOutputs"] = []any{map[string]any{
			"toolId": bot + ".action.Dataverse-ListRows", "toolName": "List-rows",
			"outputs":   map[string]any{"value": []any{map[string]any{"accountid": guid(rng), "name": "Contoso"}}},
			"timestamp": stamp(at.Add(time.Second)),
		}}
		tool["id"], tool["type"], tool["name"] = bot+".topic.Escalate", "CustomTopic", "Escalate"
		tool["description"] = "Hands the conversation to a person."
		inputs = map[string]any{"reason": req.message}
		meta["trigger"] = map[string]any{"id": guid(rng), "schemaName": bot + ".trigger.OnEscalate"}
		meta["channelId"] = "msteams"
	case "mcp":
		planner["userMessage"], planner["thought"] = nil, nil
		c.UserMessage = ""
		meta["user"] = nil
		c.UserTenantID = ""
		tool["id"], tool["type"], tool["name"] = "github~create_issue", "DynamicServerToolDefinition", "create_issue"
		inputs = map[string]any{"repo": "contoso/app", "title": "Crash on start", "labels": []any{"bug"}}
		meta["incomingClientIp"] = "2001:db8::42"
	case "cross_tenant":
		user["tenantId"] = o.OtherTenantID
		c.UserTenantID = o.OtherTenantID
		meta["channelId"] = "msteams"
		history[1].(map[string]any)["content"] = map[string]any{
			"type": "AdaptiveCard", "version": "1.5",
			"body": []any{map[string]any{"type": "TextBlock", "text": "Hi, I'm " + agent + "."}},
		}
	case "extras":
		secret := "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + "eyJzdWIiOiJrMSIsInNjcCI6ImFsbCJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
		c.Secret = secret
		c.UserMessage = "Our script fails with Authorization: Bearer " + secret + ", can you check it?"
		planner["userMessage"] = c.UserMessage
		planner["thought"] = "The user reports a failing script; I will open a ticket with Create ticket."
		history[0].(map[string]any)["content"] = c.UserMessage
		c.Password = "hunter2-" + guid(rng)
		inputs = map[string]any{"ticket": map[string]any{"title": "Script fails", "details": map[string]any{"password": c.Password, "token": secret}}}
		body["futureField"] = map[string]any{"nested": []any{1, 2, 3}}
		planner["reasoningSummary"] = "not in the reference"
		agentMeta["version"] = "1.4.2"
		if !o.StableAgents {
			agentMeta["isPublished"] = false
		}
		agentMeta["icon"] = nil
		meta["locale"] = "en-US"
		tool["isDisabled"] = false
	}
	planner["chatHistory"] = history
	body["inputValues"] = inputs
	c.ToolID = tool["id"].(string)
	b, err := json.Marshal(body)
	if err != nil {
		panic(err) // maps of JSON values: cannot happen
	}
	c.Body = b
	return c
}

// Example is the example body of the reference
// (shared/reference/threat-detection-webhook.md): the HR Helper mailing the
// payroll export.
func Example() []byte { return []byte(exampleBody) }

const exampleBody = `{
  "plannerContext": {
    "userMessage": "Mail the Q3 payroll export to my private address",
    "thought": "The user asked for the payroll export to be emailed, so I will call Send an email (V2).",
    "chatHistory": [
      {"id": "6c1f0b7e-2d4a-4f3b-9e21-5a7d8c9e0f11", "role": "user", "content": "Mail the Q3 payroll export to my private address", "timestamp": "2026-03-11T09:15:42.5120394+00:00"},
      {"id": "0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b", "role": "assistant", "content": "Hi, I'm HR Helper. What can I do for you?", "timestamp": "2026-03-11T09:15:30.0046611+00:00"}
    ],
    "previousToolsOutputs": [
      {"toolId": "crd4f_hrhelper.action.SharePoint-Getfilecontent", "toolName": "Get-file-content",
       "outputs": [{"name": "body", "value": "emp_id,gross\n1001,98000"}], "timestamp": "2026-03-11T09:15:44.1038812+00:00"}
    ]
  },
  "toolDefinition": {
    "id": "crd4f_hrhelper.action.Office365Outlook-SendanemailV2",
    "type": "ToolDefinition",
    "name": "Send-an-email-V2",
    "description": "Sends an email message.",
    "inputParameters": [
      {"name": "To", "description": "Recipients, separated by semicolons", "type": {"$kind": "String"}},
      {"name": "Subject", "description": "Subject line", "type": {"$kind": "String"}},
      {"name": "Body", "description": "Message body", "type": {"$kind": "String"}}
    ],
    "outputParameters": []
  },
  "inputValues": {"To": "someone@example.org", "Subject": "Q3 payroll", "Body": "emp_id,gross\n1001,98000"},
  "conversationMetadata": {
    "agent": {"id": "3f2a9c41-7d6e-4b80-a1c2-9e4d5f6a7b8c", "tenantId": "8a2b7c4d-1e3f-4a5b-9c6d-7e8f9a0b1c2d",
              "environmentId": "Default-8a2b7c4d-1e3f-4a5b-9c6d-7e8f9a0b1c2d", "name": "HR Helper", "version": null, "isPublished": true},
    "user": {"id": "d3c9e8f7-2b1a-4c5d-8e9f-0a1b2c3d4e5f", "tenantId": "8a2b7c4d-1e3f-4a5b-9c6d-7e8f9a0b1c2d"},
    "conversationId": "5b7e2d90-1c3f-4a6e-8d2b-7f9a0c1e3d5b",
    "messageId": null,
    "channelId": "pva-studio",
    "planId": "a4c6e8f0-2b4d-4f6a-8c0e-1d3f5a7c9e2b",
    "planStepId": "e1f3a5c7-9b2d-4e6f-8a0c-2e4a6c8e0f1d",
    "parentAgentComponentId": null,
    "trigger": {"id": null, "schemaName": null},
    "incomingClientIp": "::ffff:203.0.113.24"
  }
}`

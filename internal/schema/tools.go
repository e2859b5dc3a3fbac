package schema

import "strings"

// What a generative agent did: its plan and the tools it called. The
// transcripts receiver writes these on the records of plan and step
// activities; the threat-detection receiver on the record of each tool call
// it is asked about. Semantic conventions (gen_ai.*) where one exists.
const (
	PlanID         = "copilotstudio.plan.id"          // planIdentifier / planId
	ToolCallID     = "gen_ai.tool.call.id"            // semconv; the plan step's id (stepId, planStepId)
	ToolID         = "copilotstudio.tool.id"          // e.g. cr44e_hrAgent.action.Office365Outlook-SendanemailV2
	ToolName       = "gen_ai.tool.name"               // semconv; display name, where known
	ToolKind       = "copilotstudio.tool.kind"        // one of the ToolKind* values
	ToolType       = "copilotstudio.tool.type"        // the platform's own type word, as sent (Action, KnowledgeSource, ToolDefinition, ...)
	ToolArguments  = "gen_ai.tool.call.arguments"     // semconv; JSON text: the bound arguments or proposed input values
	ToolResult     = "gen_ai.tool.call.result"        // semconv; JSON text: the step's observation (output)
	PlannerThought = "copilotstudio.planner.thought"  // why the planner chose the tool
	StepState      = "copilotstudio.step.state"       // one of the StepState* values
	StepDurationMS = "copilotstudio.step.duration_ms" // int: the step's execution time
)

// Values of ToolKind.
const (
	ToolKindAction         = "action"          // a connector, flow or REST action ({bot}.action.X)
	ToolKindMCP            = "mcp"             // an MCP server's tool (MCP:..., or a DynamicServerToolDefinition)
	ToolKindKnowledge      = "knowledge"       // a knowledge search (P:UniversalSearchTool, KnowledgeSource)
	ToolKindTopic          = "topic"           // a topic called as a tool ({bot}.topic.X)
	ToolKindConnectedAgent = "connected_agent" // another agent ({bot}.InvokeConnectedAgentTaskAction.X)
	ToolKindPrompt         = "prompt"          // an AI prompt (LlmSkill)
	ToolKindOther          = "other"
)

// Values of StepState.
const (
	StepStateTriggered = "triggered" // started; no finish seen (yet, or ever)
	StepStateCompleted = "completed"
	StepStateFailed    = "failed"
	StepStateBlocked   = "blocked"
)

// ToolKindOf classifies a tool by its id and, where the id does not tell,
// by the type word the platform sent with it (a plan step's type, a tool
// definition's type).
func ToolKindOf(toolID, typ string) string {
	switch {
	case strings.HasPrefix(toolID, "MCP:"), strings.Contains(toolID, "~"), strings.EqualFold(typ, "DynamicServerToolDefinition"):
		return ToolKindMCP
	case strings.HasPrefix(toolID, "P:UniversalSearchTool"), strings.EqualFold(typ, "KnowledgeSource"):
		return ToolKindKnowledge
	case strings.Contains(toolID, ".InvokeConnectedAgentTaskAction."):
		return ToolKindConnectedAgent
	case strings.Contains(toolID, ".topic."), strings.EqualFold(typ, "CustomTopic"):
		return ToolKindTopic
	case strings.Contains(toolID, ".action."), strings.EqualFold(typ, "Action"), strings.EqualFold(typ, "ToolDefinition"):
		return ToolKindAction
	case strings.EqualFold(typ, "LlmSkill"):
		return ToolKindPrompt
	}
	return ToolKindOther
}

package schema

import "testing"

func TestToolKindOf(t *testing.T) {
	for _, c := range []struct{ id, typ, want string }{
		{"crx_helpdesk.action.GetTicket", "Action", ToolKindAction},
		{"crd4f_hrhelper.action.Office365Outlook-SendanemailV2", "ToolDefinition", ToolKindAction},
		{"MCP:cr1_bot.topic.github:create_issue", "", ToolKindMCP},
		{"github~create_issue", "DynamicServerToolDefinition", ToolKindMCP},
		{"P:UniversalSearchTool", "KnowledgeSource", ToolKindKnowledge},
		{"cr1_bot.topic.Escalate", "CustomTopic", ToolKindTopic},
		{"cr1_bot.InvokeConnectedAgentTaskAction.Payroll", "", ToolKindConnectedAgent},
		{"cr1_bot.prompt.Summarise", "LlmSkill", ToolKindPrompt},
		{"something", "", ToolKindOther},
	} {
		if got := ToolKindOf(c.id, c.typ); got != c.want {
			t.Errorf("ToolKindOf(%q, %q) = %q, want %q", c.id, c.typ, got, c.want)
		}
	}
}

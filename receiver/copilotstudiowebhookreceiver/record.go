package copilotstudiowebhookreceiver

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiowebhookreceiver/internal/metadata"
)

// callContext is what the request brings besides its body.
type callContext struct {
	received      time.Time
	apiVersion    string
	correlationID string
}

// buildRecord turns one analyze call into one log record, its agent on the
// resource. It returns the record's id too.
func buildRecord(c *toolCall, body []byte, cc callContext) (plog.Logs, string) {
	meta := &c.ConversationMetadata
	agent := &meta.Agent

	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	putStr(res, schema.AgentName, agent.Name)
	putStr(res, schema.AgentID, agent.ID)
	putStr(res, schema.AgentTenantID, agent.TenantID)
	putStr(res, schema.AgentEnvironmentID, agent.EnvironmentID)
	putStr(res, schema.AgentVersion, agent.Version)
	if agent.IsPublished != nil {
		state := schema.PublishedStateUnpublished
		if *agent.IsPublished {
			state = schema.PublishedStatePublished
		}
		res.PutStr(schema.AgentPublishedState, state)
	}

	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	lr := sl.LogRecords().AppendEmpty()
	ts := pcommon.NewTimestampFromTime(cc.received)
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(ts)
	// The user's message is the body, as a message row's text is: the
	// masking and the size cap of the shipped pipeline work on it.
	if msg := c.PlannerContext.UserMessage; msg != "" {
		lr.Body().SetStr(msg)
	}

	id := recordID(meta.ConversationID, meta.PlanID, meta.PlanStepID, cc.correlationID, body)
	attrs := lr.Attributes()
	attrs.EnsureCapacity(28)
	attrs.PutStr(schema.EventName, schema.ToolCallEventName)
	attrs.PutStr(schema.ToolCallRecordID, id)
	putStr(attrs, schema.ConversationID, meta.ConversationID)
	putStr(attrs, schema.PlanID, meta.PlanID)
	putStr(attrs, schema.ToolCallID, meta.PlanStepID)
	putStr(attrs, schema.AgentName, agent.Name)

	putStr(attrs, schema.UserID, meta.User.ID)
	putStr(attrs, schema.UserTenantID, meta.User.TenantID)
	if meta.User.TenantID != "" && agent.TenantID != "" {
		attrs.PutBool(schema.UserCrossTenant, !strings.EqualFold(meta.User.TenantID, agent.TenantID))
	}
	putStr(attrs, schema.ChannelID, meta.ChannelID)
	putStr(attrs, schema.ClientAddress, clientAddress(meta.IncomingClientIP))
	putStr(attrs, schema.TriggerID, meta.Trigger.ID)
	putStr(attrs, schema.TriggerSchemaName, meta.Trigger.SchemaName)
	putStr(attrs, schema.MessageID, meta.MessageID)
	putStr(attrs, schema.ParentAgentComponentID, meta.ParentAgentComponentID)

	tool := &c.ToolDefinition
	putStr(attrs, schema.ToolID, tool.ID)
	putStr(attrs, schema.ToolType, tool.Type)
	putStr(attrs, schema.ToolName, tool.Name)
	putStr(attrs, schema.ToolDescription, tool.Description)
	if tool.ID != "" || tool.Type != "" {
		attrs.PutStr(schema.ToolKind, schema.ToolKindOf(tool.ID, tool.Type))
	}
	putStr(attrs, schema.ToolArguments, jsonText(c.InputValues))
	putStr(attrs, schema.PlannerThought, c.PlannerContext.Thought)
	putStr(attrs, schema.ChatHistory, jsonText(c.PlannerContext.ChatHistory))
	putStr(attrs, schema.ToolPreviousOutputs, c.previousOutputs())

	putStr(attrs, schema.WebhookAPIVersion, cc.apiVersion)
	putStr(attrs, schema.WebhookCorrelationID, cc.correlationID)
	return logs, id
}

// putStr sets key unless v is empty: a null or missing field stays absent.
func putStr(m pcommon.Map, key, v string) {
	if v != "" {
		m.PutStr(key, v)
	}
}

// clientAddress is the caller's IP as an address, IPv4-mapped IPv6
// (::ffff:203.0.113.24) unmapped; anything else as sent.
func clientAddress(ip string) string {
	if a, err := netip.ParseAddr(ip); err == nil {
		return a.Unmap().String()
	}
	return ip
}

// recordID is the same for the same call every time: a hash of its
// conversation, plan and step ids (one plan step is one tool call), else of
// its correlation id, else of its body. 32 hex digits, like a turn id.
func recordID(conversation, plan, step, correlation string, body []byte) string {
	h := sha256.New()
	switch {
	case step != "":
		h.Write([]byte("step\x00" + conversation + "\x00" + plan + "\x00" + step))
	case correlation != "":
		h.Write([]byte("correlation\x00" + correlation))
	default:
		h.Write([]byte("body\x00"))
		h.Write(body)
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

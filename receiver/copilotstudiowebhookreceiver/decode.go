package copilotstudiowebhookreceiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Reasons a body cannot be read (attribute "reason" of bad_requests).
const (
	badNotJSON   = "not_json"
	badNotObject = "not_object"
	badTooLarge  = "too_large"
	badTooDeep   = "too_deep"
	badWrongType = "wrong_type"
	badRead      = "read_error"
)

// maxNesting bounds how deep objects and arrays may nest in a body. A tool
// call is about 4 levels deep; input values, adaptive cards in the chat
// history and tool outputs add some tens at most.
const maxNesting = 64

// badRequest is a body that cannot be read: why (a metric attribute) and the
// message of the 400 answer, which names what could not be read.
type badRequest struct {
	reason  string
	message string
}

func (b *badRequest) Error() string { return b.message }

// toolCall is the analyze-tool-execution body. Every string may be null (read
// as ""), unknown fields are ignored, and what the reference leaves open
// (chat history entries, earlier tool outputs, input values) is kept as raw
// JSON, whatever its shape.
type toolCall struct {
	PlannerContext struct {
		UserMessage string          `json:"userMessage"`
		Thought     string          `json:"thought"`
		ChatHistory json.RawMessage `json:"chatHistory"`
		// Real traffic spells it previousToolsOutputs, Microsoft's doc
		// previousToolOutputs: both are read.
		PreviousToolsOutputs json.RawMessage `json:"previousToolsOutputs"`
		PreviousToolOutputs  json.RawMessage `json:"previousToolOutputs"`
	} `json:"plannerContext"`
	ToolDefinition struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"toolDefinition"`
	InputValues          json.RawMessage `json:"inputValues"`
	ConversationMetadata struct {
		Agent struct {
			ID            string `json:"id"`
			TenantID      string `json:"tenantId"`
			EnvironmentID string `json:"environmentId"`
			Name          string `json:"name"`
			Version       string `json:"version"`
			IsPublished   *bool  `json:"isPublished"`
		} `json:"agent"`
		User struct {
			ID       string `json:"id"`
			TenantID string `json:"tenantId"`
		} `json:"user"`
		Trigger struct {
			ID         string `json:"id"`
			SchemaName string `json:"schemaName"`
		} `json:"trigger"`
		ConversationID         string `json:"conversationId"`
		MessageID              string `json:"messageId"`
		ChannelID              string `json:"channelId"`
		PlanID                 string `json:"planId"`
		PlanStepID             string `json:"planStepId"`
		ParentAgentComponentID string `json:"parentAgentComponentId"`
		IncomingClientIP       string `json:"incomingClientIp"`
	} `json:"conversationMetadata"`
}

// decodeToolCall reads an analyze body, or says why it cannot.
func decodeToolCall(body []byte) (*toolCall, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &badRequest{badNotJSON, "the request body is empty: expected a JSON object"}
	}
	if trimmed[0] != '{' {
		if json.Valid(trimmed) {
			return nil, &badRequest{badNotObject, "the request body is JSON but not an object"}
		}
		return nil, &badRequest{badNotJSON, "the request body is not valid JSON"}
	}
	if tooDeep(trimmed, maxNesting) {
		return nil, &badRequest{badTooDeep, fmt.Sprintf("the request body nests objects and arrays deeper than %d levels", maxNesting)}
	}
	var call toolCall
	if err := json.Unmarshal(trimmed, &call); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, &badRequest{badWrongType, fmt.Sprintf("field %s is a JSON %s, expected %s", typeErr.Field, typeErr.Value, jsonKind(typeErr.Type.Kind().String()))}
		}
		return nil, &badRequest{badNotJSON, "the request body is not valid JSON"}
	}
	return &call, nil
}

// jsonKind names a Go kind the way the JSON reference does.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string or null"
	case "bool", "ptr":
		return "a boolean or null"
	case "struct":
		return "an object or null"
	}
	return goKind
}

// tooDeep reports whether objects and arrays in b nest deeper than max. It
// only counts brackets outside strings: whether b is valid JSON is for the
// decoder to say.
func tooDeep(b []byte, max int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// jsonText is raw JSON as compact text; "" for absent or null.
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var b bytes.Buffer
	b.Grow(len(raw))
	if err := json.Compact(&b, raw); err != nil {
		return string(raw) // cannot happen: the decoder validated it
	}
	return b.String()
}

// previousOutputs is the earlier tool outputs under either spelling; a call
// with both keeps both (one array when both are arrays).
func (c *toolCall) previousOutputs() string {
	a, b := jsonText(c.PlannerContext.PreviousToolsOutputs), jsonText(c.PlannerContext.PreviousToolOutputs)
	switch {
	case b == "":
		return a
	case a == "":
		return b
	}
	var as, bs []json.RawMessage
	if json.Unmarshal([]byte(a), &as) == nil && json.Unmarshal([]byte(b), &bs) == nil {
		merged, err := json.Marshal(append(as, bs...))
		if err == nil {
			return string(merged)
		}
	}
	return "[" + a + "," + b + "]"
}

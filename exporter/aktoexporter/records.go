package aktoexporter

import (
	"bytes"
	"encoding/json"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// turnIDOf is the id a consumer dedupes the record on: a turn's turn id or
// a tool call's record id; "" for neither (such a record is still sent; its
// log lines say "(none)").
func turnIDOf(lr plog.LogRecord) string {
	for _, key := range []string{schema.TurnID, schema.ToolCallRecordID} {
		if v, ok := lr.Attributes().Get(key); ok {
			return v.AsString()
		}
	}
	return ""
}

// recordJSON is the record's body as JSON bytes, as they will be sent, or
// why it cannot be sent: the body must be bytes or a string holding one
// JSON object.
func recordJSON(lr plog.LogRecord) ([]byte, string) {
	body := lr.Body()
	var raw []byte
	switch body.Type() {
	case pcommon.ValueTypeBytes:
		raw = body.Bytes().AsRaw()
	case pcommon.ValueTypeStr:
		raw = []byte(body.Str())
	default:
		return nil, "the body is of type " + body.Type().String() + ", not bytes or a string holding a JSON object"
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, "the body does not hold a JSON object"
	}
	if !json.Valid(raw) {
		return nil, "the body is not valid JSON"
	}
	return raw, ""
}

// longestString is the length, decoded, of the longest string in a valid
// JSON document (keys included), as the service's parser measures it.
func longestString(raw []byte) int {
	dec := json.NewDecoder(bytes.NewReader(raw))
	longest := 0
	for {
		tok, err := dec.Token()
		if err != nil { // io.EOF at the end: raw is valid JSON
			return longest
		}
		if s, ok := tok.(string); ok {
			longest = max(longest, len(s))
		}
	}
}

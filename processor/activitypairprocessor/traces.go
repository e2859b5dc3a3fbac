package activitypairprocessor

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// The _traces field of an Akto record: the turn's activities as a JSON
// array in the transcript shape (type, id, name, valueType, replyToId,
// from.role, timestampMs, text, value), rebuilt from the rows. Akto's
// runtime makes a trace of it (the agent, a span per plan, a span per tool
// step with its arguments and observation) when it holds a user message
// and an activity named DynamicPlan*. Only a turn with plan or step rows
// has it; it holds the user message, the agent's messages and the plan,
// step, knowledge and error activities (not the conversation-level traces,
// variable assignments or topic rows).

// tracesCutMarker names the activity that ends a cut _traces array.
const tracesCutMarker = "TracesCut"

// outputKeys are the members of a value that hold what a tool returned:
// what is cut first when _traces is over max_traces_bytes.
var outputKeys = []string{"observation", "fullResults", "filteredResults"}

// tracesBuilder writes _traces; its buffers are reused.
type tracesBuilder struct {
	buf     []byte
	compact bytes.Buffer
	acts    []traceActivity // the slow path's activities
}

// traceActivity is one activity of an array being cut.
type traceActivity struct {
	row       *pairing.Row
	json      []byte
	protected bool // the user message and the first plan activity: kept to the last
	output    bool // its value holds a tool's output
}

// build returns the _traces array of t, a turn with plan or step rows
// (valid until the next build). An array over max bytes is cut (see cut).
func (tb *tracesBuilder) build(t *pairing.Turn, max int) []byte {
	b := append(tb.buf[:0], '[')
	n := 0
	for i := range t.Len() {
		r := t.Row(i)
		if !inTraces(r) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = tb.appendActivity(b, r, "")
		n++
	}
	b = append(b, ']')
	if len(b) > max {
		b = tb.cut(b[:0], t, max, len(b))
	}
	tb.buf = b
	return b
}

// inTraces reports whether a row is one of the activities _traces holds.
func inTraces(r *pairing.Row) bool {
	return r.Kind == pairing.KindRequest || r.Kind == pairing.KindReply || r.Kind.IsStep()
}

// appendActivity appends r as a transcript activity. value, when not
// empty, replaces the row's value.
func (tb *tracesBuilder) appendActivity(b []byte, r *pairing.Row, value string) []byte {
	var info stepInfo
	role := "0"
	switch r.Kind {
	case pairing.KindRequest:
		info.typ, role = "message", "1"
	case pairing.KindReply:
		info.typ = "message"
	default:
		info = unpackStep(r.Detail)
		if info.typ == "" {
			info.typ = "event"
		}
		if info.role == schema.RoleUser {
			role = "1"
		}
		if value == "" {
			value = r.Text
		}
	}
	b = append(b, `{"type":`...)
	b = appendJSONString(b, info.typ)
	b = appendOptional(b, `,"id":`, r.Activity)
	b = appendOptional(b, `,"name":`, info.name)
	b = appendOptional(b, `,"valueType":`, info.valueType)
	b = appendOptional(b, `,"replyToId":`, r.ReplyTo)
	b = append(b, `,"from":{"role":`...)
	b = append(b, role...)
	b = append(b, `},"timestampMs":`...)
	b = strconv.AppendInt(b, r.At/int64(time.Millisecond), 10)
	if r.Kind == pairing.KindRequest || r.Kind == pairing.KindReply {
		b = append(b, `,"text":`...)
		b = appendJSONString(b, r.Text)
	} else {
		b = appendOptional(b, `,"text":`, info.text)
	}
	if value != "" {
		b = append(b, `,"value":`...)
		b = tb.appendValue(b, value)
	}
	return append(b, '}')
}

func appendOptional(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, key...)
	return appendJSONString(b, value)
}

// appendValue appends a value as the JSON it is, compacted; a value that is
// not JSON (cut, or masked into something else) as a JSON string.
func (tb *tracesBuilder) appendValue(b []byte, value string) []byte {
	tb.compact.Reset()
	if compactJSON(&tb.compact, value) != nil {
		return appendJSONString(b, value)
	}
	return append(b, tb.compact.Bytes()...)
}

// compactJSON is json.Compact on a string. json.Compact only reads its
// source, so the string's bytes are not copied.
func compactJSON(dst *bytes.Buffer, s string) error {
	return json.Compact(dst, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// cut writes t's activities into b within limit bytes, size being what they
// take in full. The tools' outputs go first (the largest first: each becomes
// "[cut: N bytes]"), then whole activities from the end, keeping the user
// message and the first plan activity (what makes Akto read the array as a
// trace) as long as anything else can go. A last activity, TracesCut, says
// what was cut.
func (tb *tracesBuilder) cut(b []byte, t *pairing.Turn, limit, size int) []byte {
	acts := tb.acts[:0]
	planSeen := false
	var last int64
	for i := range t.Len() {
		r := t.Row(i)
		if !inTraces(r) {
			continue
		}
		a := traceActivity{row: r, json: tb.appendActivity(nil, r, "")}
		last = max(last, r.At)
		if r.Kind == pairing.KindRequest {
			a.protected = true
		} else if r.Kind.IsStep() {
			info := unpackStep(r.Detail)
			if info.isPlanActivity() && !planSeen {
				a.protected, planSeen = true, true
			}
			k := info.kind()
			a.output = k == schema.EventPlanStepFinished || k == schema.EventPluginStepFinished || k == schema.EventUniversalSearch
		}
		acts = append(acts, a)
	}
	defer func() { clear(acts); tb.acts = acts[:0] }()

	total := func() int {
		n := 1 // '[' and the commas (one per activity, the marker's included) and ']'
		for _, a := range acts {
			if a.json != nil {
				n += len(a.json) + 1
			}
		}
		return n + 1
	}
	const markerRoom = 200
	outputsCut, dropped := 0, 0

	order := make([]int, 0, len(acts))
	for i := range acts {
		if acts[i].output {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(x, y int) int { return len(acts[y].json) - len(acts[x].json) })
	for _, i := range order {
		if total()+markerRoom <= limit {
			break
		}
		if v, ok := withoutOutputs(acts[i].row.Text); ok {
			acts[i].json = tb.appendActivity(nil, acts[i].row, v)
			outputsCut++
		}
	}
	for _, keepProtected := range []bool{true, false} {
		for i := len(acts) - 1; i >= 0 && total()+markerRoom > limit; i-- {
			if acts[i].json == nil || (keepProtected && acts[i].protected) {
				continue
			}
			acts[i].json = nil
			dropped++
		}
	}

	b = append(b, '[')
	for _, a := range acts {
		if a.json != nil {
			b = append(b, a.json...)
			b = append(b, ',')
		}
	}
	b = append(b, `{"type":"event","name":"`+tracesCutMarker+`","valueType":"`+tracesCutMarker+`","from":{"role":0},"timestampMs":`...)
	b = strconv.AppendInt(b, last/int64(time.Millisecond), 10)
	b = append(b, `,"value":{"maxTracesBytes":`...)
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(size), 10)
	b = append(b, `,"outputsCut":`...)
	b = strconv.AppendInt(b, int64(outputsCut), 10)
	b = append(b, `,"activitiesDropped":`...)
	b = strconv.AppendInt(b, int64(dropped), 10)
	return append(b, `}}]`...)
}

// withoutOutputs is a value with its outputKeys members replaced by
// "[cut: N bytes]"; false when it has none (or is not a JSON object).
func withoutOutputs(value string) (string, bool) {
	var members map[string]json.RawMessage
	if json.Unmarshal([]byte(value), &members) != nil {
		return "", false
	}
	cut := false
	for _, k := range outputKeys {
		if raw, ok := members[k]; ok && !isJSONNull(raw) {
			members[k], _ = json.Marshal("[cut: " + strconv.Itoa(len(raw)) + " bytes]")
			cut = true
		}
	}
	if !cut {
		return "", false
	}
	out, err := json.Marshal(members)
	if err != nil {
		return "", false
	}
	return string(out), true
}

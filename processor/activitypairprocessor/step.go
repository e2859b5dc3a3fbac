package activitypairprocessor

import (
	"encoding/binary"
	"encoding/json"
	"strings"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// stepInfo is what a plan, step or error row (pairing.KindStep,
// KindStepError) carries besides its value: the activity as the transcript
// had it (for _traces) and what the transcripts receiver read of its step
// (for the tool-call list and the otlp steps). It is packed into the row's
// Detail, so that a buffered row stays 128 bytes and the stored state keeps
// its format; the value (JSON text) is the row's Text.
type stepInfo struct {
	typ, name, valueType, role, text string // the activity: type, name, valueType, from.role, text
	planID, stepID, toolID, toolKind string
	state                            string // a schema.StepState* value, or ""
	durationMS                       string // decimal, or ""
	errorCode, errorMessage          string
}

// stepFields lists the fields in packing order.
func (s *stepInfo) fields() [12]*string {
	return [12]*string{&s.typ, &s.name, &s.valueType, &s.role, &s.text, &s.planID, &s.stepID, &s.toolID,
		&s.toolKind, &s.state, &s.durationMS, &s.errorCode}
}

// pack writes s as the fields in order, each a uvarint length and its
// bytes, then the error message.
func (s *stepInfo) pack() string {
	n := 0
	for _, f := range s.fields() {
		n += binary.MaxVarintLen32 + len(*f)
	}
	b := make([]byte, 0, n+len(s.errorMessage))
	for _, f := range s.fields() {
		b = binary.AppendUvarint(b, uint64(len(*f)))
		b = append(b, *f...)
	}
	return string(append(b, s.errorMessage...))
}

// unpackStep reads what pack wrote. Its strings share p's memory. Anything
// else (a row stored by a version that packed nothing) reads as empty.
func unpackStep(p string) (s stepInfo) {
	for _, f := range s.fields() {
		n, size := uvarintString(p)
		if size <= 0 || uint64(len(p)-size) < n {
			return stepInfo{}
		}
		*f = p[size : size+int(n)]
		p = p[size+int(n):]
	}
	s.errorMessage = p
	return s
}

// finished reports whether state is a step's final state.
func finished(state string) bool {
	return state == schema.StepStateCompleted || state == schema.StepStateFailed || state == schema.StepStateBlocked
}

// isPlanActivity reports whether an activity's name makes Akto's runtime
// read the _traces array as a plan (a name starting with DynamicPlan).
func (s *stepInfo) isPlanActivity() bool { return strings.HasPrefix(s.name, "DynamicPlan") }

// kind is the activity's kind as the transcripts receiver names it:
// valueType, else name.
func (s *stepInfo) kind() string {
	if s.valueType != "" {
		return s.valueType
	}
	return s.name
}

// uvarintString is binary.Uvarint on a string.
func uvarintString(p string) (uint64, int) {
	var x uint64
	for i := 0; i < len(p) && i < binary.MaxVarintLen64; i++ {
		c := p[i]
		if c < 0x80 {
			return x | uint64(c)<<(7*i), i + 1
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
	return 0, 0
}

// stepSummary is one plan step of a turn, from all of its rows: triggered,
// bound, finished or blocked, and the knowledge and error traces that name
// it.
type stepSummary struct {
	planID, stepID, toolID, toolKind string
	state                            string // final, or triggered
	durationMS                       string
	errorCode, errorMessage          string
	// read from the rows' values, when asked for
	thought, arguments, result string
}

// collectSteps appends the steps of t's rows to dst, in the order they were
// first seen (event time). A step that never finished is "triggered". With
// values, the planner's thought, the bound arguments and the observation
// are read from the rows' values (JSON text).
func collectSteps(dst []stepSummary, t *pairing.Turn, values bool) []stepSummary {
	first := len(dst)
	for i := range t.Len() {
		r := t.Row(i)
		if !r.Kind.IsStep() {
			continue
		}
		info := unpackStep(r.Detail)
		if info.stepID == "" {
			continue // a plan, or a trace of no step
		}
		k := first
		for k < len(dst) && dst[k].stepID != info.stepID {
			k++
		}
		if k == len(dst) {
			dst = append(dst, stepSummary{stepID: info.stepID})
		}
		st := &dst[k]
		setIfEmpty(&st.planID, info.planID)
		setIfEmpty(&st.toolID, info.toolID)
		setIfEmpty(&st.toolKind, info.toolKind)
		setIfEmpty(&st.durationMS, info.durationMS)
		setIfEmpty(&st.errorCode, info.errorCode)
		setIfEmpty(&st.errorMessage, info.errorMessage)
		if finished(info.state) || st.state == "" {
			st.state = info.state
		}
		if values && r.Text != "" {
			readStepValue(st, info.kind(), r.Text)
		}
	}
	for k := first; k < len(dst); k++ {
		if !finished(dst[k].state) {
			dst[k].state = schema.StepStateTriggered
		}
	}
	return dst
}

func setIfEmpty(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// readStepValue reads the thought (DynamicPlanStepTriggered), the
// arguments (DynamicPlanStepBindUpdate) or the observation
// (DynamicPlanStepFinished) from a step row's value, as the transcripts
// receiver read them into its own attributes.
func readStepValue(st *stepSummary, kind, value string) {
	var v struct {
		Thought     json.RawMessage `json:"thought"`
		Arguments   json.RawMessage `json:"arguments"`
		Observation json.RawMessage `json:"observation"`
	}
	switch kind {
	case schema.EventPlanStepTriggered, schema.EventPlanStepBindUpdate, schema.EventPlanStepFinished, schema.EventPluginStepFinished:
	default:
		return
	}
	if json.Unmarshal([]byte(value), &v) != nil {
		return
	}
	if len(v.Thought) > 0 && st.thought == "" {
		var s string
		if json.Unmarshal(v.Thought, &s) == nil {
			st.thought = s
		} else if !isJSONNull(v.Thought) {
			st.thought = string(v.Thought)
		}
	}
	if !isJSONNull(v.Arguments) && st.arguments == "" {
		st.arguments = string(v.Arguments)
	}
	if !isJSONNull(v.Observation) && st.result == "" {
		st.result = string(v.Observation)
	}
}

func isJSONNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

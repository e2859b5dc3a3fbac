package transcript

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// Conversation is what the pieces of one conversation (rows sharing a name:
// a conversation split at the 1 MB limit, or resumed after a pause) pass
// on to each other: its settings, its open plan steps and the item ids
// already emitted. Keep one per name for as long as more pieces may come.
type Conversation struct {
	designMode  bool
	designKnown bool
	locale      string
	channel     string
	userTenant  string
	steps       map[string]*step // by step id
	knowledge   []*step          // knowledge steps, in trigger order
	emitted     map[string]struct{}
}

// NewConversation starts the state of a conversation.
func NewConversation() *Conversation {
	return &Conversation{steps: map[string]*step{}, emitted: map[string]struct{}{}}
}

// step is a plan step seen triggered, for the events that follow it.
type step struct {
	id, planID, toolID, toolType, toolKind, turn string
	finished                                     bool
}

// Stats counts what AppendRecords did.
type Stats struct {
	Records    int
	Duplicates int // activities already emitted from another piece of the conversation
}

// AppendRecords writes one log record per activity of t to dst, in time
// order, and returns how many. agentName is repeated on each record
// (schema.AgentName), as the copilotstudio receiver does.
func (t *Transcript) AppendRecords(conv *Conversation, agentName string, dst plog.LogRecordSlice) Stats {
	var st Stats
	conv.settings(t)
	observed := pcommon.NewTimestampFromTime(t.Row.CreatedOn)
	tenant := conv.userTenant
	if tenant == "" {
		tenant = t.Meta.AADTenantID
	}
	lastUser := ""
	for i := range t.Activities {
		a := &t.Activities[i]
		if a.Role == RoleUser && a.Type == "message" && a.ID != "" {
			lastUser = a.ID
		}
		if _, dup := conv.emitted[a.ItemID]; dup {
			st.Duplicates++
			continue
		}
		conv.emitted[a.ItemID] = struct{}{}
		if a.TenantID != "" {
			tenant = a.TenantID
		}

		lr := dst.AppendEmpty()
		st.Records++
		lr.SetTimestamp(pcommon.Timestamp(a.TimestampMS * int64(time.Millisecond)))
		lr.SetObservedTimestamp(observed)
		attrs := lr.Attributes()
		event := eventName(a)
		lr.SetEventName(event)
		attrs.PutStr(schema.EventName, event)
		attrs.PutStr(schema.ItemID, a.ItemID)
		attrs.PutStr(schema.ConversationID, t.ConversationID)
		attrs.PutStr(schema.AgentName, agentName)
		attrs.PutStr(schema.TranscriptID, t.Row.ID)
		attrs.PutInt(schema.TranscriptBatchID, int64(t.Meta.BatchID))
		if t.Row.ConversationStart != "" {
			attrs.PutStr(schema.TranscriptStartTime, t.Row.ConversationStart)
		}
		attrs.PutInt(schema.ActivityIndex, int64(a.Index))
		putNonEmpty(attrs, schema.ActivityType, a.Type)
		putNonEmpty(attrs, schema.ActivityID, a.ID)
		putNonEmpty(attrs, schema.ActivityName, a.Name)
		putNonEmpty(attrs, schema.ActivityValueType, a.ValueType)
		putNonEmpty(attrs, schema.ReplyToActivityID, a.ReplyToID)
		switch a.Role {
		case RoleUser:
			attrs.PutStr(schema.ActivityRole, schema.RoleUser)
			putNonEmpty(attrs, schema.UserID, a.FromID)
			putNonEmpty(attrs, schema.UserAADObjectID, a.AADObjectID)
		case RoleBot:
			attrs.PutStr(schema.ActivityRole, schema.RoleBot)
		}
		channel := a.ChannelID
		if channel == "" {
			channel = conv.channel
		}
		putNonEmpty(attrs, schema.ChannelID, channel)
		locale := conv.locale
		if locale == "" {
			locale = a.Locale
		}
		putNonEmpty(attrs, schema.Locale, locale)
		if conv.designKnown {
			attrs.PutBool(schema.DesignMode, conv.designMode)
		} else if channel == "pva-studio" {
			attrs.PutBool(schema.DesignMode, true)
		}
		putNonEmpty(attrs, schema.UserTenantID, tenant)
		if a.HasText {
			lr.Body().SetStr(a.Text)
		}
		if a.Value != nil {
			attrs.PutStr(schema.ActivityValue, string(a.Value))
		}
		if a.Attachments != nil {
			attrs.PutStr(schema.ActivityAttachments, string(a.Attachments))
		}
		turn := a.ReplyToID
		if turn == "" {
			turn = lastUser
		}
		conv.stepAttributes(a, turn, attrs)
	}
	return st
}

// eventName: the user's messages and other activities as the Application
// Insights telemetry names them, the agent's messages as replies, every
// other activity of the agent under its kind.
func eventName(a *Activity) string {
	switch {
	case a.Role == RoleUser:
		return schema.EventMessageReceived
	case a.Role == RoleBot && a.Type == "message":
		return schema.EventMessageSend
	}
	return a.Kind
}

// settings reads the conversation's settings (ConversationInfo: design
// mode, locale; the first channel and user tenant named) before any record is written, so that every record of the
// conversation carries them, whatever its place in time.
func (conv *Conversation) settings(t *Transcript) {
	for i := range t.Activities {
		a := &t.Activities[i]
		if a.Kind != schema.EventConversationInfo || a.Value == nil {
			continue
		}
		var info struct {
			IsDesignMode json.RawMessage `json:"isDesignMode"`
			Locale       flexString      `json:"locale"`
		}
		if json.Unmarshal(a.Value, &info) != nil {
			continue
		}
		if v, ok := parseBool(info.IsDesignMode); ok {
			conv.designMode, conv.designKnown = v, true
		}
		if info.Locale != "" {
			conv.locale = string(info.Locale)
		}
	}
	for i := range t.Activities {
		if id := t.Activities[i].TenantID; id != "" && conv.userTenant == "" {
			conv.userTenant = id
		}
		if ch := t.Activities[i].ChannelID; ch != "" && conv.channel == "" {
			conv.channel = ch
		}
	}
}

func parseBool(raw json.RawMessage) (bool, bool) {
	switch strings.ToLower(strings.Trim(string(raw), `" `)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func putNonEmpty(attrs pcommon.Map, key, value string) {
	if value != "" {
		attrs.PutStr(key, value)
	}
}

// stepValue is the union of the plan, step, knowledge and error payloads.
type stepValue struct {
	PlanIdentifier      flexString        `json:"planIdentifier"`
	PlanID              flexString        `json:"planId"`
	Steps               []json.RawMessage `json:"steps"`
	IsFinalPlan         json.RawMessage   `json:"isFinalPlan"`
	WasCancelled        json.RawMessage   `json:"wasCancelled"`
	StepID              flexString        `json:"stepId"`
	TaskDialogID        flexString        `json:"taskDialogId"`
	Thought             flexString        `json:"thought"`
	State               json.RawMessage   `json:"state"`
	Type                flexString        `json:"type"`
	Arguments           json.RawMessage   `json:"arguments"`
	AutoFilledArguments []json.RawMessage `json:"autoFilledArguments"`
	Observation         json.RawMessage   `json:"observation"`
	ExecutionTime       flexString        `json:"executionTime"`
	Error               json.RawMessage   `json:"error"`
	MessageBlockedError json.RawMessage   `json:"messageBlockedError"`

	ToolID                 flexString        `json:"toolId"`
	KnowledgeSources       []json.RawMessage `json:"knowledgeSources"`
	OutputKnowledgeSources []json.RawMessage `json:"outputKnowledgeSources"`
	CitedKnowledgeSources  []json.RawMessage `json:"citedKnowledgeSources"`
	FailedKnowledgeTypes   []json.RawMessage `json:"failedKnowledgeSourcesTypes"`
	CompletionState        flexString        `json:"completionState"`

	ErrorCode      flexString      `json:"errorCode"`
	ErrorCodeOld   flexString      `json:"ErrorCode"`
	ErrorMessage   flexString      `json:"errorMessage"`
	ErrorSubCode   flexString      `json:"errorSubCode"`
	IsUserError    json.RawMessage `json:"isUserError"`
	ReasonCode     flexString      `json:"reasonCode"`
	HTTPStatusCode flexInt         `json:"HttpStatusCode"`
}

func (v *stepValue) planID() string {
	if v.PlanIdentifier != "" {
		return string(v.PlanIdentifier)
	}
	return string(v.PlanID)
}

// stepAttributes adds what a plan, step, knowledge or error activity says.
// turn is the user message the activity belongs to.
func (conv *Conversation) stepAttributes(a *Activity, turn string, attrs pcommon.Map) {
	switch a.Kind {
	case schema.EventPlanReceived, schema.EventPlanReceivedDebug, schema.EventPlanStepTriggered,
		schema.EventPlanStepBindUpdate, schema.EventPlanStepFinished, schema.EventPluginStepFinished,
		schema.EventPlanStepBlocked, schema.EventPlanFinished, schema.EventUniversalSearch,
		schema.EventKnowledgeTrace, schema.EventErrorTrace, schema.EventLegacyErrorCodeKind, schema.EventDynamicServerError:
	default:
		return
	}
	var v stepValue
	if a.Value == nil || json.Unmarshal(a.Value, &v) != nil {
		return // the raw value is still on the record
	}
	switch a.Kind {
	case schema.EventPlanReceived:
		putNonEmpty(attrs, schema.PlanID, v.planID())
		if len(v.Steps) > 0 {
			putStrings(attrs, schema.PlanToolIDs, v.Steps)
		}
		if b, ok := parseBool(v.IsFinalPlan); ok {
			attrs.PutBool(schema.PlanIsFinal, b)
		}
	case schema.EventPlanReceivedDebug:
		putNonEmpty(attrs, schema.PlanID, v.planID())
	case schema.EventPlanFinished:
		putNonEmpty(attrs, schema.PlanID, v.planID())
		if b, ok := parseBool(v.WasCancelled); ok {
			attrs.PutBool(schema.PlanCancelled, b)
		}
	case schema.EventPlanStepTriggered:
		s := &step{id: string(v.StepID), planID: v.planID(), toolID: string(v.TaskDialogID), toolType: string(v.Type), turn: turn}
		s.toolKind = schema.ToolKindOf(s.toolID, s.toolType)
		if s.id != "" {
			conv.steps[s.id] = s
		}
		if s.toolKind == schema.ToolKindKnowledge {
			conv.knowledge = append(conv.knowledge, s)
		}
		conv.putStep(attrs, s)
		putNonEmpty(attrs, schema.PlannerThought, string(v.Thought))
		attrs.PutStr(schema.StepState, schema.StepStateTriggered)
		putRaw(attrs, schema.StepStateRaw, v.State)
	case schema.EventPlanStepBindUpdate:
		s := conv.stepOf(&v, turn)
		conv.putStep(attrs, s)
		if !isNull(v.Arguments) {
			attrs.PutStr(schema.ToolArguments, string(v.Arguments))
		}
		if len(v.AutoFilledArguments) > 0 {
			putStrings(attrs, schema.ToolAutoFilled, v.AutoFilledArguments)
		}
	case schema.EventPlanStepFinished, schema.EventPluginStepFinished:
		s := conv.stepOf(&v, turn)
		s.finished = true
		conv.putStep(attrs, s)
		if !isNull(v.Observation) {
			attrs.PutStr(schema.ToolResult, string(v.Observation))
		}
		code, msg := errorOf(v.Error)
		attrs.PutStr(schema.StepState, finishedState(v.State, code != "" || msg != ""))
		putRaw(attrs, schema.StepStateRaw, v.State)
		if d, ok := parseDuration(string(v.ExecutionTime)); ok {
			attrs.PutInt(schema.StepDurationMS, d.Milliseconds())
		}
		putNonEmpty(attrs, schema.ErrorCode, code)
		putNonEmpty(attrs, schema.ErrorMessage, msg)
	case schema.EventPlanStepBlocked:
		s := conv.stepOf(&v, turn)
		s.finished = true
		conv.putStep(attrs, s)
		attrs.PutStr(schema.StepState, schema.StepStateBlocked)
		code, msg := errorOf(v.MessageBlockedError)
		putNonEmpty(attrs, schema.ErrorCode, code)
		putNonEmpty(attrs, schema.ErrorMessage, msg)
	case schema.EventUniversalSearch:
		if s := conv.openKnowledgeStep(turn); s != nil {
			putNonEmpty(attrs, schema.PlanID, s.planID)
			putNonEmpty(attrs, schema.ToolCallID, s.id)
		}
		toolID := string(v.ToolID)
		putNonEmpty(attrs, schema.ToolID, toolID)
		attrs.PutStr(schema.ToolKind, schema.ToolKindKnowledge)
		putStrings(attrs, schema.KnowledgeSources, v.KnowledgeSources)
		putStrings(attrs, schema.KnowledgeOutputSources, v.OutputKnowledgeSources)
	case schema.EventKnowledgeTrace:
		if s := conv.openKnowledgeStep(turn); s != nil {
			putNonEmpty(attrs, schema.PlanID, s.planID)
			putNonEmpty(attrs, schema.ToolCallID, s.id)
			putNonEmpty(attrs, schema.ToolID, s.toolID)
		}
		attrs.PutStr(schema.ToolKind, schema.ToolKindKnowledge)
		putNonEmpty(attrs, schema.KnowledgeCompletion, string(v.CompletionState))
		putStrings(attrs, schema.KnowledgeCitedSources, v.CitedKnowledgeSources)
		putStrings(attrs, schema.KnowledgeFailedTypes, v.FailedKnowledgeTypes)
	case schema.EventErrorTrace, schema.EventLegacyErrorCodeKind:
		code := string(v.ErrorCode)
		if code == "" {
			code = string(v.ErrorCodeOld)
		}
		putNonEmpty(attrs, schema.ErrorCode, code)
		putNonEmpty(attrs, schema.ErrorMessage, string(v.ErrorMessage))
		putNonEmpty(attrs, schema.ErrorSubCode, string(v.ErrorSubCode))
		if b, ok := parseBool(v.IsUserError); ok {
			attrs.PutBool(schema.ErrorIsUserError, b)
		}
	case schema.EventDynamicServerError:
		putNonEmpty(attrs, schema.ErrorCode, string(v.ReasonCode))
		putNonEmpty(attrs, schema.ErrorMessage, string(v.ErrorMessage))
		if v.HTTPStatusCode.ok {
			attrs.PutInt(schema.ErrorHTTPStatus, v.HTTPStatusCode.n)
		}
	}
}

// stepOf is the step an event names, as its Triggered event described it;
// an event whose Triggered was not seen describes the step itself.
func (conv *Conversation) stepOf(v *stepValue, turn string) *step {
	id := string(v.StepID)
	if s, ok := conv.steps[id]; ok && id != "" {
		if s.toolID == "" {
			s.toolID = string(v.TaskDialogID)
			s.toolKind = schema.ToolKindOf(s.toolID, s.toolType)
		}
		return s
	}
	s := &step{id: id, planID: v.planID(), toolID: string(v.TaskDialogID), turn: turn}
	s.toolKind = schema.ToolKindOf(s.toolID, "")
	if id != "" {
		conv.steps[id] = s
	}
	return s
}

func (conv *Conversation) putStep(attrs pcommon.Map, s *step) {
	putNonEmpty(attrs, schema.PlanID, s.planID)
	putNonEmpty(attrs, schema.ToolCallID, s.id)
	putNonEmpty(attrs, schema.ToolID, s.toolID)
	attrs.PutStr(schema.ToolKind, s.toolKind)
	putNonEmpty(attrs, schema.ToolType, s.toolType)
}

// openKnowledgeStep is the knowledge step a search result belongs to (it
// names no step): the turn's latest knowledge step still open, else the
// turn's latest knowledge step (KnowledgeTraceData can follow the step's
// end), else none: a search is never put on another turn's step.
func (conv *Conversation) openKnowledgeStep(turn string) *step {
	for i := len(conv.knowledge) - 1; i >= 0; i-- {
		if s := conv.knowledge[i]; !s.finished && s.turn == turn {
			return s
		}
	}
	for i := len(conv.knowledge) - 1; i >= 0; i-- {
		if s := conv.knowledge[i]; s.turn == turn {
			return s
		}
	}
	return nil
}

// finishedState reads a finished step's state: "completed", "failed",
// "blocked" (any case); an int or another word counts as failed when the
// step has an error and as completed otherwise (the raw value is kept in
// StepStateRaw).
func finishedState(raw json.RawMessage, hasError bool) string {
	switch strings.ToLower(strings.Trim(string(raw), `" `)) {
	case "completed", "succeeded", "success":
		return schema.StepStateCompleted
	case "failed", "faulted", "error":
		return schema.StepStateFailed
	case "blocked":
		return schema.StepStateBlocked
	}
	if hasError {
		return schema.StepStateFailed
	}
	return schema.StepStateCompleted
}

// errorOf reads {code, message} (or errorCode/errorMessage), or a plain text.
func errorOf(raw json.RawMessage) (code, message string) {
	if isNull(raw) {
		return "", ""
	}
	var e struct {
		Code         flexString `json:"code"`
		Message      flexString `json:"message"`
		ErrorCode    flexString `json:"errorCode"`
		ErrorMessage flexString `json:"errorMessage"`
	}
	if raw[0] == '{' && json.Unmarshal(raw, &e) == nil {
		code, message = string(e.Code), string(e.Message)
		if code == "" {
			code = string(e.ErrorCode)
		}
		if message == "" {
			message = string(e.ErrorMessage)
		}
		if code == "" && message == "" {
			message = string(raw)
		}
		return code, message
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return "", s
	}
	return "", string(raw)
}

// parseDuration reads .NET's TimeSpan text, [d.]hh:mm:ss[.fffffff].
func parseDuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	var days int64
	if dot, colon := strings.IndexByte(s, '.'), strings.IndexByte(s, ':'); dot >= 0 && colon > dot {
		d, err := strconv.ParseInt(s[:dot], 10, 64)
		if err != nil {
			return 0, false
		}
		days, s = d, s[dot+1:]
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	h, err1 := strconv.ParseInt(parts[0], 10, 64)
	m, err2 := strconv.ParseInt(parts[1], 10, 64)
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || m < 0 || sec < 0 {
		return 0, false
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec*float64(time.Second)), true
}

// putStrings writes a list: strings as they are, other values as JSON text.
func putStrings(attrs pcommon.Map, key string, values []json.RawMessage) {
	if len(values) == 0 {
		return
	}
	s := attrs.PutEmptySlice(key)
	s.EnsureCapacity(len(values))
	for _, raw := range values {
		var str string
		if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &str) == nil {
			s.AppendEmpty().SetStr(str)
		} else {
			s.AppendEmpty().SetStr(string(raw))
		}
	}
}

// putRaw writes a JSON scalar as text ("completed", 1).
func putRaw(attrs pcommon.Map, key string, raw json.RawMessage) {
	if isNull(raw) {
		return
	}
	var str string
	if raw[0] == '"' && json.Unmarshal(raw, &str) == nil {
		putNonEmpty(attrs, key, str)
		return
	}
	attrs.PutStr(key, string(raw))
}

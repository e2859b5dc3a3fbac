package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"strconv"
)

// What the transcripts receiver writes beyond the names the copilotstudio
// receiver shares (schema.go) and the plan and tool names (tools.go). It
// reads Copilot Studio's conversation transcripts from Dataverse
// (conversationtranscript) and writes one log record per activity: user
// messages as EventMessageReceived, agent messages as EventMessageSend, every
// other activity under its own kind (valueType, else name, else type), e.g.
// the plan and step events below.

// Event names of plan, step, knowledge and error activities: the
// activity's kind, exactly as Copilot Studio writes it.
const (
	EventPlanReceived        = "DynamicPlanReceived"
	EventPlanReceivedDebug   = "DynamicPlanReceivedDebug"
	EventPlanStepTriggered   = "DynamicPlanStepTriggered"
	EventPlanStepBindUpdate  = "DynamicPlanStepBindUpdate"
	EventPlanStepFinished    = "DynamicPlanStepFinished"
	EventPlanStepBlocked     = "DynamicPlanStepBlocked"
	EventPlanFinished        = "DynamicPlanFinished"
	EventUniversalSearch     = "UniversalSearchToolTraceData"
	EventKnowledgeTrace      = "KnowledgeTraceData"
	EventErrorTrace          = "ErrorTraceData"
	EventDynamicServerError  = "DynamicServerError"
	EventConversationInfo    = "ConversationInfo"
	EventSessionInfo         = "SessionInfo"
	EventPluginStepFinished  = "DynamicPlanAIPluginStepFinished" // a Dynamics 365 variant of EventPlanStepFinished
	EventLegacyErrorCodeKind = "ErrorCode"                       // older content's error trace
)

// PlanEvents are the plan and step kinds: a turn with one of them was
// planned by the generative orchestrator.
var PlanEvents = []string{
	EventPlanReceived, EventPlanReceivedDebug, EventPlanStepTriggered, EventPlanStepBindUpdate,
	EventPlanStepFinished, EventPlanStepBlocked, EventPlanFinished, EventPluginStepFinished,
}

// Resource attributes of transcript records.
const (
	// DataverseURL is the environment the transcripts were read from.
	DataverseURL = "copilotstudio.dataverse.url"
	// Source says which source the records came from: SourceTranscripts
	// here (the copilotstudio receiver's resources have AppInsightsAppID).
	Source            = "copilotstudio.source"
	SourceTranscripts = "dataverse_transcripts"
)

// Record attributes of transcript records (besides EventName, ItemID,
// ConversationID, ActivityID, ReplyToActivityID, ActivityType, ActivityName,
// ActivityValue, ChannelID, Locale, DesignMode, UserID of schema.go).
const (
	TranscriptID        = "copilotstudio.transcript.id"         // conversationtranscriptid: the row
	TranscriptBatchID   = "copilotstudio.transcript.batch_id"   // int: metadata.BatchId, the piece of a split conversation
	TranscriptStartTime = "copilotstudio.transcript.start_time" // conversationstarttime, RFC 3339
	ActivityValueType   = "copilotstudio.activity.value_type"   // valueType, as sent
	ActivityRole        = "copilotstudio.activity.from.role"    // RoleUser or RoleBot
	ActivityIndex       = "copilotstudio.activity.index"        // int: position in the row's activities array
	ActivityAttachments = "copilotstudio.activity.attachments"  // JSON text of attachments (cards), when not empty
	UserAADObjectID     = "copilotstudio.user.aad_object_id"    // the user's Entra object id (from.aadObjectId)
	ErrorSubCode        = "copilotstudio.error.sub_code"        // ErrorTraceData.errorSubCode
	ErrorIsUserError    = "copilotstudio.error.is_user_error"   // bool: ErrorTraceData.isUserError
	ErrorHTTPStatus     = "copilotstudio.error.http_status"     // int: DynamicServerError.HttpStatusCode

	PlanToolIDs      = "copilotstudio.plan.tool_ids"     // slice: DynamicPlanReceived.steps, the tools the plan will call
	PlanIsFinal      = "copilotstudio.plan.is_final"     // bool: DynamicPlanReceived.isFinalPlan
	PlanCancelled    = "copilotstudio.plan.cancelled"    // bool: DynamicPlanFinished.wasCancelled
	StepStateRaw     = "copilotstudio.step.state_raw"    // the step's state as sent (1, "inProgress", "completed", ...)
	ToolAutoFilled   = "copilotstudio.tool.auto_filled"  // slice: argument names the planner filled itself
	KnowledgeSources = "copilotstudio.knowledge.sources" // slice: knowledge sources searched

	KnowledgeOutputSources = "copilotstudio.knowledge.output_sources"      // slice: sources that returned results
	KnowledgeCitedSources  = "copilotstudio.knowledge.cited_sources"       // slice: sources the answer cited
	KnowledgeFailedTypes   = "copilotstudio.knowledge.failed_source_types" // slice
	KnowledgeCompletion    = "copilotstudio.knowledge.completion_state"    // KnowledgeTraceData.completionState
)

// Values of ActivityRole: Bot Framework's from.role, 1 and 0 in transcripts.
const (
	RoleUser = "user"
	RoleBot  = "bot"
)

// TranscriptItemID is the item id of one activity of a transcript: stable
// for the same activity however often, and in whichever row, it is read
// (a row read again in the cursor's overlap, a piece of a split
// conversation repeating an activity), so that every de-duplication on
// ItemID downstream drops the repeat. conversation is the transcript's name
// (conversation id and agent id); activityID, kind and timestampMS are the
// activity's de-duplication key; an activity without an id is also told
// apart by its value (raw JSON text) and text. The result has a GUID's
// shape (the pairing processor stores GUIDs compactly).
func TranscriptItemID(conversation, activityID, kind string, timestampMS int64, value []byte, text string) string {
	content := ""
	if activityID == "" {
		h := fnv.New64a()
		h.Write(value)
		h.Write([]byte{0})
		h.Write([]byte(text))
		content = strconv.FormatUint(h.Sum64(), 16)
	}
	h := sha256.New()
	for _, part := range []string{"copilotstudio-transcript-activity", conversation, activityID, kind, strconv.FormatInt(timestampMS, 10), content} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8: custom
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

package transcript

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

const (
	botID    = "198eca5f-0000-4000-8000-000000000b01"
	convID   = "8YYe8iif49ZKkycZLe7HUO-o"
	tenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
)

var createdOn = time.Date(2026, 1, 1, 10, 40, 0, 0, time.UTC)

func exampleContent(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/example.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newRow(content string) *Row {
	return &Row{
		ID: "a0a0a0a0-0000-4000-8000-000000000001", Name: convID + "_" + botID, Content: content,
		Metadata:          `{"BotId":"` + botID + `","AADTenantId":"` + tenantID + `","BotName":"crx_helpdesk","BatchId":0}`,
		ConversationStart: "2026-01-01T10:00:00Z", BotID: botID, CreatedOn: createdOn,
	}
}

// rec is a record reduced to what the tests compare.
type rec struct {
	event string
	attrs map[string]any
	body  string
	ts    int64
}

func records(t *testing.T, conv *Conversation, rows ...*Row) ([]rec, Stats) {
	t.Helper()
	var total Stats
	logs := plog.NewLogRecordSlice()
	for _, row := range rows {
		tr, err := Parse(row, 0)
		if err != nil {
			t.Fatalf("Parse(%s): %v", row.ID, err)
		}
		st := tr.AppendRecords(conv, "IT Helpdesk", logs)
		total.Records += st.Records
		total.Duplicates += st.Duplicates + tr.Duplicates
	}
	out := make([]rec, 0, logs.Len())
	for _, lr := range logs.All() {
		out = append(out, rec{event: lr.EventName(), attrs: lr.Attributes().AsRaw(), body: lr.Body().Str(), ts: lr.Timestamp().AsTime().UnixMilli()})
	}
	return out, total
}

func events(rs []rec) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.event
	}
	return out
}

func find(t *testing.T, rs []rec, event string) rec {
	t.Helper()
	for _, r := range rs {
		if r.event == event {
			return r
		}
	}
	t.Fatalf("no %s record among %v", event, events(rs))
	return rec{}
}

func wantAttrs(t *testing.T, r rec, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, ok := r.attrs[k]
		if v == nil {
			if ok {
				t.Errorf("%s: %s = %v, want it absent", r.event, k, got)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: %s missing, want %v", r.event, k, v)
			continue
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(v)
		if string(gb) != string(wb) {
			t.Errorf("%s: %s = %s, want %s", r.event, k, gb, wb)
		}
	}
}

var guidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestReferenceExample(t *testing.T) {
	rs, st := records(t, NewConversation(), newRow(exampleContent(t)))
	want := []string{
		schema.EventConversationInfo, schema.EventMessageReceived, schema.EventPlanReceived, schema.EventPlanStepTriggered,
		schema.EventPlanStepBindUpdate, schema.EventPlanStepFinished, schema.EventMessageSend, schema.EventPlanFinished, schema.EventSessionInfo,
	}
	if !slices.Equal(events(rs), want) || st.Records != 9 || st.Duplicates != 0 {
		t.Fatalf("events %v (%+v), want %v", events(rs), st, want)
	}
	ids := map[string]bool{}
	for _, r := range rs {
		// Every record: the conversation from the name, the settings of
		// ConversationInfo, the tenant of the metadata.
		wantAttrs(t, r, map[string]any{
			schema.ConversationID: convID, schema.DesignMode: false, schema.Locale: "en-US",
			schema.UserTenantID: tenantID, schema.TranscriptID: "a0a0a0a0-0000-4000-8000-000000000001",
			schema.TranscriptBatchID: 0, schema.AgentName: "IT Helpdesk", schema.ChannelID: "msteams",
		})
		id := r.attrs[schema.ItemID].(string)
		if !guidShape.MatchString(id) || ids[id] {
			t.Errorf("%s: item id %q is not a fresh GUID", r.event, id)
		}
		ids[id] = true
	}
	user := find(t, rs, schema.EventMessageReceived)
	if user.body != "Is ticket 4711 closed?" || user.ts != 1767261601000 {
		t.Errorf("user message body %q at %d", user.body, user.ts)
	}
	wantAttrs(t, user, map[string]any{
		schema.ActivityType: "message", schema.ActivityID: "1767261601000", schema.ActivityRole: schema.RoleUser,
		schema.UserID: "u-1", schema.UserAADObjectID: "11111111-aaaa-bbbb-cccc-000000000001",
		schema.ActivityAttachments: nil, schema.ReplyToActivityID: nil,
	})
	reply := find(t, rs, schema.EventMessageSend)
	if reply.body != "Ticket 4711 is closed." {
		t.Errorf("reply body %q", reply.body)
	}
	wantAttrs(t, reply, map[string]any{
		schema.ReplyToActivityID: "1767261601000", schema.ActivityID: "m-2", schema.ActivityRole: schema.RoleBot, schema.UserID: nil,
	})
	wantAttrs(t, find(t, rs, schema.EventPlanReceived), map[string]any{
		schema.PlanID: "p-1", schema.PlanToolIDs: []string{"crx_helpdesk.action.GetTicket"}, schema.PlanIsFinal: false,
		schema.ReplyToActivityID: "1767261601000", schema.ActivityName: schema.EventPlanReceived, schema.ActivityValueType: schema.EventPlanReceived,
		schema.ActivityValue: `{"planIdentifier":"p-1","steps":["crx_helpdesk.action.GetTicket"],"isFinalPlan":false}`,
	})
	step := map[string]any{
		schema.PlanID: "p-1", schema.ToolCallID: "s-1", schema.ToolID: "crx_helpdesk.action.GetTicket",
		schema.ToolKind: schema.ToolKindAction, schema.ToolType: "Action", schema.ReplyToActivityID: "1767261601000",
	}
	wantAttrs(t, find(t, rs, schema.EventPlanStepTriggered), with(step, map[string]any{
		schema.PlannerThought: "Look up the ticket status.", schema.StepState: schema.StepStateTriggered, schema.StepStateRaw: "1",
	}))
	// BindUpdate has no valueType: its kind is its name.
	wantAttrs(t, find(t, rs, schema.EventPlanStepBindUpdate), with(step, map[string]any{
		schema.ToolArguments: `{"ticketId":"4711"}`, schema.ActivityValueType: nil,
	}))
	wantAttrs(t, find(t, rs, schema.EventPlanStepFinished), with(step, map[string]any{
		schema.ToolResult: `{"Response":{"status":"Closed"}}`, schema.StepState: schema.StepStateCompleted,
		schema.StepDurationMS: 1780, schema.ErrorCode: nil,
	}))
	// DynamicPlanFinished says planId, not planIdentifier.
	wantAttrs(t, find(t, rs, schema.EventPlanFinished), map[string]any{schema.PlanID: "p-1"})
}

func with(base, more map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// activities builds content from activity objects.
func activities(acts ...string) string { return `{"activities":[` + strings.Join(acts, ",") + `]}` }

func TestOrderByTimeThenArrayIndex(t *testing.T) {
	content := activities(
		`{"type":"message","id":"m-3","timestampMs":3000,"from":{"id":"b","role":0},"text":"third"}`,
		`{"type":"message","id":"m-1","timestamp":1,"from":{"id":"u","role":1},"text":"first (seconds only)"}`,
		`{"type":"message","id":"m-2a","timestampMs":2000,"from":{"id":"b","role":0},"text":"second a"}`,
		`{"type":"message","id":"m-2b","timestampMs":2000,"from":{"id":"b","role":0},"text":"second b"}`,
	)
	rs, _ := records(t, NewConversation(), newRow(content))
	var bodies []string
	for _, r := range rs {
		bodies = append(bodies, r.body)
	}
	if want := []string{"first (seconds only)", "second a", "second b", "third"}; !slices.Equal(bodies, want) {
		t.Fatalf("order %q, want %q", bodies, want)
	}
	if rs[0].ts != 1000 {
		t.Errorf("timestamp in seconds read as %d ms, want 1000", rs[0].ts)
	}
	if rs[1].attrs[schema.ActivityIndex] != int64(2) {
		t.Errorf("activity index %v, want the array position 2", rs[1].attrs[schema.ActivityIndex])
	}
}

func TestDuplicateActivities(t *testing.T) {
	content := activities(
		`{"type":"message","id":"u-1","timestampMs":1000,"from":{"id":"u","role":1},"text":"hello"}`,
		`{"type":"message","id":"u-1","timestampMs":1000,"from":{"id":"u","role":1},"text":"hello"}`,
		// Same id, other kind: not a repeat.
		`{"type":"event","name":"startConversation","id":"u-1","timestampMs":1000,"from":{"id":"u","role":1}}`,
		// No id, same kind and time, other content: two activities.
		`{"type":"trace","valueType":"VariableAssignment","timestampMs":1500,"from":{"role":0},"value":{"id":"Global.A","newValue":"1"}}`,
		`{"type":"trace","valueType":"VariableAssignment","timestampMs":1500,"from":{"role":0},"value":{"id":"Global.B","newValue":"2"}}`,
		// No id, same everything: a repeat.
		`{"type":"trace","valueType":"VariableAssignment","timestampMs":1500,"from":{"role":0},"value":{"id":"Global.B","newValue":"2"}}`,
	)
	rs, st := records(t, NewConversation(), newRow(content))
	if st.Records != 4 || st.Duplicates != 2 {
		t.Fatalf("records %d, duplicates %d; want 4 and 2 (%v)", st.Records, st.Duplicates, events(rs))
	}
}

func TestSplitAndResumedConversation(t *testing.T) {
	first := newRow(activities(
		`{"type":"trace","valueType":"ConversationInfo","timestampMs":900,"from":{"role":0},"value":{"isDesignMode":"True","locale":"de-DE"}}`,
		`{"type":"message","id":"u-1","timestampMs":1000,"from":{"id":"u","role":1},"channelId":"webchat","text":"hello"}`,
		`{"type":"event","name":"DynamicPlanStepTriggered","id":"e-1","timestampMs":1100,"from":{"role":0},"replyToId":"u-1","value":{"planIdentifier":"p","stepId":"s-9","taskDialogId":"P:UniversalSearchTool","state":1,"type":"KnowledgeSource"}}`,
	))
	second := newRow(activities(
		// Repeats the user message of the first piece.
		`{"type":"message","id":"u-1","timestampMs":1000,"from":{"id":"u","role":1},"channelId":"webchat","text":"hello"}`,
		`{"type":"event","name":"UniversalSearchToolTraceData","id":"e-2","timestampMs":1200,"from":{"role":0},"replyToId":"u-1","value":{"toolId":"P:UniversalSearchTool","knowledgeSources":["crx_kb.knowledge.Wiki"],"outputKnowledgeSources":["crx_kb.knowledge.Wiki"]}}`,
		`{"type":"message","id":"m-1","timestampMs":1300,"from":{"role":0},"replyToId":"u-1","channelId":"webchat","text":"answer"}`,
	))
	second.ID, second.Metadata = "a0a0a0a0-0000-4000-8000-000000000002", `{"BatchId":"1"}`
	rs, st := records(t, NewConversation(), first, second)
	if st.Records != 5 || st.Duplicates != 1 {
		t.Fatalf("records %d, duplicates %d; want 5 and 1 (%v)", st.Records, st.Duplicates, events(rs))
	}
	search := find(t, rs, schema.EventUniversalSearch)
	// The second piece has no ConversationInfo: the first piece's settings hold.
	wantAttrs(t, search, map[string]any{
		schema.DesignMode: true, schema.Locale: "de-DE", schema.TranscriptBatchID: 1,
		// No step id in the search: it belongs to the turn's open knowledge step.
		schema.ToolCallID: "s-9", schema.PlanID: "p", schema.ToolKind: schema.ToolKindKnowledge,
		schema.KnowledgeSources: []string{"crx_kb.knowledge.Wiki"}, schema.KnowledgeOutputSources: []string{"crx_kb.knowledge.Wiki"},
	})
	// The same activity read from another row has the same item id.
	t1, _ := Parse(first, 0)
	t2, _ := Parse(second, 0)
	if t1.Activities[1].ItemID != t2.Activities[0].ItemID {
		t.Error("the user message repeated in the second piece has another item id")
	}
	// A resumed conversation: same name, another row, new activities.
	resumed := newRow(activities(`{"type":"message","id":"u-2","timestampMs":99000,"from":{"id":"u","role":1},"text":"back again"}`))
	resumed.ID, resumed.ConversationStart = "a0a0a0a0-0000-4000-8000-000000000003", "2026-01-01T11:00:00Z"
	rs2, _ := records(t, NewConversation(), resumed)
	wantAttrs(t, rs2[0], map[string]any{schema.ConversationID: convID, schema.TranscriptStartTime: "2026-01-01T11:00:00Z"})
}

func TestStepStatesAndErrors(t *testing.T) {
	content := activities(
		`{"type":"message","id":"u-1","timestampMs":1000,"from":{"id":"u","role":1},"channelId":"pva-studio","text":"send the mail"}`,
		`{"type":"event","name":"DynamicPlanReceived","timestampMs":1010,"from":{"role":0},"replyToId":"u-1","value":{"planId":"p-2","steps":["MCP:cr1_bot.topic.github:create_issue","cr1_bot.action.Office365Outlook-SendanemailV2","cr1_bot.InvokeConnectedAgentTaskAction.Payroll"],"isFinalPlan":true}}`,
		// test-pane spelling of the state
		`{"type":"event","name":"DynamicPlanStepTriggered","timestampMs":1020,"from":{"role":0},"replyToId":"u-1","value":{"planIdentifier":"p-2","stepId":"s-1","taskDialogId":"MCP:cr1_bot.topic.github:create_issue","state":"inProgress","thought":"File it."}}`,
		`{"type":"event","name":"DynamicPlanStepFinished","timestampMs":1030,"from":{"role":0},"replyToId":"u-1","value":{"planIdentifier":"p-2","stepId":"s-1","state":"failed","executionTime":"1.00:00:02.5","error":{"code":"ConnectorError","message":"401 from GitHub"}}}`,
		`{"type":"event","name":"DynamicPlanStepTriggered","timestampMs":1040,"from":{"role":0},"replyToId":"u-1","value":{"planIdentifier":"p-2","stepId":"s-2","taskDialogId":"cr1_bot.action.Office365Outlook-SendanemailV2","state":1,"type":"Action"}}`,
		`{"type":"event","name":"DynamicPlanStepBlocked","timestampMs":1050,"from":{"role":0},"replyToId":"u-1","value":{"stepId":"s-2","taskDialogId":"cr1_bot.action.Office365Outlook-SendanemailV2","messageBlockedError":{"code":"ContentFiltered","message":"blocked by policy"}}}`,
		// never finishes
		`{"type":"event","name":"DynamicPlanStepTriggered","timestampMs":1060,"from":{"role":0},"replyToId":"u-1","value":{"planIdentifier":"p-2","stepId":"s-3","taskDialogId":"cr1_bot.InvokeConnectedAgentTaskAction.Payroll","state":1}}`,
		`{"type":"trace","valueType":"ErrorTraceData","timestampMs":1070,"from":{"role":0},"replyToId":"u-1","value":{"errorCode":"FlowActionException","errorMessage":"boom","errorSubCode":"x","isUserError":false}}`,
		`{"type":"event","name":"DynamicServerError","timestampMs":1080,"from":{"role":0},"replyToId":"u-1","value":{"reasonCode":"McpServerUnavailable","errorMessage":"timeout","HttpStatusCode":504}}`,
		// int state on a finished step
		`{"type":"event","name":"DynamicPlanStepFinished","timestampMs":1090,"from":{"role":0},"replyToId":"u-1","value":{"planIdentifier":"p-2","stepId":"s-4","taskDialogId":"cr1_bot.topic.Escalate","state":2}}`,
	)
	rs, _ := records(t, NewConversation(), newRow(content))
	byStep := func(event, stepID string) rec {
		for _, r := range rs {
			if r.event == event && r.attrs[schema.ToolCallID] == stepID {
				return r
			}
		}
		t.Fatalf("no %s of step %s", event, stepID)
		return rec{}
	}
	wantAttrs(t, find(t, rs, schema.EventPlanReceived), map[string]any{schema.PlanID: "p-2", schema.PlanIsFinal: true, schema.DesignMode: true})
	wantAttrs(t, byStep(schema.EventPlanStepTriggered, "s-1"), map[string]any{schema.ToolKind: schema.ToolKindMCP, schema.StepState: schema.StepStateTriggered, schema.StepStateRaw: "inProgress"})
	wantAttrs(t, byStep(schema.EventPlanStepFinished, "s-1"), map[string]any{
		schema.StepState: schema.StepStateFailed, schema.ErrorCode: "ConnectorError", schema.ErrorMessage: "401 from GitHub",
		schema.StepDurationMS: 24*3600*1000 + 2500, schema.ToolID: "MCP:cr1_bot.topic.github:create_issue",
	})
	wantAttrs(t, byStep(schema.EventPlanStepBlocked, "s-2"), map[string]any{
		schema.StepState: schema.StepStateBlocked, schema.ErrorCode: "ContentFiltered", schema.PlanID: "p-2", schema.ToolKind: schema.ToolKindAction,
	})
	wantAttrs(t, byStep(schema.EventPlanStepTriggered, "s-3"), map[string]any{schema.ToolKind: schema.ToolKindConnectedAgent, schema.StepState: schema.StepStateTriggered})
	wantAttrs(t, byStep(schema.EventPlanStepFinished, "s-4"), map[string]any{schema.StepState: schema.StepStateCompleted, schema.StepStateRaw: "2", schema.ToolKind: schema.ToolKindTopic})
	wantAttrs(t, find(t, rs, schema.EventErrorTrace), map[string]any{
		schema.ErrorCode: "FlowActionException", schema.ErrorMessage: "boom", schema.ErrorSubCode: "x", schema.ErrorIsUserError: false,
	})
	wantAttrs(t, find(t, rs, schema.EventDynamicServerError), map[string]any{schema.ErrorCode: "McpServerUnavailable", schema.ErrorHTTPStatus: 504})
	for _, r := range rs {
		if r.event == schema.EventPlanStepFinished && r.attrs[schema.ToolCallID] == "s-3" {
			t.Error("a step that never finished got a finish")
		}
	}
}

func TestKnowledgeTraceAfterTheStepEnded(t *testing.T) {
	content := activities(
		`{"type":"message","id":"u-1","timestampMs":1000,"from":{"id":"u","role":1},"text":"q1"}`,
		`{"type":"event","name":"DynamicPlanStepTriggered","timestampMs":1010,"from":{"role":0},"replyToId":"u-1","value":{"planIdentifier":"p","stepId":"k-1","taskDialogId":"P:UniversalSearchTool","type":"KnowledgeSource"}}`,
		`{"type":"event","name":"DynamicPlanStepFinished","timestampMs":1020,"from":{"role":0},"replyToId":"u-1","value":{"planIdentifier":"p","stepId":"k-1","state":"completed"}}`,
		`{"type":"trace","valueType":"KnowledgeTraceData","timestampMs":1030,"from":{"role":0},"replyToId":"u-1","value":{"completionState":"Answered","citedKnowledgeSources":["Wiki"],"failedKnowledgeSourcesTypes":[]}}`,
		// another turn's search with no knowledge step: attached to none
		`{"type":"message","id":"u-2","timestampMs":2000,"from":{"id":"u","role":1},"text":"q2"}`,
		`{"type":"event","name":"UniversalSearchToolTraceData","timestampMs":2010,"from":{"role":0},"replyToId":"u-2","value":{"toolId":"P:UniversalSearchTool","knowledgeSources":[{"name":"odd"}]}}`,
	)
	rs, _ := records(t, NewConversation(), newRow(content))
	wantAttrs(t, find(t, rs, schema.EventKnowledgeTrace), map[string]any{
		schema.ToolCallID: "k-1", schema.KnowledgeCompletion: "Answered", schema.KnowledgeCitedSources: []string{"Wiki"},
	})
	wantAttrs(t, find(t, rs, schema.EventUniversalSearch), map[string]any{
		schema.ToolCallID: nil, schema.KnowledgeSources: []string{`{"name":"odd"}`},
	})
}

func TestLenientFields(t *testing.T) {
	content := activities(
		// Teams ids as numbers, ISO timestamp, role as a word, channelData tenant
		`{"type":"message","id":1767261601000,"timestamp":"2026-01-01T10:00:01Z","from":{"id":29,"role":"user"},"text":"hi","channelData":{"tenant":{"id":"t-2"}},"locale":"fr-FR"}`,
		`{"type":"message","id":"x","timestamp":1767261602,"from":{"role":"bot"},"text":"","attachments":[{"contentType":"application/vnd.microsoft.card.oauth"}],"channelData":"not an object"}`,
		`{"type":"typing","timestamp":1767261603,"from":{"role":0}}`,
		`{"type":"message","timestamp":1767261604,"text":"who said this?"}`,
	)
	rs, _ := records(t, NewConversation(), newRow(content))
	wantAttrs(t, rs[0], map[string]any{schema.ActivityID: "1767261601000", schema.UserID: "29", schema.UserTenantID: "t-2", schema.Locale: "fr-FR"})
	if rs[0].ts != time.Date(2026, 1, 1, 10, 0, 1, 0, time.UTC).UnixMilli() {
		t.Errorf("ISO timestamp read as %d", rs[0].ts)
	}
	if rs[1].event != schema.EventMessageSend || rs[1].attrs[schema.ActivityAttachments] == nil {
		t.Errorf("bot card: %s %v", rs[1].event, rs[1].attrs)
	}
	if rs[2].event != "typing" {
		t.Errorf("typing became %s", rs[2].event)
	}
	// No role: neither a request nor a reply.
	if rs[3].event != "message" || rs[3].attrs[schema.ActivityRole] != nil {
		t.Errorf("message without role became %s %v", rs[3].event, rs[3].attrs)
	}
}

func TestNameSplitsOnTheLastUnderscore(t *testing.T) {
	for name, want := range map[string][2]string{
		"a:1_b_c_" + botID: {"a:1_b_c", botID},
		"noUnderscore":     {"noUnderscore", ""},
	} {
		row := newRow(activities())
		row.Name, row.BotID = name, ""
		tr, err := Parse(row, 0)
		if err != nil {
			t.Fatal(err)
		}
		if tr.ConversationID != want[0] || tr.AgentID != want[1] {
			t.Errorf("%q: conversation %q agent %q, want %q", name, tr.ConversationID, tr.AgentID, want)
		}
	}
}

func TestBadContent(t *testing.T) {
	example := exampleContent(t)
	for _, c := range []struct {
		name, content, reason string
		max                   int
	}{
		{"not JSON", "<html>Service Unavailable</html>", ReasonNotJSON, 0},
		{"cut", example[:len(example)/2], ReasonTruncated, 0},
		{"empty", "", ReasonTruncated, 0},
		{"no activities", `{"foo":[]}`, ReasonNotTranscript, 0},
		{"activities not an array", `{"activities":"x"}`, ReasonNotTranscript, 0},
		{"activity not an object", `{"activities":[1]}`, ReasonNotTranscript, 0},
		{"too large", example, ReasonTooLarge, 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(newRow(c.content), c.max)
			var e *Error
			if !errors.As(err, &e) || e.Reason != c.reason {
				t.Fatalf("err = %v, want reason %s", err, c.reason)
			}
			if len(c.content) > 20 && strings.Contains(e.Error(), c.content[10:20]) {
				t.Errorf("the error quotes the content: %v", e)
			}
		})
	}
}

func TestItemIDsStableAcrossReads(t *testing.T) {
	content := exampleContent(t)
	a, _ := Parse(newRow(content), 0)
	b, _ := Parse(newRow(content), 0)
	for i := range a.Activities {
		if a.Activities[i].ItemID != b.Activities[i].ItemID {
			t.Fatalf("activity %d: item id %s then %s", i, a.Activities[i].ItemID, b.Activities[i].ItemID)
		}
	}
	other := newRow(content)
	other.Name = "other_" + botID
	c, _ := Parse(other, 0)
	if c.Activities[1].ItemID == a.Activities[1].ItemID {
		t.Error("two conversations share an item id")
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"00:00:01.7800000": 1780 * time.Millisecond,
		"01:02:03":         time.Hour + 2*time.Minute + 3*time.Second,
		"2.00:00:00":       48 * time.Hour,
	} {
		if got, ok := parseDuration(in); !ok || got != want {
			t.Errorf("parseDuration(%q) = %v %v, want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "abc", "1:2", "-1:00:00"} {
		if _, ok := parseDuration(bad); ok {
			t.Errorf("parseDuration(%q) accepted", bad)
		}
	}
}

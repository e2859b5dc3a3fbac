package transcript

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// TestWorkloadGroundTruth: the generated transcripts, read row by row in
// createdon order (pieces and repeats included), give every activity of the
// ground truth exactly once, with its turn's texts and step states.
func TestWorkloadGroundTruth(t *testing.T) {
	w := workload.GenerateTranscripts(workload.DefaultTranscriptConfig(11, 400))
	convs := map[string]*Conversation{}
	logs := plog.NewLogRecordSlice()
	for i := range w.Rows {
		r := &w.Rows[i]
		tr, err := Parse(&Row{ID: r.ID, Name: r.Name, Content: r.Content, Metadata: r.Metadata, BotID: r.BotID, CreatedOn: r.CreatedOn}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if convs[r.Name] == nil {
			convs[r.Name] = NewConversation()
		}
		tr.AppendRecords(convs[r.Name], "agent", logs)
	}
	byItem := map[string]plog.LogRecord{}
	for _, lr := range logs.All() {
		id, _ := lr.Attributes().Get(schema.ItemID)
		if _, dup := byItem[id.Str()]; dup {
			t.Fatalf("item %s emitted twice", id.Str())
		}
		byItem[id.Str()] = lr
	}
	want := len(w.ConversationItemIDs)
	for _, id := range w.ConversationItemIDs {
		if _, ok := byItem[id]; !ok {
			t.Fatalf("conversation-level item %s missing", id)
		}
	}
	for _, turn := range w.Turns {
		want += len(turn.ItemIDs)
		var replies []string
		steps := map[string]string{}
		for _, id := range turn.ItemIDs {
			lr, ok := byItem[id]
			if !ok {
				t.Fatalf("turn %d of %s: item %s missing", turn.Index, turn.ConversationID, id)
			}
			attrs := lr.Attributes()
			switch lr.EventName() {
			case schema.EventMessageReceived:
				if lr.Body().Str() != turn.RequestText {
					t.Errorf("request %q, want %q", lr.Body().Str(), turn.RequestText)
				}
			case schema.EventMessageSend:
				replies = append(replies, lr.Body().Str())
			case schema.EventPlanStepTriggered, schema.EventPlanStepFinished, schema.EventPlanStepBlocked:
				step, _ := attrs.Get(schema.ToolCallID)
				state, _ := attrs.Get(schema.StepState)
				steps[step.Str()] = state.Str()
			}
		}
		if len(replies) != len(turn.Replies) {
			t.Errorf("turn %d of %s: %d replies, want %d", turn.Index, turn.ConversationID, len(replies), len(turn.Replies))
		}
		for _, st := range turn.Steps {
			if steps[st.StepID] != st.State {
				t.Errorf("step %s (%s): state %q, want %q", st.StepID, st.ToolKind, steps[st.StepID], st.State)
			}
		}
	}
	if len(byItem) != want {
		t.Errorf("%d records, ground truth holds %d activities", len(byItem), want)
	}
}

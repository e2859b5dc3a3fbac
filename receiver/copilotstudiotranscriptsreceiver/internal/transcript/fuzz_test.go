package transcript

import (
	"errors"
	"os"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// FuzzParse: any content and metadata either parse, giving one record per
// kept activity with a unique item id and the conversation id, or fail with
// an *Error that has a reason; never a panic.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example), `{"BatchId":0}`)
	f.Add(string(example[:len(example)/3]), `{"BatchId":"1"}`)
	f.Add(`{"activities":[{"type":"message","id":1,"timestamp":"x","from":{"role":"user"}}]}`, ``)
	f.Add(`{"activities":[{"type":"event","name":"DynamicPlanStepFinished","value":{"stepId":"s","state":3,"error":"x","executionTime":"9.99:99:99"}}]}`, `nope`)
	f.Add(`{"activities":null}`, `{"BatchId":1e400}`)
	f.Fuzz(func(t *testing.T, content, metadata string) {
		row := newRow(content)
		row.Metadata = metadata
		tr, err := Parse(row, 4<<20)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" {
				t.Fatalf("error %v is not a transcript.Error with a reason", err)
			}
			return
		}
		logs := plog.NewLogRecordSlice()
		st := tr.AppendRecords(NewConversation(), "agent", logs)
		if st.Records != len(tr.Activities) || logs.Len() != st.Records {
			t.Fatalf("%d records for %d activities", logs.Len(), len(tr.Activities))
		}
		ids := map[string]bool{}
		for _, lr := range logs.All() {
			id, _ := lr.Attributes().Get(schema.ItemID)
			conv, _ := lr.Attributes().Get(schema.ConversationID)
			if ids[id.Str()] || conv.Str() != convID {
				t.Fatalf("item id %q repeated or conversation %q", id.Str(), conv.Str())
			}
			ids[id.Str()] = true
		}
	})
}

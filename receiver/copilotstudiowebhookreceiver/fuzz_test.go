package copilotstudiowebhookreceiver

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

// FuzzDecodeToolCall: whatever the body, decoding either gives a call whose
// record can be built, or a bad request with a known reason; never a panic.
func FuzzDecodeToolCall(f *testing.F) {
	f.Add(webhookclient.Example())
	for _, c := range webhookclient.Generate(1, len(webhookclient.Variants), webhookclient.Options{}) {
		f.Add(c.Body)
	}
	for _, s := range []string{"", "null", "[]", `"x"`, "{", `{"conversationMetadata":{"agent":"x"}}`,
		`{"plannerContext":{"previousToolsOutputs":[1],"previousToolOutputs":{"a":1}}}`, `{"inputValues":[[[[[[[]]]]]]]}`,
		`{"conversationMetadata":{"incomingClientIp":"::ffff:1.2.3.4","user":{"tenantId":"A"},"agent":{"tenantId":"a"}}}`} {
		f.Add([]byte(s))
	}
	reasons := []string{badNotJSON, badNotObject, badTooDeep, badWrongType}
	f.Fuzz(func(t *testing.T, body []byte) {
		call, err := decodeToolCall(body)
		if err != nil {
			var bad *badRequest
			if !errors.As(err, &bad) || !slices.Contains(reasons, bad.reason) || bad.message == "" {
				t.Fatalf("decode error %v is not a bad request with a known reason", err)
			}
			return
		}
		logs, id := buildRecord(call, body, callContext{received: time.Unix(0, 1), apiVersion: "v", correlationID: "c"})
		if logs.LogRecordCount() != 1 || len(id) != 32 {
			t.Fatalf("%d records, id %q", logs.LogRecordCount(), id)
		}
		v, _ := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get(schema.EventName)
		if v.Str() != schema.ToolCallEventName {
			t.Fatalf("event.name = %q", v.Str())
		}
	})
}

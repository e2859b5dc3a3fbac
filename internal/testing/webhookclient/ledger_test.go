package webhookclient

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// recordOf is a tool-call record naming c under recordID, enough for the
// Ledger to find its call (whether it says what the call said is not what
// these tests check).
func recordOf(t *testing.T, c Call, recordID string) []byte {
	t.Helper()
	headers, _ := json.Marshal(map[string]string{
		schema.AktoHeaderConversationID: c.ConversationID, schema.AktoHeaderStepID: c.StepID, schema.AktoHeaderMessageID: recordID,
	})
	v, err := json.Marshal(map[string]string{"path": "/copilot/conversation/x/tool/" + c.StepID, "requestHeaders": string(headers),
		"tag": "{}", "requestPayload": `{"text":""}`, "statusCode": "200", "responsePayload": string(allowed)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func answer(outcome string) Answer {
	return Answer{Status: 200, Body: allowed, Record: outcome}
}

// The Ledger requires exactly the calls answered accepted, and tells a
// repeat after a SIGKILL from one without.
func TestLedgerRequiresAcceptedCallsOnly(t *testing.T) {
	calls := Generate(1, 5, Options{})
	l := NewLedger()
	kills := 0
	l.Epoch = func(int32, int64) int { return kills }
	outcomes := []string{Accepted, Accepted, Deadline, Overloaded, ""}
	for i, c := range calls {
		l.Sending(c)
		if outcomes[i] == "" {
			l.Answered(c, Answer{}, errors.New("connection refused"))
			continue
		}
		l.Answered(c, answer(outcomes[i]), nil)
	}

	rep := l.Report()
	if rep.Accepted != 2 || rep.Lost != 2 || rep.Err(true) == nil {
		t.Fatalf("nothing on the topic: want 2 accepted calls lost and an error, got %+v", rep)
	}
	l.Add(recordOf(t, calls[0], "r0"), 0, 0)
	l.Add(recordOf(t, calls[1], "r1"), 0, 1)
	rep = l.Report()
	if rep.Lost != 0 || rep.Delivered != 2 || rep.Duplicated != 0 || rep.Unexpected != 0 {
		t.Fatalf("accepted calls delivered, the deadline and unanswered ones not: want nothing lost, got %+v", rep)
	}
	if rep.Answers[Deadline] != 1 || rep.Answers[Overloaded] != 1 || rep.Answers[Unanswered] != 1 {
		t.Errorf("answers not counted apart: %v", rep.Answers)
	}

	// A deadline call's record arriving is counted, not an error.
	l.Add(recordOf(t, calls[2], "r2"), 0, 2)
	if rep = l.Report(); rep.DeliveredAnyway != 1 || rep.Unexpected != 0 {
		t.Errorf("deadline call delivered: want it counted as delivered anyway, got %+v", rep)
	}

	// A repeat with no SIGKILL between is refused even where repeats are
	// allowed; after a kill, only under the same record id.
	l.Add(recordOf(t, calls[0], "r0"), 0, 3)
	if rep = l.Report(); rep.RepeatsWithoutKill != 1 || rep.Err(true) == nil {
		t.Errorf("repeat without a kill: want it refused, got %+v", rep)
	}
	kills = 1
	l.Add(recordOf(t, calls[1], "other"), 0, 4)
	if rep = l.Report(); rep.RepeatsWithNewRecordID != 1 {
		t.Errorf("repeat under a new record id: want it counted, got %+v", rep)
	}

	// An overloaded call's record was never passed on: on the topic it is
	// unexpected.
	l.Add(recordOf(t, calls[3], "r3"), 0, 5)
	if rep = l.Report(); rep.Unexpected != 1 {
		t.Errorf("overloaded call on the topic: want it unexpected, got %+v", rep)
	}
}

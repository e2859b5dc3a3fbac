package workload

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestTranscriptsAreReproducibleAndCoverTheCases(t *testing.T) {
	cfg := DefaultTranscriptConfig(7, 300)
	a, b := GenerateTranscripts(cfg), GenerateTranscripts(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two workloads")
	}
	s := a.Summary()
	for _, k := range []string{"split_pieces", "late_rows", "greetings", "steps_completed", "steps_failed", "steps_blocked", "steps_triggered"} {
		if s[k] == 0 {
			t.Errorf("no %s in %v", k, s)
		}
	}
	resumed := map[string]int{}
	for _, r := range a.Rows {
		var content struct{ Activities []json.RawMessage }
		if err := json.Unmarshal([]byte(r.Content), &content); err != nil || len(content.Activities) == 0 {
			t.Fatalf("row %s: content %v", r.ID, err)
		}
		resumed[r.Name+"/"+r.ConversationStart.String()]++
	}
	names := map[string]int{}
	for k := range resumed {
		names[k[:len(k)-len("/2026-02-18 00:00:00 +0000 UTC")]]++
	}
	twice := 0
	for _, n := range names {
		if n > 1 {
			twice++
		}
	}
	if twice == 0 {
		t.Error("no resumed conversation (same name, two start times)")
	}
	for _, turn := range a.Turns {
		if len(turn.RowIDs) == 0 || len(turn.ItemIDs) == 0 {
			t.Fatalf("turn %d of %s has no rows or items", turn.Index, turn.ConversationID)
		}
	}
	// The Verifier takes the turns as they are.
	turns := make([]Turn, len(a.Turns))
	for i := range a.Turns {
		turns[i] = a.Turns[i].Turn
	}
	NewVerifier(turns)
}

func TestPaddedTranscriptIsAboutTheSizeAsked(t *testing.T) {
	cfg := DefaultTranscriptConfig(1, 1)
	cfg.SplitRate, cfg.ResumeRate, cfg.PadTo = 0, 0, 1<<20
	w := GenerateTranscripts(cfg)
	if n := len(w.Rows[0].Content); n < 1<<20-4096 || n > 1<<20+4096 {
		t.Fatalf("content %d bytes, want about 1 MiB", n)
	}
}

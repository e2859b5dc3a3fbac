package harness

import (
	"encoding/json"
	"testing"
	"time"
)

func TestLoadSampleTranscriptMovesEveryTime(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	createdOn := time.Date(2027, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	s, err := LoadSampleTranscript(root, createdOn)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Rows) != 1 || len(s.Bots) != 1 || s.Rows[0].BotID != s.Bots[0].BotID {
		t.Fatalf("want one row of the one agent, got %d rows, bots %v", len(s.Rows), s.Bots)
	}
	row := s.Rows[0]
	if !row.CreatedOn.Equal(createdOn.Truncate(time.Second)) {
		t.Errorf("createdon %v, want %v (whole seconds)", row.CreatedOn, createdOn.Truncate(time.Second))
	}
	var content struct {
		Activities []struct {
			Type        string `json:"type"`
			Name        string `json:"name"`
			Timestamp   int64  `json:"timestamp"`
			TimestampMs int64  `json:"timestampMs"`
		} `json:"activities"`
	}
	if err := json.Unmarshal([]byte(row.Content), &content); err != nil {
		t.Fatalf("content: %v", err)
	}
	if len(content.Activities) != s.Activities || s.Activities == 0 {
		t.Fatalf("%d activities in the content, %d counted", len(content.Activities), s.Activities)
	}
	steps := 0
	for _, a := range content.Activities {
		at := time.UnixMilli(a.TimestampMs)
		// Written about half an hour after the conversation, as Dataverse does.
		if lag := row.CreatedOn.Sub(at); lag < 29*time.Minute || lag > 32*time.Minute {
			t.Errorf("%s %s at %v: %v before createdon, want about 30 minutes", a.Type, a.Name, at, lag)
		}
		if a.Timestamp != a.TimestampMs/1000 {
			t.Errorf("%s %s: timestamp %d and timestampMs %d moved apart", a.Type, a.Name, a.Timestamp, a.TimestampMs)
		}
		if a.Name == "DynamicPlanStepFinished" {
			steps++
		}
	}
	if steps == 0 {
		t.Error("the sample has no finished tool step")
	}
}

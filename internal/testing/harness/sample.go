package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// Sample files under testdata/ at the repo root.
const (
	// SampleRowsFile holds customEvents rows in the stand-in's row file
	// format (internal/testing/fakeappinsights, "Row files").
	SampleRowsFile = "testdata/sample-telemetry.json"
	// SampleTurnsFile holds the turns a correct pipeline makes of them, with
	// credentials already masked as collector-config.yaml masks them.
	SampleTurnsFile = "testdata/sample-turns.json"
)

// Sample is the sample telemetry and its expected turns, moved in time
// together.
type Sample struct {
	Rows  []fakeappinsights.Row
	Turns []workload.Turn
}

// sampleTurn is one entry of SampleTurnsFile.
type sampleTurn struct {
	ConversationID    string    `json:"conversationId"`
	Agent             string    `json:"agent"`
	Channel           string    `json:"channel"`
	Index             int       `json:"index"`
	RequestText       string    `json:"requestText"`
	RequestActivityID string    `json:"requestActivityId"`
	RequestTime       time.Time `json:"requestTime"`
	Replies           []string  `json:"replies"`
	Failed            bool      `json:"failed"`
	// Note says what the turn exercises; for people reading the file.
	Note string `json:"note"`
}

// LoadSample reads the sample under root and shifts it in time so its last
// row was ingested at latest (the first poll of a fresh collector then sees
// every row).
func LoadSample(root string, latest time.Time) (*Sample, error) {
	rows, err := fakeappinsights.LoadRows(filepath.Join(root, SampleRowsFile))
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(root, SampleTurnsFile))
	if err != nil {
		return nil, err
	}
	var entries []sampleTurn
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("harness: %s: %w", SampleTurnsFile, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("harness: %s has no rows", SampleRowsFile)
	}

	lastIngest := rows[0].IngestionTime
	for _, r := range rows {
		if r.IngestionTime.After(lastIngest) {
			lastIngest = r.IngestionTime
		}
	}
	shift := latest.Sub(lastIngest)

	s := &Sample{Rows: fakeappinsights.Rebase(rows, latest)}
	for _, e := range entries {
		t := workload.Turn{
			ConversationID: e.ConversationID, Agent: e.Agent, Channel: e.Channel, Index: e.Index,
			RequestText: e.RequestText, RequestActivityID: e.RequestActivityID,
			Replies: e.Replies, Failed: e.Failed,
		}
		if !e.RequestTime.IsZero() {
			t.RequestTime = e.RequestTime.Add(shift)
		}
		s.Turns = append(s.Turns, t)
	}
	return s, nil
}

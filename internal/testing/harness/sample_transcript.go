package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
)

// SampleTranscriptFile holds one generative agent's conversation as
// Copilot Studio writes it to Dataverse: the agent's bots row and its
// conversationtranscript rows, content and metadata as JSON (the stand-in
// serves them as the JSON strings Dataverse has).
const SampleTranscriptFile = "testdata/sample-transcript.json"

// TranscriptSample is the sample transcript, moved in time.
type TranscriptSample struct {
	Bots []fakedataverse.Bot
	Rows []fakedataverse.Transcript
	// Activities counts the activities of every row.
	Activities int
}

type sampleTranscriptFile struct {
	Bot  fakedataverse.Bot `json:"bot"`
	Rows []struct {
		ID                string          `json:"conversationtranscriptid"`
		Name              string          `json:"name"`
		ConversationStart time.Time       `json:"conversationstarttime"`
		CreatedOn         time.Time       `json:"createdon"`
		Metadata          json.RawMessage `json:"metadata"`
		Content           struct {
			Activities []map[string]any `json:"activities"`
		} `json:"content"`
	} `json:"rows"`
}

// LoadSampleTranscript reads the sample under root and moves it in time so
// that its last row was created at createdOn (whole seconds, as Dataverse
// keeps createdon); every activity's timestamp and timestampMs move with it.
func LoadSampleTranscript(root string, createdOn time.Time) (*TranscriptSample, error) {
	data, err := os.ReadFile(filepath.Join(root, SampleTranscriptFile))
	if err != nil {
		return nil, err
	}
	var f sampleTranscriptFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // timestamps stay integers
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("harness: %s: %w", SampleTranscriptFile, err)
	}
	if len(f.Rows) == 0 {
		return nil, fmt.Errorf("harness: %s has no rows", SampleTranscriptFile)
	}
	last := f.Rows[0].CreatedOn
	for _, r := range f.Rows {
		if r.CreatedOn.After(last) {
			last = r.CreatedOn
		}
	}
	shift := createdOn.Truncate(time.Second).Sub(last)
	s := &TranscriptSample{Bots: []fakedataverse.Bot{f.Bot}}
	for _, r := range f.Rows {
		for _, a := range r.Content.Activities {
			if err := shiftActivity(a, shift); err != nil {
				return nil, fmt.Errorf("harness: %s, row %s: %w", SampleTranscriptFile, r.ID, err)
			}
		}
		s.Activities += len(r.Content.Activities)
		content, err := json.Marshal(r.Content)
		if err != nil {
			return nil, err
		}
		s.Rows = append(s.Rows, fakedataverse.Transcript{
			ID: r.ID, Name: r.Name, Content: string(content), Metadata: string(r.Metadata),
			ConversationStart: r.ConversationStart.Add(shift), CreatedOn: r.CreatedOn.Add(shift),
			BotID: f.Bot.BotID,
		})
	}
	return s, nil
}

// shiftActivity moves an activity's timestamp (Unix seconds) and
// timestampMs by d.
func shiftActivity(a map[string]any, d time.Duration) error {
	for key, unit := range map[string]time.Duration{"timestamp": time.Second, "timestampMs": time.Millisecond} {
		n, ok := a[key].(json.Number)
		if !ok {
			continue
		}
		v, err := n.Int64()
		if err != nil {
			return fmt.Errorf("%s %s is not an integer", key, n)
		}
		a[key] = v + int64(d/unit)
	}
	return nil
}

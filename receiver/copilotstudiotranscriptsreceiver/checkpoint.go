package copilotstudiotranscriptsreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// checkpointVersion changes whenever the stored shape does. A stored
// checkpoint of an earlier version is migrated (there is none yet: 1 is the
// first); one of a later version, written by a newer collector, is refused
// as unreadable rather than guessed at.
const checkpointVersion = 1

// checkpoint is what survives a restart: every row created before Cursor
// (less the overlap) has been accepted downstream, and Seen holds the row
// ids, with their createdon, that the next poll's overlap reads again.
type checkpoint struct {
	Version int                  `json:"version"`
	Cursor  time.Time            `json:"cursor"`
	Seen    map[string]time.Time `json:"seen"`
}

// storageKey is per environment, so pointing the receiver at another
// environment does not reuse a cursor that means nothing there.
func storageKey(environment string) string { return "transcripts-cursor/" + environment }

// loadCheckpoint reads the stored checkpoint; (nil, nil) when none is stored.
func loadCheckpoint(ctx context.Context, client storage.Client, environment string) (*checkpoint, error) {
	raw, err := client.Get(ctx, storageKey(environment))
	if err != nil {
		return nil, fmt.Errorf("reading the stored cursor: %w", err)
	}
	if raw == nil {
		return nil, nil
	}
	var cp checkpoint
	if err := json.Unmarshal(raw, &cp); err != nil {
		return nil, fmt.Errorf("stored cursor is not readable (%d bytes): %w", len(raw), err)
	}
	switch {
	case cp.Version > checkpointVersion:
		return nil, fmt.Errorf("stored cursor has format version %d, written by a newer collector; this one reads up to version %d", cp.Version, checkpointVersion)
	case cp.Version < 1:
		return nil, fmt.Errorf("stored cursor has no format version")
	}
	if cp.Cursor.IsZero() {
		return nil, fmt.Errorf("stored cursor has no position")
	}
	if cp.Seen == nil {
		cp.Seen = map[string]time.Time{}
	}
	return &cp, nil
}

func saveCheckpoint(ctx context.Context, client storage.Client, environment string, cp *checkpoint) error {
	raw, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return client.Set(ctx, storageKey(environment), raw)
}

// advance moves the cursor to the latest createdon of a page the pipeline
// accepted and keeps the ids of rows the next overlap reads again. The
// cursor never moves back.
func (cp *checkpoint) advance(rows map[string]time.Time, overlap time.Duration) {
	for id, created := range rows {
		cp.Seen[id] = created
		if created.After(cp.Cursor) {
			cp.Cursor = created
		}
	}
	keepFrom := cp.Cursor.Add(-overlap)
	for id, created := range cp.Seen {
		if created.Before(keepFrom) {
			delete(cp.Seen, id)
		}
	}
}

package copilotstudioreceiver

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

// checkpoint is what survives a restart: every row ingested before Cursor
// has been accepted downstream, and Seen holds the item ids (with their
// ingestion time) that the next window's overlap will fetch again.
type checkpoint struct {
	Version int                  `json:"version"`
	Cursor  time.Time            `json:"cursor"`
	Seen    map[string]time.Time `json:"seen"`
}

// storageKey is per application id, so pointing the receiver at another
// resource does not reuse a cursor that means nothing there.
func storageKey(appID string) string { return "cursor/" + appID }

// loadCheckpoint reads the stored checkpoint; (nil, nil) when none is stored.
// An unreadable one is an error: the caller starts afresh and says so.
func loadCheckpoint(ctx context.Context, client storage.Client, appID string) (*checkpoint, error) {
	raw, err := client.Get(ctx, storageKey(appID))
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

func saveCheckpoint(ctx context.Context, client storage.Client, appID string, cp *checkpoint) error {
	raw, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return client.Set(ctx, storageKey(appID), raw)
}

// advance moves the cursor to upper after a window was accepted, keeping the
// item ids the next overlap will see again and forgetting older ones. The
// cursor never moves back: a window cut inside the overlap ends before it.
func (cp *checkpoint) advance(upper time.Time, overlap time.Duration, seen map[string]time.Time) {
	if upper.After(cp.Cursor) {
		cp.Cursor = upper
	}
	keepFrom := cp.Cursor.Add(-overlap)
	next := make(map[string]time.Time, len(cp.Seen))
	for _, ids := range []map[string]time.Time{cp.Seen, seen} {
		for id, ingest := range ids {
			if !ingest.Before(keepFrom) {
				next[id] = ingest
			}
		}
	}
	cp.Seen = next
}

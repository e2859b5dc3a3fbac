// Package cursor is the durable position of a polling receiver: how far the
// rows it has delivered reach, and the ids of the rows its next overlap will
// read again. It is stored as one JSON value in the receiver's storage
// client and moves only after the next consumer accepted what it covers.
package cursor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// Version changes whenever the stored shape does. A stored checkpoint of an
// earlier version is migrated (there is none yet: 1 is the first); one of a
// later version, written by a newer collector, is refused as unreadable
// rather than guessed at.
const Version = 1

// Checkpoint is what survives a restart: every row observed before Cursor
// (less the overlap) has been accepted downstream, and Seen holds the ids of
// the rows, with their observed time, that the next overlap reads again.
type Checkpoint struct {
	Version int                  `json:"version"`
	Cursor  time.Time            `json:"cursor"`
	Seen    map[string]time.Time `json:"seen"`
}

// New is the checkpoint of a receiver that has delivered nothing yet.
func New() *Checkpoint { return &Checkpoint{Version: Version, Seen: map[string]time.Time{}} }

// Load reads the checkpoint stored under key; (nil, nil) when none is.
func Load(ctx context.Context, client storage.Client, key string) (*Checkpoint, error) {
	raw, err := client.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading the stored cursor: %w", err)
	}
	if raw == nil {
		return nil, nil
	}
	var cp Checkpoint
	if err := json.Unmarshal(raw, &cp); err != nil {
		return nil, fmt.Errorf("stored cursor is not readable (%d bytes): %w", len(raw), err)
	}
	switch {
	case cp.Version > Version:
		return nil, fmt.Errorf("stored cursor has format version %d, written by a newer collector; this one reads up to version %d", cp.Version, Version)
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

// Save stores cp under key.
func Save(ctx context.Context, client storage.Client, key string, cp *Checkpoint) error {
	raw, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return client.Set(ctx, key, raw)
}

// Advance moves the cursor after the next consumer accepted rows: to upper
// (a window's end; zero when the rows themselves say how far they reach) or
// to the latest observed time of seen, whichever is later. It keeps the ids
// the next overlap reads again and forgets older ones. The cursor never moves
// back: a window cut inside the overlap ends before it.
func (cp *Checkpoint) Advance(upper time.Time, seen map[string]time.Time, overlap time.Duration) {
	if upper.After(cp.Cursor) {
		cp.Cursor = upper
	}
	for _, observed := range seen {
		if observed.After(cp.Cursor) {
			cp.Cursor = observed
		}
	}
	keepFrom := cp.Cursor.Add(-overlap)
	next := make(map[string]time.Time, len(cp.Seen))
	for _, ids := range []map[string]time.Time{cp.Seen, seen} {
		for id, observed := range ids {
			if !observed.Before(keepFrom) {
				next[id] = observed
			}
		}
	}
	cp.Seen = next
}

// UnreadableError is the error that stops a receiver whose stored cursor
// cannot be read: what happened to the cursor of what (e.g. "application_id
// X"), and the two ways on with what each loses or repeats. items names what
// the receiver delivers ("rows", "transcripts").
func UnreadableError(err error, of, items string, lookback time.Duration) error {
	return fmt.Errorf("the stored cursor of %s cannot be read (%w); the receiver does not start, so nothing is skipped or repeated while you decide. "+
		"Keep the storage directory as it is: it also holds the pairing state and the exporter's queue. Two ways on: "+
		"(1) if a change of collector version caused this, run the version that wrote the cursor: it resumes where it stopped, losing and repeating nothing; "+
		"(2) set on_unreadable_cursor: restart_from_lookback and restart: polling starts again from initial_lookback (%v): %s in that span are delivered again (their item ids and turn ids stay the same, so consumers can drop the repeats), "+
		"and %s older than that which were not delivered yet are never read; raise initial_lookback to reach back before the last successful poll to lose none",
		of, err, lookback, items, items)
}

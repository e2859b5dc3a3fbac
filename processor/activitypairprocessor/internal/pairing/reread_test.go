package pairing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One batch from the receiver can span more than emitted_ids_ttl of
// ingestion time (a backlog, sparse traffic). If the collector dies after
// the processor saved its state but before the receiver stored its cursor,
// the receiver reads that whole window again: none of its rows may come out
// a second time. Found by internal/testing/faults ("broker down, then back"), where
// the re-read made partial copies of turns.
func TestReadAgainAfterSIGKILLWindowLongerThanIDsTTL(t *testing.T) {
	cfg := testConfig()
	h := newRun(t, cfg)
	window := []testRow{
		msg("old", "o1", 0, "a1", "an old question"),
		reply("old", "o2", time.Second, "a1", "an old answer"),
		msg("new", "n1", 3*time.Hour, "a2", "a new question"),
		reply("new", "n2", 3*time.Hour+time.Second, "a2", "a new answer"),
	}
	require.Greater(t, 3*time.Hour, cfg.EmittedIDsTTL+cfg.ReplyTimeout, "the window must span more than the ids are kept")
	h.consume(window...)
	before := h.summaries()
	require.Len(t, before, 1, "the old turn is complete: rows ingested hours later were read")

	h.restart(cfg)       // what the processor stored, restored
	h.consume(window...) // the receiver's cursor was not stored: the same window again
	assert.Equal(t, before, h.summaries(), "a row read again came out a second time")
}

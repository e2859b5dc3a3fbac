package pairing

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// Completion is decided on the watermark, the latest ingestion time read.
// A row that arrives late (after rows ingested lag later than it were
// read, as when the receiver's next batch overtakes the one holding it)
// still joins its turn when it was ingested less than reorder_window - lag
// after the turn's next user message; past that, its turn went out
// without it. In the receiver's order the lag is 0 and the whole window
// holds. The README's "Arrival order" says the same.
func TestLateArrivalJoinsWithinReorderWindowLessItsLag(t *testing.T) {
	const window = 5 * time.Minute
	for _, tc := range []struct {
		name string
		// afterNext: the summary reply is ingested this long after the next
		// user message; lag: a row of another conversation ingested this
		// long after the summary is read before it (0: read after it).
		afterNext, lag time.Duration
		joins          bool
	}{
		{"in order, early in the window", time.Minute, 0, true},
		{"in order, at the end of the window", window - time.Second, 0, true},
		{"overtaken, lag below the rest of the window", time.Minute, window - time.Minute - time.Second, true},
		{"overtaken, lag the rest of the window", time.Minute, window - time.Minute, false},
		{"overtaken by 2 s at the end of the window", window - time.Second, 2 * time.Second, false},
		{"overtaken across a quiet stretch", time.Minute, 10 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.ReorderWindow = window
			h := newRun(t, cfg)
			next := msg("c", "m2", 20*time.Second, "a2", "And holidays?").ingestedAt(50 * time.Second)
			late := reply("c", "r1b", 6*time.Second, "a1", "Summary: 25 days.").ingestedAt(next.ingest + tc.afterNext)
			other := topicStart("other", "o1", 0, "Other").ingestedAt(late.ingest + tc.lag)
			h.consume(msg("c", "m1", 0, "a1", "How much leave?"), reply("c", "r1a", 5*time.Second, "a1", "25 days a year."), next)
			if tc.lag > 0 {
				h.consume(other)
				h.consume(late)
			} else {
				h.consume(late)
				h.consume(other)
			}
			h.shutdown()

			var first []summary
			for _, s := range h.summaries() {
				if s.Conv == "c" {
					s.Items = nil
					first = append(first, s)
				}
			}
			want := []summary{
				{Conv: "c", Request: "How much leave?", Replies: []string{"25 days a year.", "Summary: 25 days."}},
				{Conv: "c", Request: "And holidays?"},
			}
			if !tc.joins {
				// its message went out without it: a turn of its own, never
				// attached to the wrong message, nothing lost
				want = []summary{
					{Conv: "c", Request: "How much leave?", Replies: []string{"25 days a year."}},
					{Conv: "c", Replies: []string{"Summary: 25 days."}},
					{Conv: "c", Request: "And holidays?"},
				}
			}
			assert.Equal(t, want, first)
		})
	}
}

// The receiver with max_concurrent_batches above 1 may hand two adjacent
// batches over swapped. The workload ingests every row of a turn 20 s to
// 3 min after its event, so at most 2m40s after its turn's next user
// message: swaps that make no row later than the other 2m20s of the
// default 5m reorder_window give the ground truth.
func TestPropertySwapsWithinTheRestOfTheReorderWindowGiveTheGroundTruth(t *testing.T) {
	const maxLag = 2 * time.Minute
	for _, seed := range propertySeeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := workload.Generate(workload.DefaultConfig(seed, 300))
			rng := rand.New(rand.NewPCG(seed, 23))
			batches := splits(rng, w.Rows, 7)
			swapped := 0
			for i := 0; i+1 < len(batches); i += 2 {
				earlier, later := batches[i], batches[i+1]
				// the lag of a row of the overtaken batch is at most this
				if lag := later[len(later)-1].IngestionTime.Sub(earlier[0].IngestionTime); lag < maxLag && rng.IntN(2) == 0 {
					batches[i], batches[i+1] = later, earlier
					swapped++
				}
			}
			require.Greater(t, swapped, len(batches)/8)
			h := newRun(t, defaultConfig())
			for _, b := range batches {
				h.consumeInputs(h.workloadInputs(b))
			}
			h.shutdown()
			rep := workload.Verify(w.Turns, h.records())
			require.NoError(t, rep.Err(false))
		})
	}
}

// The fault suite's shape (internal/testing/faults): the workload ends about two
// hours before its watermark conversation. When the batch holding the
// watermark conversation's rows, or a batch across a quiet stretch of
// the workload, overtakes the one before it, the watermark jumps far
// past rows not read yet (much more than reorder_window): turns go out
// without them, as the README says. Nothing is lost or repeated.
func TestSwapsAcrossAQuietStretchLoseNothing(t *testing.T) {
	for sc := range uint64(3) {
		t.Run(fmt.Sprint(sc), func(t *testing.T) {
			now := base.Add(5 * time.Hour)
			cfg := workload.DefaultConfig(20260218+sc, 150)
			cfg.Start, cfg.Span, cfg.MaxLateDelay = now.Add(-3*time.Hour), time.Hour, time.Hour
			w := workload.Generate(cfg)
			mark := workload.Generate(workload.Config{Seed: (20260218 + sc) ^ 0xfeed, Conversations: 1, GreetingRate: 1})
			rows := append(append([]workload.Row(nil), w.Rows...), fakeappinsights.Rebase(mark.Rows, now.Add(-20*time.Second))...)
			var batches [][]workload.Row
			for len(rows) > 0 {
				n := min(7, len(rows))
				batches = append(batches, rows[:n:n])
				rows = rows[n:]
			}
			for i := 0; i+1 < len(batches); i += 2 {
				batches[i], batches[i+1] = batches[i+1], batches[i]
			}
			h := newRun(t, defaultConfig())
			for _, b := range batches {
				h.consumeInputs(h.workloadInputs(b))
			}
			h.shutdown()
			every := append(append([]workload.Row(nil), w.Rows...), mark.Rows...)
			seen := map[string]int{}
			for _, e := range h.out {
				for _, it := range e.Items {
					seen[it]++
				}
			}
			for _, r := range every {
				assert.Equal(t, 1, seen[r.ItemID], "row %s", r.ItemID)
			}
			assert.Len(t, seen, len(every))
		})
	}
}

package pairing

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

var propertySeeds = []uint64{1, 2, 3, 5, 8, 13, 21, 34}

// Whatever the arrival order and batch split, the turns made from the same
// rows are the ground truth's, each once.
func TestPropertyAnyOrderGivesTheGroundTruth(t *testing.T) {
	for _, seed := range propertySeeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := workload.Generate(workload.DefaultConfig(seed, 150))
			rng := rand.New(rand.NewPCG(seed, 99))
			rows := append([]workload.Row(nil), w.Rows...)
			rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
			cfg := testConfig()
			cfg.ReorderWindow = 10000 * time.Hour // nothing completes before shutdown
			h := newRun(t, cfg)
			for _, b := range splits(rng, rows, 200) {
				h.consumeInputs(h.workloadInputs(b))
			}
			h.shutdown()
			rep := workload.Verify(w.Turns, h.records())
			require.NoError(t, rep.Err(false))
			assert.Equal(t, len(w.Turns), rep.Records)
		})
	}
}

// In ingestion order, as the receiver reads, with the default windows,
// turns go out as they complete and every one is right.
func TestPropertyIngestionOrderGivesTheGroundTruth(t *testing.T) {
	for _, seed := range propertySeeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := workload.Generate(workload.DefaultConfig(seed, 300))
			rng := rand.New(rand.NewPCG(seed, 7))
			h := newRun(t, defaultConfig())
			for _, b := range splits(rng, w.Rows, 500) {
				h.consumeInputs(h.workloadInputs(b))
			}
			before := len(h.out)
			h.shutdown()
			rep := workload.Verify(w.Turns, h.records())
			require.NoError(t, rep.Err(false))
			assert.Greater(t, before, len(w.Turns)/2, "most turns complete before shutdown")
		})
	}
}

// With no reorder window and rows ingested in random order (so arriving
// in that order), turns may be split by late rows, but every row is in
// exactly one turn and no reply with a reply-to id is ever attached to a
// message it does not answer.
func TestPropertyAnyOrderLosesNothingAndNeverMisattaches(t *testing.T) {
	for _, seed := range propertySeeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := workload.Generate(workload.DefaultConfig(seed, 150))
			rng := rand.New(rand.NewPCG(seed, 11))
			rows := append([]workload.Row(nil), w.Rows...)
			rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
			for i := range rows {
				rows[i].IngestionTime = workload.DefaultStart.Add(3*time.Hour + time.Duration(i)*time.Millisecond)
			}
			h := newRun(t, testConfig())
			for _, b := range splits(rng, rows, 50) {
				// and some rows twice, as a re-sent window brings them
				b = append(b, b[:rng.IntN(len(b))]...)
				h.consumeInputs(h.workloadInputs(b))
			}
			h.shutdown()
			checkEveryRowOnceNeverMisattached(t, w.Rows, h.out)
		})
	}
}

func checkEveryRowOnceNeverMisattached(t *testing.T, rows []workload.Row, turns []emitted) {
	t.Helper()
	type info struct{ name, activity, replyTo string }
	byItem := map[string]info{}
	for _, r := range rows {
		var dims map[string]string
		require.NoError(t, json.Unmarshal([]byte(r.CustomDimensions), &dims))
		byItem[r.ItemID] = info{r.Name, dims["activityId"], dims["replyActivityId"]}
	}
	seen := map[string]int{}
	for _, e := range turns {
		asks := map[string]bool{}
		for _, it := range e.Items {
			seen[it]++
			if in := byItem[it]; in.name == schema.EventMessageReceived {
				asks[in.activity] = true
			}
		}
		if e.RequestActivity != "" {
			require.True(t, asks[e.RequestActivity], "the request row is in its own turn")
		}
		for _, it := range e.Items {
			if in := byItem[it]; in.name == schema.EventMessageSend && in.replyTo != "" && len(asks) > 0 {
				assert.True(t, asks[in.replyTo], "reply %s answers %s, but is in the turn of %v", it, in.replyTo, asks)
			}
		}
	}
	for item := range byItem {
		assert.Equal(t, 1, seen[item], "row %s is in %d turns", item, seen[item])
	}
	assert.Len(t, seen, len(byItem))
}

package activitypairprocessor

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
)

// Consumers drop a repeated turn by its id, so the same rows must give the
// same turn id in every version, whatever the record around it looks like.
// The ids below are what the processor emitted before the Akto record moved
// its per-turn values into request headers (then in the tag's turn-id).
var (
	goldenTurnIDs = []string{"f0b1e5c6d9d2889f567974500810badf", "e9982c07ffe3f176b736c1e9a957b292", "27610fc0d22a605cead17a78f2e713cd"}
	// testdata/sample-telemetry.json's turns, sorted
	sampleTurnIDs = []string{
		"0da5a941869864e093c2b662786fc60c", "141e889875021b15e660c1bd6b1f176c", "27093863f39b2c3a92bfbb52936c3f54",
		"2f7753b1e9a65e1a95cba53f77938312", "322a3a20870ed21b474627b6c5385e41", "37a903a6550bcfe2b517d971c19b8583",
		"62e8b827263d2875987e4fa7f8d75055", "687c7a7ff1419e7f707026540ef59227", "827e6c680eb97808b0b11746567ffd94",
		"a62103345a636a71f375996b9ca255e5", "ae05c74579da5ba4195ec94b5eba9ec9", "b8cbd8ab15318c8ffec6b62a4c99ed57",
	}
)

func TestTurnIDsStayTheSame(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	h.consume(goldenRows...)
	h.shutdown()
	assert.Equal(t, goldenTurnIDs, emittedTurnIDs(t, h))

	// testdata/sample-telemetry.json, as the receiver writes its rows.
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	rows, err := fakeappinsights.LoadRows(filepath.Join(root, testenv.SampleRowsFile))
	require.NoError(t, err)
	h = newHarness(t, testConfig(), nil)
	require.NoError(t, h.p.ConsumeLogs(t.Context(), workloadLogs(t, rows)))
	h.shutdown()
	got := emittedTurnIDs(t, h)
	slices.Sort(got)
	assert.Equal(t, sampleTurnIDs, got)
}

// emittedTurnIDs are the turn ids of every record the sink has, in order.
func emittedTurnIDs(t *testing.T, h *harness) []string {
	var ids []string
	for _, ld := range h.sink.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, rec := range rl.ScopeLogs().At(0).LogRecords().All() {
				id, ok := rec.Attributes().Get(schema.TurnID)
				require.True(t, ok)
				ids = append(ids, id.Str())
			}
		}
	}
	return ids
}

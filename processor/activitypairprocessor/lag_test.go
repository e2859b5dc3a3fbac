package activitypairprocessor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A row ingested long after its event (a transcript written weeks after
// its activities) keeps its exact ingestion time through the stored state:
// the watermark restored from it is the one it had.
func TestStoredStateKeepsALongIngestionLag(t *testing.T) {
	p := codecProcessor(t)
	late := 40 * 24 * time.Hour
	p.add(logsOf(c1m1.ingestedAt(late), c1t1.ingestedAt(late)), 0)
	want := base.Add(late).UnixNano()
	require.Equal(t, want, p.core.Watermark())
	for _, seg := range [][]byte{encodeDelta(p), encodeSnapshot(p)} {
		again := codecProcessor(t)
		require.NoError(t, decodeSegment(seg, again.core, again.resources))
		again.core.FinishRestore(0)
		require.Equal(t, 2, again.core.BufferedRows())
		for c := range again.core.Conversations() {
			for _, r := range c.Rows() {
				require.Equal(t, want, r.Observed(), "row %s", r.Item)
			}
		}
	}
}

package activitypairprocessor

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
)

// codecProcessor is a processor that is never started, for tests of the
// stored state's encoding: with storage configured, its core keeps the
// changes since the last save.
func codecProcessor(tb testing.TB) *pairProcessor {
	tb.Helper()
	p, err := newProcessor(processortest.NewNopSettings(typ), storageConfig(), consumertest.NewNop(), clock.System)
	require.NoError(tb, err)
	return p
}

// segment is what w wrote, as decodeSegment reads it (unframed).
func (w *segmentWriter) segment() []byte { return w.b[frameRoom:] }

// encodeDelta is the segment a save would write of p's changes.
func encodeDelta(p *pairProcessor) []byte {
	w := segmentWriter{resources: p.resources}
	w.delta(p.core)
	return w.segment()
}

// encodeSnapshot is the whole state of p as one segment.
func encodeSnapshot(p *pairProcessor) []byte {
	w := segmentWriter{resources: p.resources}
	_ = w.snapshot(p.core, math.MaxInt, func(bool) error { return nil })
	return w.segment()
}

// FuzzRestore: stored state of any content never crashes the replay, and
// whatever replays is consistent enough to save and replay again.
func FuzzRestore(f *testing.F) {
	p := codecProcessor(f)
	p.add(logsOf(c1m1, c1t1, c1x1), 0)
	f.Add(encodeDelta(p))
	f.Add(encodeSnapshot(p))
	f.Add([]byte{stateVersion})
	f.Fuzz(func(t *testing.T, seg []byte) {
		p := codecProcessor(t)
		if err := decodeSegment(seg, p.core, p.resources); err != nil {
			return
		}
		p.core.FinishRestore(0)
		again := codecProcessor(t)
		require.NoError(t, decodeSegment(encodeSnapshot(p), again.core, again.resources))
		require.Equal(t, p.core.BufferedRows(), again.core.BufferedRows())
		require.Equal(t, p.core.BufferedBytes(), again.core.BufferedBytes())
		require.Equal(t, p.core.EmittedIDs(), again.core.EmittedIDs())
	})
}

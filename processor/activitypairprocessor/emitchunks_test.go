package activitypairprocessor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadatatest"
)

// failingCall refuses one numbered ConsumeLogs call (1-based) and counts
// the conversations (resources) in each call it sees.
type failingCall struct {
	switchableSink
	calls  int
	failOn int
	sizes  []int
}

func (s *failingCall) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	s.calls++
	if s.calls == s.failOn {
		return errors.New("queue is full")
	}
	s.sizes = append(s.sizes, ld.ResourceLogs().Len())
	return s.LogsSink.ConsumeLogs(ctx, ld)
}

// Many turns completing at once go out in calls of at most
// maxConversationsPerCall conversations; when one call is refused, the
// turns of the calls before it are out (and not sent again), the rest stay
// open and go out with the next call.
func TestManyCompletedTurnsGoOutInBoundedCalls(t *testing.T) {
	const conversations = 2*maxConversationsPerCall + 500
	sink := &failingCall{failOn: 2}
	h := &harness{t: t, sink: &sink.LogsSink, clock: newFakeClock(), tel: newTelemetry(t)}
	p, err := newProcessor(metadatatest.NewSettings(h.tel), testConfig(), sink, h.clock)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), nil))
	h.p = p
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })

	var rows []testRow
	for i := range conversations {
		conv := fmt.Sprintf("conv-%04d", i)
		rows = append(rows,
			msg(conv, conv+"-m", time.Second, conv+"-a", "question"),
			reply(conv, conv+"-r", 2*time.Second, conv+"-a", "answer"))
	}
	h.consume(rows...)
	h.clock.Advance(time.Hour) // past reply_timeout: every turn is due at once

	require.ErrorContains(t, p.sweep(context.Background()), "queue is full")
	assert.Equal(t, []int{maxConversationsPerCall}, sink.sizes, "the first call went out, the second was refused")
	assert.Equal(t, conversations-maxConversationsPerCall, p.core.OpenTurns(), "the refused call's turns and the rest stay open")

	sink.failOn = 0
	require.NoError(t, p.sweep(context.Background()))
	assert.Equal(t, []int{maxConversationsPerCall, maxConversationsPerCall, 500}, sink.sizes)
	seen := map[string]bool{}
	for _, e := range h.turns() {
		require.False(t, seen[e.TurnID], "turn %s sent twice", e.TurnID)
		seen[e.TurnID] = true
	}
	assert.Len(t, seen, conversations)
	assert.Zero(t, p.core.OpenTurns())
}

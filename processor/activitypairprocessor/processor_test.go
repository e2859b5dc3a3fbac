package activitypairprocessor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/aktocheck"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadatatest"
)

const s = time.Second

// conversation c1: a topic answers with two replies, then a second message.
var (
	c1m1  = msg("c1", "m1", 0, "a1", "How do I reset my password?")
	c1t1  = topicStart("c1", "t1", 1*s, "cr44e_hr.topic.ResetPassword")
	c1x1  = action("c1", "x1", 2*s, "cr44e_hr.topic.ResetPassword", "SendActivity")
	c1r1a = reply("c1", "r1a", 3*s, "a1", "Go to aka.ms/sspr.")
	c1r1b = reply("c1", "r1b", 4*s, "a1", "Anything else?")
	c1m2  = msg("c1", "m2", 30*s, "a2", "Thanks")
	c1r2  = reply("c1", "r2", 32*s, "a2", "You're welcome.")

	c1Turn1 = summary{"c1", "How do I reset my password?", []string{"Go to aka.ms/sspr.", "Anything else?"}, []string{"m1", "t1", "x1", "r1a", "r1b"}, false}
	c1Turn2 = summary{"c1", "Thanks", []string{"You're welcome."}, []string{"m2", "r2"}, false}
	c1All   = []testRow{c1m1, c1t1, c1x1, c1r1a, c1r1b, c1m2, c1r2}
)

func TestIdleConversationTimesOutOnWallClock(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	h.consume(c1m1, c1t1, c1x1, c1r1a, c1r1b)
	h.clock.Advance(14 * time.Minute)
	require.NoError(t, h.p.sweep(context.Background()))
	assert.Empty(t, h.turns())
	h.clock.Advance(time.Minute)
	require.NoError(t, h.p.sweep(context.Background()))
	assert.Equal(t, []summary{c1Turn1}, h.summaries())
	assertTurnsEmitted(t, h, map[[2]string]int64{{"paired", "timeout"}: 1})
	h.shutdown()
	assert.Len(t, h.turns(), 1, "nothing left to flush")
}

func TestShutdownWithoutStorageFlushesEveryOpenTurn(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	h.consume(c1m1, c1t1, msg("z", "z1", 0, "q", "open"))
	assert.Empty(t, h.turns())
	h.shutdown()
	assert.ElementsMatch(t, []summary{
		{"c1", "How do I reset my password?", nil, []string{"m1", "t1"}, false},
		{"z", "open", nil, []string{"z1"}, false},
	}, h.summaries())
	assertTurnsEmitted(t, h, map[[2]string]int64{{"request_only", "shutdown"}: 2})
}

// A refused batch leaves the turns open; they go out, once, with the next call.
func TestDownstreamErrorKeepsTurnsOpen(t *testing.T) {
	cfg := testConfig()
	failing := &switchableSink{err: errors.New("queue is full")}
	h := &harness{t: t, sink: &failing.LogsSink, clock: newFakeClock(), tel: newTelemetry(t)}
	p, err := newProcessor(metadatatest.NewSettings(h.tel), cfg, failing, h.clock)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), nil))
	h.p = p
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })

	err = p.ConsumeLogs(context.Background(), logsOf(c1All...))
	require.ErrorContains(t, err, "queue is full", "the receiver must see the refusal and keep its cursor")
	assert.Empty(t, h.turns())
	// The receiver sends the window again: its rows are duplicates now.
	failing.err = nil
	require.NoError(t, p.ConsumeLogs(context.Background(), logsOf(c1All...)))
	assert.Equal(t, []summary{c1Turn1}, h.summaries())
	h.shutdown()
	assert.Equal(t, []summary{c1Turn1, c1Turn2}, h.summaries())
}

type switchableSink struct {
	consumertest.LogsSink
	err error
}

func (s *switchableSink) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if s.err != nil {
		return s.err
	}
	return s.LogsSink.ConsumeLogs(ctx, ld)
}

func TestMalformedRowsAreCountedAndSkipped(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	noConv := msg("", "bad1", 0, "q", "no conversation")
	noItem := msg("c1", "", 0, "q", "no item id")
	h.consume(noConv, c1m1, noItem, c1r1a)
	h.shutdown()
	assert.Equal(t, []summary{{"c1", "How do I reset my password?", []string{"Go to aka.ms/sspr."}, []string{"m1", "r1a"}, false}}, h.summaries())
	// A row without conversation id is not malformed (the telemetry leaves
	// it off TopicAction rows): it has a reason of its own.
	metadatatest.AssertEqualActivitypairRowsDropped(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "malformed"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "no_conversation_id"))},
	}, metricdatatest.IgnoreTimestamp())
}

func TestEachTurnInItsOwnResourceWithTheConversationID(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	h.consume(c1All...)
	h.shutdown()
	for _, e := range h.turns() {
		assert.Equal(t, map[string]any{
			"copilotstudio.appinsights.app_id": "00000000-app",
			"gen_ai.agent.name":                "HR Agent",
			"gen_ai.conversation.id":           "c1",
		}, e.Resource)
	}
}

func assertTurnsEmitted(t *testing.T, h *harness, want map[[2]string]int64) {
	t.Helper()
	var dps []metricdata.DataPoint[int64]
	for k, v := range want {
		dps = append(dps, metricdata.DataPoint[int64]{Value: v, Attributes: attribute.NewSet(
			attribute.String("outcome", k[0]), attribute.String("trigger", k[1]))})
	}
	metadatatest.AssertEqualActivitypairTurnsEmitted(t, h.tel, dps, metricdatatest.IgnoreTimestamp())
}

// Whatever rows come in whatever order, batches and repeats, through
// evictions and timeout sweeps, every record the processor writes is a
// valid Akto record (turns decodes each, and checks its attributes against
// it) and every row is in exactly one. (FuzzPairing in internal/pairing
// checks the pairing of any rows; this checks what the processor makes of
// it.)
func TestAnyRowsGiveValidAktoRecords(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := workload.Generate(workload.DefaultConfig(seed, 100))
			rng := rand.New(rand.NewPCG(seed, 17))
			rows := append([]workload.Row(nil), w.Rows...)
			rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
			for i := range rows {
				rows[i].IngestionTime = workload.DefaultStart.Add(3*time.Hour + time.Duration(i)*time.Second)
			}
			cfg := testConfig()
			cfg.ReorderWindow = time.Duration(rng.IntN(4)) * time.Minute
			cfg.MaxOpenTurns = 1 + rng.IntN(8)
			h := newHarness(t, cfg, nil)
			for i, b := range splits(rng, rows, 50) {
				b = append(b, b[:rng.IntN(len(b))]...) // and some rows twice
				require.NoError(t, h.p.ConsumeLogs(context.Background(), workloadLogs(t, b)))
				if i%3 == 2 {
					h.clock.Advance(time.Minute)
					require.NoError(t, h.p.sweep(context.Background()))
				}
			}
			h.shutdown()
			seen := map[string]int{}
			for _, e := range h.turns() {
				require.NotEmpty(t, e.Items)
				for _, it := range e.Items {
					seen[it]++
				}
			}
			for _, r := range w.Rows {
				require.Equal(t, 1, seen[r.ItemID], "row %s", r.ItemID)
			}
			require.Len(t, seen, len(w.Rows))
			// and Akto files each as it should, whatever the batches
			var agents []aktocheck.Agent
			for _, a := range workload.DefaultAgents {
				agents = append(agents, aktocheck.Agent{Name: a.Name})
			}
			require.NoError(t, aktocheck.Records(aktoValues(h), aktocheck.Options{Agents: agents}))
		})
	}
}

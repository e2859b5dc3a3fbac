package activitypairprocessor

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
	"unsafe"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadatatest"
)

// cutOut rewrites every string value of ld's records (attributes and
// bodies) as a piece of one string of over 1 MiB, as the Application
// Insights receiver cuts a row's values out of one string, and returns
// what tells whether that string is still alive.
func cutOut(ld plog.Logs) weak.Pointer[byte] {
	var all []byte
	var at []int
	each := func(f func(rec plog.LogRecord)) {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, rec := range sl.LogRecords().All() {
					f(rec)
				}
			}
		}
	}
	each(func(rec plog.LogRecord) {
		for _, v := range rec.Attributes().All() {
			if v.Type() == pcommon.ValueTypeStr {
				at = append(at, len(all))
				all = append(all, v.Str()...)
			}
		}
		if rec.Body().Type() == pcommon.ValueTypeStr {
			at = append(at, len(all))
			all = append(all, rec.Body().Str()...)
		}
	})
	at = append(at, len(all))
	all = append(all, make([]byte, 1<<20)...) // the rest of the rows: values the processor does not keep
	values := unsafe.String(&all[0], len(all))
	k := 0
	next := func() string { k++; return values[at[k-1]:at[k]] }
	each(func(rec plog.LogRecord) {
		for _, v := range rec.Attributes().All() {
			if v.Type() == pcommon.ValueTypeStr {
				v.SetStr(next())
			}
		}
		if rec.Body().Type() == pcommon.ValueTypeStr {
			rec.Body().SetStr(next())
		}
	})
	return weak.Make(&all[0])
}

// A row's strings arrive sharing the memory of the batch's records. Kept
// as they are, one short activity id keeps the whole string it was cut
// from alive, other values (unmasked ones included) with it, for as long
// as its turn is open: the memory bound would count 100 bytes and hold a
// megabyte. Whichever way a row stays buffered past its call, it holds
// copies of its own, and they read the same.
func TestBufferedRowsKeepNothingOfTheBatchAlive(t *testing.T) {
	open := msg("c1", "m2", 30*s, "a2", "And my leave balance?")
	for _, tt := range []struct {
		name  string
		batch []testRow
		// run sends the batch; it returns once the call is over
		run func(t *testing.T, h *harness, ld plog.Logs)
	}{
		{"waiting for its reply", []testRow{c1m1, c1t1, c1x1}, nil},
		{"after its conversation emitted a turn in the same call", []testRow{c1m1, c1t1, c1x1, c1r1a, c1r1b, open}, func(t *testing.T, h *harness, ld plog.Logs) {
			require.NoError(t, h.p.ConsumeLogs(context.Background(), ld))
			require.Len(t, h.turns(), 1)
		}},
		{"after the next consumer refused its turn", []testRow{c1m1, c1t1, c1x1, c1r1a, c1r1b, open}, func(t *testing.T, h *harness, ld plog.Logs) {
			next := &refusing{Logs: h.sink, refuse: true}
			h.p.next = next
			require.Error(t, h.p.ConsumeLogs(context.Background(), ld))
			next.refuse = false
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig(), nil)
			ld := logsOf(tt.batch...)
			alive := cutOut(ld)
			if tt.run != nil {
				tt.run(t, h, ld)
			} else {
				require.NoError(t, h.p.ConsumeLogs(context.Background(), ld))
			}
			require.Positive(t, h.p.core.BufferedRows())
			ld = plog.Logs{}
			runtime.GC()
			runtime.GC()
			assert.Nil(t, alive.Value(), "a buffered row keeps the batch's 1 MiB string alive")

			h.consume(c1r1a, c1r1b, open, reply("c1", "r2", 32*s, "a2", "25 days."))
			h.shutdown()
			all := h.summaries()
			require.NotEmpty(t, all)
			assert.Equal(t, c1Turn1, all[0])
			assert.Equal(t, summary{"c1", "And my leave balance?", []string{"25 days."}, []string{"m2", "r2"}, false}, all[len(all)-1])
			assert.Equal(t, testChannel, h.turns()[0].Channel)
		})
	}
}

// The same when saving fails: the changes kept for the next save hold
// copies of their own too.
func TestChangesKeptAfterAFailedSaveKeepNothingOfTheBatchAlive(t *testing.T) {
	fail := false
	files := newFileStorage(t)
	host := &testenv.StorageHost{Host: files.Host, Extension: flakyStorage{Extension: files.Extension.(storage.Extension), failNext: &fail}}
	h := newHarness(t, storageConfig(), host)
	ld := logsOf(c1m1, c1t1, c1x1)
	alive := cutOut(ld)
	fail = true
	require.ErrorContains(t, h.p.ConsumeLogs(context.Background(), ld), "disk is gone")
	ld = plog.Logs{}
	runtime.GC()
	runtime.GC()
	assert.Nil(t, alive.Value(), "the changes kept for the next save keep the batch's 1 MiB string alive")
	h.consume(c1r1a) // saves the changes kept, then these
	h.kill()
	h.start(storageConfig(), host)
	h.consume(c1r1b, c1m2)
	assert.Equal(t, []summary{c1Turn1}, h.summaries(), "what the failed save kept was saved whole")
}

// stamped sets on every scope of ld what a polling receiver puts there:
// how far back it may deliver rows again, and its poll interval.
func stamped(ld plog.Logs, replayFrom time.Time, poll time.Duration) plog.Logs {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			sl.Scope().Attributes().PutInt(schema.ReplayFrom, replayFrom.UnixNano())
			sl.Scope().Attributes().PutInt(schema.PollInterval, int64(poll))
		}
	}
	return ld
}

// refusing passes logs on until told to refuse them, as an exporter's full
// queue does.
type refusing struct {
	consumer.Logs
	refuse bool
}

func (r *refusing) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if r.refuse {
		return errors.New("sending queue is full")
	}
	return r.Logs.ConsumeLogs(ctx, ld)
}

// The receiver sends a window in batches; when one is refused it stops and
// reads the whole window again at the next poll, from its replay_from. The
// ids of rows emitted from the window's first batches must outlive the
// refusal, however short emitted_ids_ttl is and however long the window
// (a backlog): no turn comes out twice without a crash.
func TestWindowReadAgainAfterARefusedBatchRepeatsNoTurn(t *testing.T) {
	window := [][]testRow{
		{msg("a", "a1", 0, "qa", "first"), reply("a", "a2", s, "qa", "A"), msg("b", "b1", time.Hour, "qb", "second")},
		{reply("b", "b2", time.Hour+s, "qb", "B"), msg("c", "c1", 2*time.Hour, "qc", "third")},
		{reply("c", "c2", 2*time.Hour+s, "qc", "C"), msg("d", "d1", 3*time.Hour, "qd", "fourth")},
	}
	lower := base // the window's lower bound: every row is ingested after it
	for _, ttl := range []time.Duration{time.Second, time.Minute, time.Hour} {
		for _, restart := range []bool{false, true} {
			name := ttl.String()
			if restart {
				name += "/restart"
			}
			t.Run(name, func(t *testing.T) {
				cfg := storageConfig()
				cfg.EmittedIDsTTL = ttl
				host := newFileStorage(t)
				h := newHarness(t, cfg, host)
				next := &refusing{Logs: h.sink}
				h.p.next = next
				send := func(b []testRow) error {
					return h.p.ConsumeLogs(context.Background(), stamped(logsOf(b...), lower, 10*time.Minute))
				}
				require.NoError(t, send(window[0]))
				next.refuse = true
				require.Error(t, send(window[1]), "the second batch is refused")
				next.refuse = false
				if restart {
					h.kill()
					h.start(cfg, host)
					h.p.next = next
				}
				for _, b := range window { // the next poll reads the window again
					require.NoError(t, send(b))
				}
				h.clock.Advance(time.Hour)
				require.NoError(t, h.p.sweep(context.Background()))
				seen := map[string]int{}
				for _, turn := range h.summaries() {
					seen[turn.Conv]++
				}
				assert.Equal(t, map[string]int{"a": 1, "b": 1, "c": 1, "d": 1}, seen, "turns by conversation")
			})
		}
	}
}

// A row without a conversation id cannot be paired: Application Insights
// leaves it off TopicAction and AgentStarted/AgentCompleted rows, and
// OnErrorLog and custom events may lack it. It is counted with a reason
// of its own, not as malformed, and logged only at debug level.
func TestRowsWithoutConversationIDAreCountedApart(t *testing.T) {
	h := newHarness(t, testConfig(), nil)
	noConv := action("", "x9", 2*s, "cr44e_hr.topic.ResetPassword", "SendActivity")
	h.consume(c1m1, noConv, c1r1a)
	h.shutdown()
	assert.Equal(t, []summary{{"c1", "How do I reset my password?", []string{"Go to aka.ms/sspr."}, []string{"m1", "r1a"}, false}}, h.summaries())
	metadatatest.AssertEqualActivitypairRowsDropped(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "no_conversation_id"))},
	}, metricdatatest.IgnoreTimestamp())
}

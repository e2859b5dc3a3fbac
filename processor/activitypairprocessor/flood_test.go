package activitypairprocessor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// floodRows makes batches of one-message conversations, each new: the
// traffic that fills the pairing state fastest, since no turn ever
// completes by its next message. A receiver's batch: one resource, its
// scope stamped with replay_from and poll_interval, every value of a row
// cut out of one string as the Application Insights receiver does.
type floodRows struct {
	next int
	// gap is the ingestion time between rows.
	gap time.Duration
}

const floodText = "Please tell me how many days of leave I have left this year, and whether they carry over into the next."

func (g *floodRows) batch(size int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(schema.AppInsightsAppID, "00000000-flood")
	rl.Resource().Attributes().PutStr(schema.AgentName, "HR Agent")
	sl := rl.ScopeLogs().AppendEmpty()
	first := base.Add(time.Duration(g.next) * g.gap)
	sl.Scope().Attributes().PutInt(schema.ReplayFrom, first.Add(-time.Minute).UnixNano())
	sl.Scope().Attributes().PutInt(schema.PollInterval, int64(10*time.Minute))
	recs := sl.LogRecords()
	recs.EnsureCapacity(size)
	var b []byte
	for range size {
		k := g.next
		g.next++
		at := base.Add(time.Duration(k) * g.gap)
		rec := recs.AppendEmpty()
		rec.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(-20 * time.Second)))
		rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(at))
		// conversation id, item id, activity id, channel, locale, user id, text
		b = b[:0]
		b = append(b, "19:flood-"...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, "@thread.v2"...)
		conv := len(b)
		b = fmt.Appendf(b, "%08x-0000-4000-8000-%012x", k>>32, k&0xffffffffffff)
		item := len(b)
		b = strconv.AppendInt(b, 1700000000000+int64(k), 10)
		activity := len(b)
		b = append(b, "msteams"...)
		channel := len(b)
		b = append(b, "en-US"...)
		locale := len(b)
		b = append(b, "29:1W6aRX-flood-user"...)
		user := len(b)
		b = append(b, floodText...)
		values := string(b)
		a := rec.Attributes()
		a.EnsureCapacity(8)
		a.PutStr(schema.EventName, schema.EventMessageReceived)
		a.PutStr(schema.ActivityType, "message")
		a.PutStr(schema.ConversationID, values[:conv])
		a.PutStr(schema.ItemID, values[conv:item])
		a.PutStr(schema.ActivityID, values[item:activity])
		a.PutStr(schema.ChannelID, values[activity:channel])
		a.PutStr(schema.Locale, values[channel:locale])
		a.PutStr(schema.UserID, values[locale:user])
		rec.Body().SetStr(values[user:])
	}
	return ld
}

// floodConfig is the configuration the flood runs with: the defaults,
// bounded by budget.
func floodConfig(budget int64) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.MaxBufferedBytes = budget
	return cfg
}

// floodResult is what a flood measured.
type floodResult struct {
	peakHeap   uint64 // live heap after a collection, above the start's
	peakHeld   int64  // what the core counted
	turns      int
	forgotten  int // conversations the budget forgot
	forgotIDs  int
	openTurns  int
	conversion time.Duration
}

// flood pushes conversations one-message conversations through a processor
// bounded by budget, measuring the live heap after a garbage collection
// every sample batches.
func flood(tb testing.TB, budget int64, conversations, sample int) floodResult {
	ctx := context.Background()
	sink := newCountingSink()
	p, err := newProcessor(processortest.NewNopSettings(typ), floodConfig(budget), sink, clock.System)
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Start(ctx, componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = p.Shutdown(ctx) }()
	// 3 ms apart: a million rows span 50 minutes of ingestion time, inside
	// emitted_ids_ttl, so every emitted id is kept.
	g := &floodRows{gap: 3 * time.Millisecond}
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	start := m.HeapAlloc
	var res floodResult
	began := time.Now()
	for n := 0; g.next < conversations; n++ {
		if err := p.ConsumeLogs(ctx, g.batch(min(benchBatch, conversations-g.next))); err != nil {
			tb.Fatal(err)
		}
		if n%sample == 0 || g.next >= conversations {
			runtime.GC()
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > start {
				res.peakHeap = max(res.peakHeap, m.HeapAlloc-start)
			}
			res.peakHeld = max(res.peakHeld, p.core.Held())
		}
	}
	res.conversion = time.Since(began)
	res.turns = sink.n
	res.forgotten, res.forgotIDs = p.core.Forgotten().Conversations, p.core.Forgotten().EmittedIDs
	res.openTurns = p.core.OpenTurns()
	return res
}

// A flood of distinct conversations, each a single message, must not grow
// the heap past max_buffered_bytes: conversations emitted early, kept
// without rows, their ids and the rows' strings all count, and the budget
// forgets or emits until it holds. Every row stays accounted for: each
// conversation's turn is emitted or still open at the end.
func TestFloodOfConversationsStaysWithinTheBudget(t *testing.T) {
	conversations := 1_000_000
	if testing.Short() {
		conversations = 200_000
	}
	const budget = 64 << 20
	res := flood(t, budget, conversations, 16)
	t.Logf("%d conversations in %v: peak live heap %.1f MiB above the start (budget %d MiB; counted %.1f MiB), %d turns emitted, %d open, %d conversations and %d ids forgotten",
		conversations, res.conversion.Round(time.Millisecond), float64(res.peakHeap)/(1<<20), budget>>20, float64(res.peakHeld)/(1<<20),
		res.turns, res.openTurns, res.forgotten, res.forgotIDs)
	if res.turns+res.openTurns != conversations {
		t.Errorf("%d turns emitted and %d open, want %d in all", res.turns, res.openTurns, conversations)
	}
	// What the budget does not count is bounded by constants and one
	// batch: 16 MiB covers it.
	if limit := uint64(budget + 16<<20); res.peakHeap > limit {
		t.Errorf("live heap peaked at %.1f MiB above the start, over the %d MiB budget and 16 MiB for the rest",
			float64(res.peakHeap)/(1<<20), budget>>20)
	}
	if res.peakHeld > budget+budget/8 {
		t.Errorf("the core counted %.1f MiB, over the %d MiB budget by more than a batch", float64(res.peakHeld)/(1<<20), budget>>20)
	}
}

// BenchmarkFlood is the flood of TestFloodOfConversationsStaysWithinTheBudget at
// full size: 1,000,000 one-message conversations through a processor with
// max_buffered_bytes 64 MiB. It reports the peak live heap (after a
// garbage collection every 16 batches, above the start), what the budget
// counted, and the process's peak RSS (VmHWM: run it on its own).
func BenchmarkFlood(b *testing.B) {
	for range b.N {
		res := flood(b, 64<<20, 1_000_000, 16)
		b.ReportMetric(float64(res.peakHeap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(res.peakHeld)/(1<<20), "peak-counted-MiB")
		b.ReportMetric(64, "budget-MiB")
		if rss := peakRSS(); rss > 0 {
			b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
		}
	}
}

// peakRSS is the process's peak resident set (VmHWM), 0 where unknown.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

package activitypairprocessor

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// benchRows streams rows for n conversations, round-robin, so that every
// conversation always has one open turn: each runs message, topic, action,
// reply, reply, message, ... One row in five opens a turn and completes the
// one before. (A conversation starting mid-cycle first has a turn without a
// message; that costs the same.)
type benchRows struct {
	n      int
	next   int  // global row number
	phased bool // conversations start at different steps of the cycle
}

const benchBatch = 8192

var (
	benchQuestion = "How many days of paid time off do I get in my first year here?"
	benchAnswer   = "Full-time employees accrue 25 days of paid time off per year. Reference: KB104233."
)

func (g *benchRows) batch(size int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(schema.AppInsightsAppID, "00000000-0000-0000-0000-000000000000")
	rl.Resource().Attributes().PutStr(schema.AgentName, "HR Agent")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	recs.EnsureCapacity(size)
	for range size {
		k := g.next
		g.next++
		conv, seq := k%g.n, k/g.n
		// Conversations are at different steps, so that every batch
		// completes about one turn per five rows, as real traffic does.
		pos := seq
		if g.phased {
			pos += conv % 5
		}
		turn, step := pos/5, pos%5
		// a reply in a conversation that started mid-turn answers no message
		answered := pos-seq <= 5*turn
		at := base.Add(time.Duration(seq) * 2 * time.Second)
		rec := recs.AppendEmpty()
		rec.SetTimestamp(pcommon.NewTimestampFromTime(at))
		rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(at.Add(30 * time.Second)))
		a := rec.Attributes()
		a.EnsureCapacity(10)
		// Every string is its own allocation, as a receiver decoding JSON
		// makes them.
		str := strings.Clone
		convID := "conv-" + strconv.Itoa(conv) + "-aaaaaaaaaaaaaaaaaaaaaa"
		activity := convID + "|" + strconv.Itoa(turn)
		a.PutStr(schema.ConversationID, convID)
		a.PutStr(schema.ItemID, fmt.Sprintf("%08x-0000-4000-8000-%012x", k>>32, k&0xffffffffffff))
		a.PutStr(schema.ChannelID, str("webchat"))
		a.PutStr(schema.AgentName, str("HR Agent"))
		a.PutBool(schema.DesignMode, false)
		switch step {
		case 0:
			a.PutStr(schema.EventName, schema.EventMessageReceived)
			a.PutStr(schema.ActivityType, str("message"))
			a.PutStr(schema.ActivityID, activity)
			a.PutStr(schema.UserID, str("dl_8f7c0b0e-5a4d-4f1e-9c1d-2b7a9e3f6d10"))
			a.PutStr(schema.Locale, str("en-US"))
			rec.Body().SetStr(str(benchQuestion))
		case 1:
			a.PutStr(schema.EventName, schema.EventTopicStart)
			a.PutStr(schema.TopicName, str("cr44e_hrAgent.topic.Leave"))
		case 2:
			a.PutStr(schema.EventName, schema.EventTopicAction)
			a.PutStr(schema.TopicName, str("cr44e_hrAgent.topic.Leave"))
			a.PutStr(schema.TopicKind, str("SendActivity"))
		default:
			a.PutStr(schema.EventName, schema.EventMessageSend)
			if answered {
				a.PutStr(schema.ReplyToActivityID, str(activity))
			}
			rec.Body().SetStr(str(benchAnswer))
		}
	}
	return ld
}

// benchConsumer is what the benchmarks push logs through.
type benchConsumer interface {
	component.Component
	consumer.Logs
}

// batcher makes the benchmarks' batches (benchRows, stepRows, toolCallRows).
type batcher interface{ batch(size int) plog.Logs }

// runRowsBenchmark pushes batches through c after warm (untimed) rows, and
// reports rows/s, ns/row and allocations per row.
func runRowsBenchmark(b *testing.B, c benchConsumer, g batcher, warm int) {
	runRowsBenchmarkWait(b, c, g, warm, func(int) {})
}

// runRowsBenchmarkWait also waits, inside the timing, until wait says the
// rows sent so far have all been processed (for asynchronous components).
func runRowsBenchmarkWait(b *testing.B, c benchConsumer, g batcher, warm int, wait func(rows int)) {
	ctx := context.Background()
	warmRows := warm
	for warm > 0 {
		n := min(warm, benchBatch)
		if err := c.ConsumeLogs(ctx, g.batch(n)); err != nil {
			b.Fatal(err)
		}
		warm -= n
	}
	var before, after runtime.MemStats
	var mallocs, bytes uint64
	var cpu time.Duration
	rows := 0
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		ld := g.batch(benchBatch)
		runtime.ReadMemStats(&before)
		cpuBefore := testenv.SelfCPUTime()
		b.StartTimer()
		if err := c.ConsumeLogs(ctx, ld); err != nil {
			b.Fatal(err)
		}
		wait(warmRows + rows + benchBatch)
		b.StopTimer()
		cpu += testenv.SelfCPUTime() - cpuBefore
		runtime.ReadMemStats(&after)
		mallocs += after.Mallocs - before.Mallocs
		bytes += after.TotalAlloc - before.TotalAlloc
		rows += benchBatch
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
	// CPU time (GC workers included) per row: what a core pays, steadier
	// than wall time on a machine shared with other work.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(rows), "cpu-ns/row")
	b.ReportMetric(float64(mallocs)/float64(rows), "allocs/row")
	b.ReportMetric(float64(bytes)/float64(rows), "B/row")
}

// BenchmarkPairing is the processor's cost per row with this many
// conversations open, Akto output included.
func BenchmarkPairing(b *testing.B) {
	for _, open := range []int{1000, 100000, 1000000} {
		b.Run(fmt.Sprintf("open=%d", open), func(b *testing.B) {
			if open > 100000 && testing.Short() {
				b.Skip("1M open conversations in -short mode")
			}
			cfg := createDefaultConfig().(*Config)
			cfg.ReorderWindow = 0
			cfg.MaxOpenTurns = 2 * open
			cfg.MaxBufferedBytes = 1 << 40 // measure pairing, not eviction
			p, err := newProcessor(processortest.NewNopSettings(typ), cfg, consumertest.NewNop(), clock.System)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = p.Shutdown(context.Background()) }()
			g := &benchRows{n: open, phased: true}
			runRowsBenchmark(b, p, g, 5*open)
			b.ReportMetric(float64(p.core.OpenTurns()), "open-turns")
		})
	}
}

// BenchmarkBatchProcessor pushes the same logs through the stock batch
// processor, the yardstick for the pairing cost per row. With its defaults
// (send_batch_size 8192, the size of these batches) it passes each batch on
// whole, moving one resource: a few nanoseconds a row whatever the rows
// hold. "split" makes it cut every batch into batches of 1024, copying each
// record, which is the work it does per row when sizes do not line up.
func BenchmarkBatchProcessor(b *testing.B) {
	for _, split := range []bool{false, true} {
		name := "defaults"
		if split {
			name = "split"
		}
		b.Run(name, func(b *testing.B) {
			f := batchprocessor.NewFactory()
			cfg := f.CreateDefaultConfig().(*batchprocessor.Config)
			if split {
				cfg.SendBatchSize, cfg.SendBatchMaxSize = 1024, 1024
			}
			sink := newCountingSink()
			p, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(f.Type()), cfg, sink)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = p.Shutdown(context.Background()) }()
			// It batches in a goroutine: the timing waits for its output.
			runRowsBenchmarkWait(b, p, &benchRows{n: 1000, phased: true}, 0, sink.waitFor)
		})
	}
}

// BenchmarkOpenTurnMemory measures the heap one open turn (message, topic,
// action, reply) costs beyond its text.
func BenchmarkOpenTurnMemory(b *testing.B) {
	const open = 100000
	for range b.N {
		cfg := createDefaultConfig().(*Config)
		cfg.MaxOpenTurns = 2 * open
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		p, err := newProcessor(processortest.NewNopSettings(typ), cfg, consumertest.NewNop(), clock.System)
		if err != nil {
			b.Fatal(err)
		}
		g := &benchRows{n: open}
		for left := 4 * open; left > 0; left -= benchBatch {
			p.add(g.batch(min(left, benchBatch)), 0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if p.core.OpenTurns() != open {
			b.Fatalf("%d open turns, want %d", p.core.OpenTurns(), open)
		}
		perTurn := float64(after.HeapAlloc-before.HeapAlloc) / open
		text := float64(len(benchQuestion) + len(benchAnswer))
		b.ReportMetric(perTurn, "B/open-turn")
		b.ReportMetric(perTurn-text, "overhead-B/open-turn")
		runtime.KeepAlive(p)
	}
}

// countingSink counts the records it is given and lets a benchmark wait for
// a count.
type countingSink struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int
}

func newCountingSink() *countingSink {
	s := &countingSink{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *countingSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *countingSink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	s.mu.Lock()
	s.n += ld.LogRecordCount()
	s.mu.Unlock()
	s.cond.Broadcast()
	return nil
}

func (s *countingSink) waitFor(n int) {
	s.mu.Lock()
	for s.n < n {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

// nopEncoder writes nothing: BenchmarkPairingFormats/none is the pairing
// without the cost of writing records.
type nopEncoder struct{}

func (nopEncoder) encode(plog.LogRecord, *pairing.Turn)                          {}
func (nopEncoder) readsText() bool                                               { return false }
func (nopEncoder) encodeToolCall(plog.LogRecord, plog.LogRecord, pairing.Source) {}

// BenchmarkPairingFormats splits the cost per row between pairing and
// writing the output, at 1000 open conversations.
func BenchmarkPairingFormats(b *testing.B) {
	for _, format := range []string{formatAkto, formatOTLP, "none"} {
		b.Run(format, func(b *testing.B) {
			cfg := createDefaultConfig().(*Config)
			cfg.ReorderWindow = 0
			if format == formatOTLP {
				cfg.Format = formatOTLP
			}
			p, err := newProcessor(processortest.NewNopSettings(typ), cfg, consumertest.NewNop(), clock.System)
			if err != nil {
				b.Fatal(err)
			}
			if format == "none" {
				p.enc = nopEncoder{}
				p.selection.WarmStrings(false)
			}
			if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = p.Shutdown(context.Background()) }()
			runRowsBenchmark(b, p, &benchRows{n: 1000, phased: true}, 5000)
		})
	}
}

// BenchmarkBodyMemory is what this machine charges for putting one Akto
// record's bytes (as these benchmarks emit them) into memory: "warm" copies
// them into one buffer that stays in the CPU caches, "cold" into a 256 MiB
// ring (beyond any cache: memory untouched for a while), "allocated" into a
// new slice as pdata's ByteSlice.FromRaw does. Each record must own its
// body, in memory no recent record used, so the cold and allocated figures
// are a floor under the Akto format's cost per turn that no change to the
// encoder removes (one turn per five rows here).
func BenchmarkBodyMemory(b *testing.B) {
	body := benchAktoBody(b)
	perRow := func(b *testing.B) { // ns/op is per body
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(5*b.N), "ns/row")
		b.ReportMetric(float64(len(body)), "B/body")
	}
	b.Run("warm", func(b *testing.B) {
		dst := make([]byte, len(body))
		for b.Loop() {
			copy(dst, body)
		}
		perRow(b)
	})
	b.Run("cold", func(b *testing.B) {
		ring := make([]byte, 256<<20)
		at := 0
		for b.Loop() {
			if at+len(body) > len(ring) {
				at = 0
			}
			at += copy(ring[at:], body)
		}
		perRow(b)
	})
	b.Run("allocated", func(b *testing.B) {
		// the last 4096 bodies stay reachable, as records waiting in an
		// exporter's queue do
		kept := make([][]byte, 4096)
		for i := 0; b.Loop(); i++ {
			kept[i%len(kept)] = append([]byte(nil), body...)
		}
		perRow(b)
	})
}

// benchAktoBody is the body of an Akto record the benchmark rows make: of a
// paired turn (the first ones emitted start mid-cycle).
func benchAktoBody(b *testing.B) []byte {
	sink := new(consumertest.LogsSink)
	cfg := createDefaultConfig().(*Config)
	cfg.ReorderWindow = 0
	p, err := newProcessor(processortest.NewNopSettings(typ), cfg, sink, clock.System)
	if err != nil {
		b.Fatal(err)
	}
	g := &benchRows{n: 1000, phased: true}
	for range 3 {
		if err := p.ConsumeLogs(context.Background(), g.batch(benchBatch)); err != nil {
			b.Fatal(err)
		}
	}
	all := sink.AllLogs()
	rec := all[len(all)-1].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	return rec.Body().Bytes().AsRaw()
}

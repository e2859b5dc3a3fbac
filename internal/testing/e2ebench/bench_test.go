// Package e2ebench measures the whole distribution: the Application Insights
// stand-in serving a generated workload, the real collector binary with the
// shipped collector-config.yaml, and a kfake broker (BenchmarkDistribution);
// and the threat-detection webhook answering a steady load of calls
// (webhook_test.go). `make bench` runs it.
package e2ebench

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// rowsPerConversation is a little under what the generator's defaults give
// (about 10.75), so the workload sized from E2EBENCH_ROWS with it has at least
// that many rows.
const rowsPerConversation = 10.6

// BenchmarkDistribution reports rows/s and turns/s from the collector's start
// until every expected turn is on the topic, and the collector's peak RSS.
// The delivered turns are verified against the ground truth: a fast run that
// loses or mangles turns fails.
//
// CPU time per row, which the shared machine's noise hardly moves, tells
// where the two cores go: collector-cpu-us/row is the collector's (utime +
// stime of its process), bench-cpu-us/row this process's (stand-ins, kfake,
// the consumer; the verifier works after the timed part).
//
// With E2EBENCH_PROFILE_DIR set, the collector runs with the pprof extension
// (collector-config.pprof.yaml over the shipped config) and its CPU and heap
// profiles are saved there (see profiler).
func BenchmarkDistribution(b *testing.B) {
	bin := os.Getenv("OTELCOL_BINARY")
	if bin == "" {
		b.Skip("OTELCOL_BINARY is not set: run `make bench`")
	}
	rows := 1_000_000
	if v := os.Getenv("E2EBENCH_ROWS"); v != "" {
		var err error
		if rows, err = strconv.Atoi(v); err != nil {
			b.Fatalf("E2EBENCH_ROWS=%q: %v", v, err)
		}
	}
	// The collector as it starts by default (no memory limit: the heap may
	// grow to twice what is live), and as README "Operations" advises to run
	// it, with GOMEMLIMIT. E2EBENCH_GOMEMLIMIT runs one setting instead.
	limits := []string{"off", recommendedMemoryLimit}
	if v := os.Getenv("E2EBENCH_GOMEMLIMIT"); v != "" {
		limits = []string{v}
	}
	for _, limit := range limits {
		b.Run("GOMEMLIMIT="+limit, func(b *testing.B) {
			// One full run per iteration; the timer covers only the
			// collector's work (make bench runs it with -benchtime 1x).
			for range b.N {
				runOnce(b, bin, rows, limit)
			}
		})
	}
}

// recommendedMemoryLimit is the GOMEMLIMIT README "Operations" gives for a
// collector allowed 512 MiB: about two thirds of it, the rest being the
// mapped storage files and the binary itself.
const recommendedMemoryLimit = "340MiB"

// goMemLimit is the GOMEMLIMIT value for a sub-benchmark's setting; an
// empty one is Go's default, no limit.
func goMemLimit(setting string) string {
	if setting == "off" {
		return ""
	}
	return setting
}

func runOnce(b *testing.B, bin string, rows int, memoryLimit string) {
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir := b.TempDir()
	azure, err := harness.StartAzure(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer azure.Close()
	kafka, err := harness.StartKafka(harness.DefaultTopic, 3)
	if err != nil {
		b.Fatal(err)
	}
	defer kafka.Close()

	// A backlog three hours back, then the watermark conversation that
	// completes its last turns without waiting for the reply timeout.
	now := time.Now()
	work := workload.Generate(harness.BacklogConfig(20261125, int(float64(rows)/rowsPerConversation), now))
	if len(work.Rows) < rows {
		b.Fatalf("workload has %d rows, fewer than the %d asked for: lower rowsPerConversation", len(work.Rows), rows)
	}
	verifier, _ := azure.ServeBacklog(work, 7, now)
	served := func() float64 { return float64(rowsServed(azure.AppInsights)) / float64(len(work.Rows)) }

	// Production settings but for the polling pace: the backlog is read at
	// once rather than every 10 minutes.
	env := harness.Env(azure.Env(), kafka.Env(harness.DefaultTopic), map[string]string{
		"POLL_INTERVAL": "1s", "INGESTION_DELAY": "1s", "REPLY_TIMEOUT": "5m", "LOG_LEVEL": "warn",
		"GOMEMLIMIT": goMemLimit(memoryLimit),
	})
	opts := harness.CollectorOptions{Binary: bin, Config: harness.CollectorConfigPath(), Env: env, StorageDir: dir}
	profileDir := os.Getenv("E2EBENCH_PROFILE_DIR")
	var pprofEndpoint string
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			b.Fatal(err)
		}
		port, err := harness.FreePort()
		if err != nil {
			b.Fatal(err)
		}
		pprofEndpoint = "127.0.0.1:" + strconv.Itoa(port)
		opts.Env = harness.Env(env, map[string]string{"PPROF_ENDPOINT": pprofEndpoint})
		opts.Overlays = []string{pprofOverlay}
	}
	want := verifier.Report().Expected
	// No garbage collection in this process while the collector works: one
	// cycle over the workload's gigabytes of live heap takes seconds of CPU
	// from the collector. The run allocates a few hundred MB (the broker's
	// copies of the records); the memory limit is the backstop.
	restoreGC := pauseGC(4 << 30)
	benchCPUAtStart := harness.SelfCPUTime()
	b.StartTimer()
	started := time.Now()
	col, err := harness.StartCollector(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer col.Kill()
	var prof *profiler
	if profileDir != "" {
		prof = newProfiler(profileDir, col, pprofEndpoint)
	}
	// What the collector holds along the way, sampled about once a second
	// from its own metrics: where the memory goes.
	peaks := map[string]float64{}
	lastSample := time.Time{}
	sample := func() error {
		if time.Since(lastSample) > time.Second {
			lastSample = time.Now()
			for _, name := range []string{"otelcol_activitypair_open_turns", "otelcol_activitypair_rows_buffered", "otelcol_exporter_queue_size"} {
				if v, ok, _ := col.Metric(ctx, name); ok {
					peaks[name] = max(peaks[name], v)
				}
			}
		}
		if prof != nil {
			return prof.tick(ctx, served())
		}
		return nil
	}
	// While the collector works, records are only counted (the broker's
	// high watermarks, polled), not consumed: consuming and verifying would
	// take CPU from the collector on this 2-core machine. Fewer records than
	// expected turns cannot be all of them.
	var arrivals watermarkLog
	err = harness.WaitFor(ctx, 50*time.Millisecond, "as many records as expected turns", func() (bool, error) {
		return arrivals.poll(kafka) >= want, sample()
	})
	b.StopTimer()
	restoreGC()
	if err != nil {
		b.Fatalf("%v: %d records, %d turns expected\n%s", err, arrivals.records(), want, col.Output())
	}
	// CPU up to the last record, before the verifier's work.
	collectorCPU, err := col.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	benchCPU := harness.SelfCPUTime() - benchCPUAtStart

	// Now every record is read and checked, in order, until every expected
	// turn is there (normally at once; later if some records were repeats or
	// the watermark's turn) and then to the end of the topic. The run lasted
	// until the record that completed the set arrived.
	var mu sync.Mutex
	var completing *kgo.Record
	records, err := kafka.Consume(harness.DefaultTopic, func(r *kgo.Record) {
		verifier.Add(r.Value)
		mu.Lock()
		defer mu.Unlock()
		if completing == nil && verifier.Delivered() >= want {
			completing = r
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer records.Close()
	err = harness.WaitFor(ctx, 50*time.Millisecond, "every expected turn read back", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return completing != nil && verifier.Records() >= arrivals.poll(kafka), sample()
	})
	if err != nil {
		b.Fatalf("%v: %d of %d turns, %d records\n%s", err, verifier.Delivered(), want, verifier.Records(), col.Output())
	}
	elapsed := arrivals.at(completing.Partition, completing.Offset).Sub(started)
	mem, err := col.Memory()
	if err != nil {
		b.Fatal(err)
	}
	if prof != nil {
		if err := prof.finish(ctx); err != nil {
			b.Fatal(err)
		}
		b.Logf("collector profiles in %s (cpu.pb.gz: %d s from %.0f%% of the rows served; heap-peak.pb.gz at %d MB RSS)",
			profileDir, cpuProfileSeconds, 100*cpuProfileAt, prof.heapRSS>>20)
	}
	if err := verifier.Report().Err(false); err != nil {
		b.Fatalf("delivered turns do not match the ground truth: %v", err)
	}
	b.ReportMetric(float64(len(work.Rows))/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(want)/elapsed.Seconds(), "turns/s")
	b.ReportMetric(float64(collectorCPU.Microseconds())/float64(len(work.Rows)), "collector-cpu-us/row")
	b.ReportMetric(float64(benchCPU.Microseconds())/float64(len(work.Rows)), "bench-cpu-us/row")
	b.ReportMetric(float64(mem["VmHWM"])/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(mem["RssAnon"])/(1<<20), "end-anon-MB")
	b.ReportMetric(float64(mem["RssFile"])/(1<<20), "end-file-MB")
	b.ReportMetric(float64(len(work.Rows)), "rows")
	b.Logf("%d rows, %d turns in %v; collector peak RSS %d MB (at the end: %d MB anonymous, %d MB mapped files); CPU: collector %v, benchmark process %v",
		len(work.Rows), want, elapsed, mem["VmHWM"]>>20, mem["RssAnon"]>>20, mem["RssFile"]>>20, collectorCPU, benchCPU)
	b.Logf("peaks sampled from the collector's metrics: %v", peaks)
}

// rowsServed is how many rows the stand-in has answered successfully.
func rowsServed(s *fakeappinsights.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Status == http.StatusOK && r.Fault == 0 {
			n += r.Rows
		}
	}
	return n
}

// watermarkLog keeps the broker's high watermarks as polled over time, to
// tell afterwards when a record arrived (to the polling interval).
type watermarkLog struct {
	times []time.Time
	marks []map[int32]int64
}

// poll records the topic's high watermarks now and returns how many records
// the topic holds.
func (l *watermarkLog) poll(kafka *harness.Kafka) int {
	l.times = append(l.times, time.Now())
	l.marks = append(l.marks, kafka.HighWatermarks(harness.DefaultTopic))
	return l.records()
}

func (l *watermarkLog) records() int {
	n := int64(0)
	if len(l.marks) > 0 {
		for _, hw := range l.marks[len(l.marks)-1] {
			n += hw
		}
	}
	return int(n)
}

// at is when the record at offset of partition was first seen on the broker.
func (l *watermarkLog) at(partition int32, offset int64) time.Time {
	i := sort.Search(len(l.marks), func(i int) bool { return l.marks[i][partition] > offset })
	if i == len(l.marks) {
		return time.Now()
	}
	return l.times[i]
}

// pauseGC collects the garbage now and turns the collector off until the
// heap has grown by headroom bytes; the returned function restores both
// settings.
func pauseGC(headroom uint64) (restore func()) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	limit := debug.SetMemoryLimit(int64(ms.HeapAlloc + headroom))
	percent := debug.SetGCPercent(-1)
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

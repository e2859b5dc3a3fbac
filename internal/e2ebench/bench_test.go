// Package e2ebench measures the whole distribution: the Application Insights
// stand-in serving a generated workload, the real collector binary with the
// shipped collector-config.yaml, and a kfake broker. `make bench` runs it.
package e2ebench

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/workload"
)

// rowsPerConversation is a little under what the generator's defaults give
// (about 10.75), so the workload sized from E2EBENCH_ROWS with it has at least
// that many rows.
const rowsPerConversation = 10.6

// BenchmarkDistribution reports rows/s and turns/s from the collector's start
// until every expected turn is on the topic, and the collector's peak RSS.
// The delivered turns are verified against the ground truth: a fast run that
// loses or mangles turns fails.
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
	// One full run per iteration; the timer covers only the collector's work
	// (make bench runs it with -benchtime 1x).
	for range b.N {
		runOnce(b, bin, rows)
	}
}

func runOnce(b *testing.B, bin string, rows int) {
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

	// The workload lies three hours back, so every row is ingested before the
	// watermark conversation, whose arrival completes every workload turn in
	// ingestion time (the last turns need not wait for the reply timeout).
	now := time.Now()
	cfg := workload.DefaultConfig(20261125, int(float64(rows)/rowsPerConversation))
	cfg.Start, cfg.Span, cfg.MaxLateDelay = now.Add(-3*time.Hour), time.Hour, time.Hour
	work := workload.Generate(cfg)
	if len(work.Rows) < rows {
		b.Fatalf("workload has %d rows, fewer than the %d asked for: lower rowsPerConversation", len(work.Rows), rows)
	}
	verifier := workload.NewVerifier(work.Turns)
	azure.AppInsights.AddRows(work.Rows...)
	mark := workload.Generate(workload.Config{Seed: 7, Conversations: 1, GreetingRate: 1})
	verifier.Ignore(mark.Turns[0].ConversationID)
	azure.AppInsights.AddRows(fakeappinsights.Rebase(mark.Rows, now.Add(-20*time.Second))...)
	served := func() float64 { return float64(rowsServed(azure.AppInsights)) / float64(len(work.Rows)) }

	// The consumer only collects the records while the collector works; they
	// are verified once all may be there, so the verifier's CPU is not taken
	// from the collector (the benchmark shares a 2-core machine with it).
	records, err := kafka.Consume(harness.DefaultTopic, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer records.Close()

	// Production settings but for the polling pace: the backlog is read at
	// once rather than every 10 minutes.
	env := harness.Env(azure.Env(), kafka.Env(harness.DefaultTopic), map[string]string{
		"POLL_INTERVAL": "1s", "INGESTION_DELAY": "1s", "REPLY_TIMEOUT": "5m", "LOG_LEVEL": "warn",
		"GOMEMLIMIT": os.Getenv("E2EBENCH_GOMEMLIMIT"),
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
	benchCPUAtStart := selfCPUTime()
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
	verified, completedAt := 0, -1 // values added to the verifier; index of the value that completed the set
	var collectorCPU, benchCPU time.Duration
	err = harness.WaitFor(ctx, 50*time.Millisecond, "every expected turn on the topic", func() (bool, error) {
		if time.Since(lastSample) > time.Second {
			lastSample = time.Now()
			for _, name := range []string{"otelcol_activitypair_open_turns", "otelcol_activitypair_rows_buffered", "otelcol_exporter_queue_size"} {
				if v, ok, _ := col.Metric(ctx, name); ok {
					peaks[name] = max(peaks[name], v)
				}
			}
		}
		if prof != nil {
			if err := prof.tick(ctx, served()); err != nil {
				return false, err
			}
		}
		// Fewer records than expected turns cannot be complete; from then on
		// each new record is checked.
		if records.Len() < want {
			return false, nil
		}
		// CPU up to the last record, before the verifier's work.
		if collectorCPU, err = col.CPUTime(); err != nil {
			return false, err
		}
		benchCPU = selfCPUTime() - benchCPUAtStart
		values := records.Values()
		for ; verified < len(values) && completedAt < 0; verified++ {
			verifier.Add(values[verified])
			if verifier.Delivered() >= want {
				completedAt = verified
			}
		}
		return completedAt >= 0, nil
	})
	b.StopTimer()
	if err != nil {
		b.Fatalf("%v: %d of %d turns\n%s", err, verifier.Delivered(), want, col.Output())
	}
	elapsed := records.ArrivedAt(completedAt).Sub(started)
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
	// Records after the completing one (the watermark's turn, repeats) are
	// checked too.
	for _, v := range records.Values()[verified:] {
		verifier.Add(v)
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

// selfCPUTime is the CPU time this process (stand-ins, broker, consumer,
// verifier, Go runtime) has used so far, user plus system.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

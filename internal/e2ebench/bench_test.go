// Package e2ebench measures the whole distribution: the Application Insights
// stand-in serving a generated workload, the real collector binary with the
// shipped collector-config.yaml, and a kfake broker. `make bench` runs it.
package e2ebench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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

	records, err := kafka.Consume(harness.DefaultTopic, func(r *kgo.Record) { verifier.Add(r.Value) })
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
	want := verifier.Report().Expected
	b.StartTimer()
	started := time.Now()
	col, err := harness.StartCollector(ctx, harness.CollectorOptions{
		Binary: bin, Config: harness.CollectorConfigPath(), Env: env, StorageDir: dir,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer col.Kill()
	// What the collector holds along the way, sampled about once a second
	// from its own metrics: where the memory goes.
	peaks := map[string]float64{}
	lastSample := time.Time{}
	err = harness.WaitFor(ctx, 50*time.Millisecond, "every expected turn on the topic", func() (bool, error) {
		if time.Since(lastSample) > time.Second {
			lastSample = time.Now()
			for _, name := range []string{"otelcol_activitypair_open_turns", "otelcol_activitypair_rows_buffered", "otelcol_exporter_queue_size"} {
				if v, ok, _ := col.Metric(ctx, name); ok {
					peaks[name] = max(peaks[name], v)
				}
			}
		}
		return verifier.Delivered() >= want, nil
	})
	elapsed := time.Since(started)
	b.StopTimer()
	if err != nil {
		b.Fatalf("%v: %d of %d turns\n%s", err, verifier.Delivered(), want, col.Output())
	}
	mem, err := col.Memory()
	if err != nil {
		b.Fatal(err)
	}
	if err := verifier.Report().Err(false); err != nil {
		b.Fatalf("delivered turns do not match the ground truth: %v", err)
	}
	b.ReportMetric(float64(len(work.Rows))/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(want)/elapsed.Seconds(), "turns/s")
	b.ReportMetric(float64(mem["VmHWM"])/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(mem["RssAnon"])/(1<<20), "end-anon-MB")
	b.ReportMetric(float64(mem["RssFile"])/(1<<20), "end-file-MB")
	b.ReportMetric(float64(len(work.Rows)), "rows")
	b.Logf("%d rows, %d turns in %v; collector peak RSS %d MB (at the end: %d MB anonymous, %d MB mapped files)",
		len(work.Rows), want, elapsed, mem["VmHWM"]>>20, mem["RssAnon"]>>20, mem["RssFile"]>>20)
	b.Logf("peaks sampled from the collector's metrics: %v", peaks)
}

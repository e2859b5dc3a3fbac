package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudioreceiver"
)

// BenchmarkShippedProcessors runs each stock processor of
// collector-config.yaml's pipeline before pairing, configured as shipped,
// over the records the copilotstudio receiver makes of a generated workload
// (fetched from the stand-in by the real receiver). It reports what each
// costs per row, so the pipeline's cost can be read stage by stage.
func BenchmarkShippedProcessors(b *testing.B) {
	batches := receivedWorkload(b, 2000)
	conf := shippedConfig(b)
	processors, err := conf.Sub("processors")
	if err != nil {
		b.Fatal(err)
	}
	stages := []struct {
		id      string
		factory processor.Factory
	}{
		{"transform/credentials", transformprocessor.NewFactory()},
		{"redaction/credentials", redactionprocessor.NewFactory()},
		{"transform/truncate", transformprocessor.NewFactory()},
	}
	for _, st := range stages {
		b.Run(st.id, func(b *testing.B) {
			proc := startProcessor(b, st.factory, st.id, processors, consumertest.NewNop())
			runOverBatches(b, proc, batches)
		})
	}
	b.Run("all", func(b *testing.B) {
		var next consumer.Logs = consumertest.NewNop()
		for i := len(stages) - 1; i >= 0; i-- {
			next = startProcessor(b, stages[i].factory, stages[i].id, processors, next)
		}
		runOverBatches(b, next.(processor.Logs), batches)
	})
}

// runOverBatches passes fresh copies of the batches (the processors mutate
// records in place) and reports the cost per row, copying excluded.
func runOverBatches(b *testing.B, proc consumer.Logs, batches []plog.Logs) {
	rows := 0
	for _, ld := range batches {
		rows += ld.LogRecordCount()
	}
	b.ResetTimer()
	var elapsed, cpu time.Duration
	for range b.N {
		copies := make([]plog.Logs, len(batches))
		for i, ld := range batches {
			copies[i] = plog.NewLogs()
			ld.CopyTo(copies[i])
		}
		start, startCPU := time.Now(), harness.SelfCPUTime()
		for _, ld := range copies {
			if err := proc.ConsumeLogs(context.Background(), ld); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(start)
		cpu += harness.SelfCPUTime() - startCPU
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*rows), "ns/row")
	// CPU time (GC included) is steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*rows), "cpu-ns/row")
}

// receivedWorkload runs the real receiver, configured from
// collector-config.yaml, against the stand-in serving a generated workload of
// the given number of conversations, and returns what it emitted.
func receivedWorkload(b *testing.B, conversations int) []plog.Logs {
	b.Helper()
	azure, err := harness.StartAzure(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(azure.Close)
	cfg := workload.DefaultConfig(20261125, conversations)
	cfg.Start = time.Now().Add(-3 * time.Hour)
	work := workload.Generate(cfg)
	azure.AppInsights.AddRows(work.Rows...)
	for k, v := range harness.Env(azure.Env(), map[string]string{"INGESTION_DELAY": "0s", "KAFKA_BROKERS": "localhost:9"}) {
		b.Setenv(k, v)
	}

	conf := shippedConfig(b)
	f := copilotstudioreceiver.NewFactory()
	rcfg := f.CreateDefaultConfig().(*copilotstudioreceiver.Config)
	unmarshalSection(b, conf, "receivers::copilotstudio", rcfg)
	rcfg.StorageID = nil // the cursor in memory: one pass over the backlog
	sink := new(consumertest.LogsSink)
	rcv, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), rcfg, sink)
	if err != nil {
		b.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = rcv.Shutdown(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := harness.WaitFor(ctx, 20*time.Millisecond, "every workload row received", func() (bool, error) {
		return sink.LogRecordCount() >= len(work.Rows), nil
	}); err != nil {
		b.Fatalf("%v: %d of %d rows", err, sink.LogRecordCount(), len(work.Rows))
	}
	return sink.AllLogs()
}

func shippedConfig(b *testing.B) *confmap.Conf {
	b.Helper()
	conf, err := harness.LoadCollectorConfig(harness.CollectorConfigPath())
	if err != nil {
		b.Fatal(err)
	}
	return conf
}

package e2e

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/cardmaskprocessor"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudioreceiver"
)

// BenchmarkShippedProcessors runs each processor of collector-config.yaml's
// pipeline before pairing, configured as shipped, over the records the
// copilotstudio receiver makes of a generated workload (fetched from the
// stand-in by the real receiver). It reports what each costs per row, so
// the pipeline's cost can be read stage by stage.
func BenchmarkShippedProcessors(b *testing.B) {
	batches := receivedWorkload(b, 2000)
	conf := shippedConfig(b)
	processors, err := conf.Sub("processors")
	if err != nil {
		b.Fatal(err)
	}
	stages := append(slices.Clone(maskingProcessors), "transform/truncate")
	for _, id := range stages {
		b.Run(id, func(b *testing.B) {
			proc := startProcessor(b, processorFactory(b, id), id, processors, consumertest.NewNop())
			runOverBatches(b, proc, batches)
		})
	}
	b.Run("all", func(b *testing.B) {
		var next consumer.Logs = consumertest.NewNop()
		for i := len(stages) - 1; i >= 0; i-- {
			next = startProcessor(b, processorFactory(b, stages[i]), stages[i], processors, next)
		}
		runOverBatches(b, next, batches)
	})
}

// MaskingBaselineEnv names a collector config whose masking is measured
// beside the shipped one's in BenchmarkMaskingCost, e.g. an earlier
// collector-config.yaml (`git show main:collector-config.yaml > /tmp/base.yaml`).
const MaskingBaselineEnv = "MASKING_BASELINE_CONFIG"

// BenchmarkMaskingCost is what credential masking costs per MB of text (the
// body and the string attributes the processors scan): every processor of
// the logs pipeline between memory_limiter and transform/truncate, as
// configured, over the generated workload ("workload", ordinary
// conversations) and over the masking corpus repeated ("corpus", where
// nearly every text holds a credential). With MASKING_BASELINE_CONFIG set,
// the same for that config's masking, sub-benchmark "baseline"; run with
// -count to interleave the two.
func BenchmarkMaskingCost(b *testing.B) {
	inputs := []struct {
		name    string
		batches []plog.Logs
	}{
		{"workload", receivedWorkload(b, 2000)},
		{"corpus", corpusBatches(b, 20000)},
	}
	configs := []struct{ name, path string }{{"shipped", harness.CollectorConfigPath()}}
	if path := os.Getenv(MaskingBaselineEnv); path != "" {
		configs = append(configs, struct{ name, path string }{"baseline", path})
	}
	for _, in := range inputs {
		for _, c := range configs {
			b.Run(in.name+"/"+c.name, func(b *testing.B) {
				conf, err := harness.LoadCollectorConfig(c.path)
				if err != nil {
					b.Fatal(err)
				}
				processors, err := conf.Sub("processors")
				if err != nil {
					b.Fatal(err)
				}
				ids := maskingStages(b, conf)
				var next consumer.Logs = consumertest.NewNop()
				for i := len(ids) - 1; i >= 0; i-- {
					next = startProcessor(b, processorFactory(b, ids[i]), ids[i], processors, next)
				}
				cpu := runOverBatches(b, next, in.batches)
				mb := float64(textBytes(in.batches)) / 1e6
				b.ReportMetric(float64(cpu.Nanoseconds())/1e6/float64(b.N)/mb, "cpu-ms/MB")
				b.ReportMetric(mb*float64(b.N)/cpu.Seconds(), "MB/cpu-s")
			})
		}
	}
}

// maskingStages are the processors of conf's logs pipeline after
// memory_limiter and before transform/truncate.
func maskingStages(b *testing.B, conf *confmap.Conf) []string {
	b.Helper()
	pipeline := asStrings(conf.Get("service::pipelines::logs::processors"))
	from, to := slices.Index(pipeline, "memory_limiter"), slices.Index(pipeline, "transform/truncate")
	if from < 0 || to <= from+1 {
		b.Fatalf("logs pipeline %v has no masking between memory_limiter and transform/truncate", pipeline)
	}
	return pipeline[from+1 : to]
}

func processorFactory(b testing.TB, id string) processor.Factory {
	b.Helper()
	switch typ, _, _ := strings.Cut(id, "/"); typ {
	case "transform":
		return transformprocessor.NewFactory()
	case "redaction":
		return redactionprocessor.NewFactory()
	case "cardmask":
		return cardmaskprocessor.NewFactory()
	}
	b.Fatalf("no factory for processor %s", id)
	return nil
}

// textBytes is the length of every string body and string attribute.
func textBytes(batches []plog.Logs) int {
	n := 0
	for _, ld := range batches {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if lr.Body().Type() == pcommon.ValueTypeStr {
						n += len(lr.Body().Str())
					}
					for _, v := range lr.Attributes().All() {
						if v.Type() == pcommon.ValueTypeStr {
							n += len(v.Str())
						}
					}
				}
			}
		}
	}
	return n
}

// corpusBatches is the masking corpus, positive and negative samples in
// turn, as the bodies of rows that also carry the attributes the receiver
// writes, in batches of 5000 rows.
func corpusBatches(b *testing.B, rows int) []plog.Logs {
	b.Helper()
	var texts []string
	for _, p := range loadCorpus[positiveSample](b, "positive.jsonl") {
		texts = append(texts, p.Text)
	}
	for _, n := range loadCorpus[negativeSample](b, "negative.jsonl") {
		texts = append(texts, n.Text)
	}
	var out []plog.Logs
	var records plog.LogRecordSlice
	for i := range rows {
		if i%5000 == 0 {
			ld := plog.NewLogs()
			records = ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
			out = append(out, ld)
		}
		rec := records.AppendEmpty()
		rec.Body().SetStr(texts[i%len(texts)])
		attrs := rec.Attributes()
		attrs.PutStr("event.name", "BotMessageReceived")
		attrs.PutStr("gen_ai.conversation.id", "Ke8hX2tPz0mQ7vR4yN1bL6-eu")
		attrs.PutStr("copilotstudio.item_id", "5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a69")
		attrs.PutStr("copilotstudio.activity.id", "Ke8hX2tPz0mQ7vR4yN1bL6-eu|0000012")
		attrs.PutStr("copilotstudio.channel.id", "webchat")
		attrs.PutStr("copilotstudio.locale", "en-US")
		attrs.PutStr("user.name", "Megan Bowen")
	}
	return out
}

// runOverBatches passes fresh copies of the batches (the processors mutate
// records in place), reports the cost per row, copying excluded, and
// returns the CPU time it measured.
func runOverBatches(b *testing.B, proc consumer.Logs, batches []plog.Logs) time.Duration {
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
	return cpu
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

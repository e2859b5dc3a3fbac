// Package harness runs the real otelcol-copilotstudio distribution against
// local stand-ins, for the end-to-end test, the fault-injection suite and
// cmd/localrun. Everything listens on loopback; nothing needs the network.
//
//	root, _ := harness.RepoRoot()
//	kafka, _ := harness.StartKafka(harness.DefaultTopic, 3)        // kfake broker
//	azure, _ := harness.StartAzure(dir)                            // Application Insights + Entra ID stand-ins, HTTPS
//	sample, _ := harness.LoadSample(root, time.Now().Add(-time.Second))
//	azure.AppInsights.AddRows(sample.Rows...)
//	env := harness.Env(azure.Env(), kafka.Env(harness.DefaultTopic), harness.FastEnv())
//	col, _ := harness.StartCollector(ctx, harness.CollectorOptions{
//		Binary: bin, Config: harness.CollectorConfigPath(), Env: env, StorageDir: dir,
//	})                                                             // returns once health_check answers 200
//	records, _ := kafka.Consume(harness.DefaultTopic, nil)        // every record from the start
//	_ = records.WaitUntil(ctx, func(vals [][]byte) bool { return len(vals) >= n })
//	_ = col.Kill()                                                // SIGKILL
//	_ = col.Start(ctx)                                            // same env, same storage
//
// Binary(t) finds the binary `make build` made (OTELCOL_BINARY). Azure.CursorPassed
// says when rows are behind the receiver's stored cursor (the moment to kill
// between a message and its reply); Collector.Metric reads one of the
// collector's own metrics, Collector.Memory and Collector.CPUTime its
// process's figures from /proc; CollectorOptions.Overlays adds config files
// merged over Config (e.g. to enable the pprof extension);
// Kafka.HighWatermarks counts records without consuming them,
// Kafka.SetProduceDown refuses producers and Kafka.ProduceRefused counts the
// refusals; Azure.AnsweredUpTo says how far the receiver has read; BacklogConfig
// and Azure.ServeBacklog serve a generated backlog with the watermark
// conversation that completes its last turns. WaitFor polls
// such outside-only conditions until a deadline, which is a failure guard,
// never the synchronisation itself.
package harness

package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/aktocheck"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudioreceiver"
)

const (
	mainTopic            = "akto.api.logs"
	unauthenticatedTopic = "akto.api.logs.unauthenticated"
)

// TestDataverseOverlayRoutesUnauthenticatedTurns loads collector-config.yaml
// with the collector-config.dataverse.yaml overlay the README documents, as
// the collector merges two --config files, and runs its routing step and the
// Kafka exporter against a kfake broker: a turn of an agent anyone can use
// lands on its own topic, every other turn on the main one.
func TestDataverseOverlayRoutesUnauthenticatedTurns(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, mainTopic, unauthenticatedTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	for k, v := range map[string]string{
		"APPINSIGHTS_APP_ID": "9f3c5d2e-0000-4000-8000-00000000a001", "AZURE_TENANT_ID": "tenant", "AZURE_CLIENT_ID": "client",
		"AZURE_CLIENT_SECRET": "not-a-secret", "KAFKA_BROKERS": cluster.ListenAddrs()[0], "KAFKA_TOPIC": mainTopic,
		"DATAVERSE_URL": "https://contoso.crm.dynamics.com",
	} {
		t.Setenv(k, v)
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	base, err := harness.LoadCollectorConfig(harness.CollectorConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	conf, err := harness.LoadCollectorConfig(harness.CollectorConfigPath(), filepath.Join(root, "collector-config.dataverse.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	// The overlay keeps the base pipeline and adds routing after pairing.
	want := append(asStrings(base.Get("service::pipelines::logs::processors")), "transform/route-unauthenticated")
	if got := asStrings(conf.Get("service::pipelines::logs::processors")); !slices.Equal(got, want) {
		t.Fatalf("overlay pipeline %v, want the base one plus routing: %v", got, want)
	}
	// The receiver section still validates, now with Dataverse.
	rcvCfg := copilotstudioreceiver.NewFactory().CreateDefaultConfig().(*copilotstudioreceiver.Config)
	unmarshalSection(t, conf, "receivers::copilotstudio", rcvCfg)
	if err := rcvCfg.Validate(); err != nil {
		t.Fatalf("receiver config with the overlay: %v", err)
	}
	if dv := rcvCfg.Dataverse.Get(); dv == nil || dv.URL != "https://contoso.crm.dynamics.com" {
		t.Fatalf("dataverse section = %+v", dv)
	}

	exporter := startKafkaExporter(t, conf)
	processors, err := conf.Sub("processors")
	if err != nil {
		t.Fatal(err)
	}
	route := startProcessor(t, transformprocessor.NewFactory(), "transform/route-unauthenticated", processors, exporter)

	logs := plog.NewLogs()
	addTurn(logs, "conv-faq", true, `{"turn":"public"}`)
	addTurn(logs, "conv-hr", false, `{"turn":"entra"}`)
	if err := route.ConsumeLogs(context.Background(), logs); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for topic, body := range map[string]string{unauthenticatedTopic: `{"turn":"public"}`, mainTopic: `{"turn":"entra"}`} {
		c, err := harness.NewConsumer(cluster.ListenAddrs(), topic, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WaitUntil(ctx, func(v [][]byte) bool { return len(v) >= 1 }); err != nil {
			t.Fatalf("nothing on %s: %v", topic, err)
		}
		if got := c.Values(); len(got) != 1 || string(got[0]) != body {
			t.Errorf("%s holds %q, want exactly %s", topic, got, body)
		}
	}
}

func addTurn(logs plog.Logs, conversation string, unauthenticated bool, body string) {
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(schema.ConversationID, conversation)
	rl.Resource().Attributes().PutBool(schema.AgentUnauthenticated, unauthenticated)
	rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetEmptyBytes().FromRaw([]byte(body))
}

func unmarshalSection(t testing.TB, conf *confmap.Conf, key string, cfg any) {
	t.Helper()
	section, err := conf.Sub(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := section.Unmarshal(cfg); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
}

// startKafkaExporter builds exporters::kafka as configured, with its
// persistent queue on a real file_storage extension.
func startKafkaExporter(t *testing.T, conf *confmap.Conf) exporter.Logs {
	t.Helper()
	host := harness.StartFileStorage(t, t.TempDir())

	f := kafkaexporter.NewFactory()
	cfg := f.CreateDefaultConfig()
	unmarshalSection(t, conf, "exporters::kafka", cfg)
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// TestDataverseOverlayEndToEnd runs the built collector with the Dataverse
// overlay against stand-ins of Application Insights, Entra ID, Dataverse
// and Kafka, on four kinds of agent: one anyone can use, published ones,
// one never published, one Dataverse does not know. A backlog is read at
// the first start; the collector is killed (SIGKILL) and a second backlog
// waits while it is down; at the restart the agent list is throttled once.
// Every record, on either topic, is filed as Akto files its own
// connector's (aktocheck): no turn of an agent Dataverse knows leaves
// without its identity, bot-published-state is there exactly for the
// published ones, and the open agent's turns are on the unauthenticated
// topic.
func TestDataverseOverlayEndToEnd(t *testing.T) {
	bin := harness.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, mainTopic, unauthenticatedTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	azure, err := harness.StartAzure(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer azure.Close()

	// The agents: workload.DefaultAgents, as Dataverse lists them.
	agents := workload.DefaultAgents
	bots := []fakedataverse.Bot{
		{BotID: "bot-hr", Name: agents[0].Name, SchemaName: agents[0].Schema, AuthenticationMode: 2, PublishedOn: "2026-01-15T09:00:00Z"},
		{BotID: "bot-it", Name: agents[1].Name, SchemaName: agents[1].Schema, AuthenticationMode: 1, PublishedOn: "2026-01-15T09:00:00Z"},
		{BotID: "bot-travel", Name: agents[2].Name, SchemaName: agents[2].Schema, AuthenticationMode: 2}, // never published
		{BotID: "bot-cafe", Name: agents[3].Name, SchemaName: agents[3].Schema, AuthenticationMode: 3, PublishedOn: "2026-02-01T10:00:00Z"},
		// agents[4] is not in this environment
	}
	want := []aktocheck.Agent{
		{Name: agents[0].Name, Published: true, Identified: true, SchemaName: agents[0].Schema},
		{Name: agents[1].Name, Published: true, Identified: true, SchemaName: agents[1].Schema},
		{Name: agents[2].Name, Identified: true, SchemaName: agents[2].Schema},
		{Name: agents[3].Name, Published: true, Identified: true, SchemaName: agents[3].Schema},
		{Name: agents[4].Name},
	}
	dv := azure.StartDataverse("env-contoso", bots...)
	defer dv.Close()

	var consumers []*harness.Consumer
	for _, topic := range []string{mainTopic, unauthenticatedTopic} {
		c, err := harness.NewConsumer(cluster.ListenAddrs(), topic, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		consumers = append(consumers, c)
	}

	now := time.Now()
	first := workload.Generate(harness.BacklogConfig(20261207, 40, now))
	verifier, _ := azure.ServeBacklog(first, 20261208, now)

	col := startCollector(ctx, t, harness.CollectorOptions{
		Binary: bin, Config: harness.CollectorConfigPath(),
		Overlays: []string{filepath.Join(root, "collector-config.dataverse.yaml")},
		Env: harness.Env(azure.Env(), harness.FastEnv(), map[string]string{
			"KAFKA_BROKERS": cluster.ListenAddrs()[0], "KAFKA_TOPIC": mainTopic, "KAFKA_UNAUTHENTICATED_TOPIC": unauthenticatedTopic,
			"DATAVERSE_URL": dv.URL,
		}),
		StorageDir: filepath.Join(dir, "storage"),
	})
	defer killAndReport(t, col)

	fed := make([]int, len(consumers))
	waitDelivered := func(v *workload.Verifier, n int) {
		t.Helper()
		err := harness.WaitFor(ctx, 100*time.Millisecond, "every turn of the backlog on either topic", func() (bool, error) {
			for i, c := range consumers {
				values := c.Values()
				for ; fed[i] < len(values); fed[i]++ {
					v.Add(values[fed[i]])
				}
			}
			return v.Delivered() >= n, nil
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, v.Report())
		}
	}
	waitDelivered(verifier, len(first.Turns))
	if err := verifier.Report().Err(false); err != nil {
		t.Fatalf("first backlog: %v", err)
	}

	// A second backlog builds up while the collector is down; at the
	// restart the agent list answers 429 once before it is read.
	if err := col.Kill(); err != nil {
		t.Fatal(err)
	}
	second := workload.Generate(workload.Config{
		Seed: 20261209, Conversations: 30, Start: time.Now().Add(-30 * time.Minute), Span: 10 * time.Minute,
		GreetingRate: 0.5, MissingReplyIDRate: 1.0 / 12,
	})
	restart := time.Now()
	for i := range second.Rows {
		second.Rows[i].IngestionTime = restart.Add(-time.Second - time.Duration(len(second.Rows)-i)*time.Millisecond)
	}
	azure.AppInsights.AddRows(second.Rows...)
	dv.Throttle(1, 2)
	if err := col.Start(ctx); err != nil {
		t.Fatal(err)
	}
	verifier.Expect(second.Turns)
	waitDelivered(verifier, len(first.Turns)+len(second.Turns))
	if err := verifier.Report().Err(true); err != nil {
		t.Fatalf("after the restart: %v", err)
	}

	var all [][]byte
	for i, c := range consumers {
		values := c.Values()
		all = append(all, values...)
		for _, v := range values {
			d, err := workload.DecodeAkto(v)
			if err != nil {
				t.Fatal(err)
			}
			if open := d.BotName == workload.SanitizeAgentName(agents[1].Name, false); open != (i == 1) {
				t.Errorf("a turn of %s is on topic %s", d.BotName, []string{mainTopic, unauthenticatedTopic}[i])
			}
		}
	}
	checkAktoFiling(t, all, aktocheck.Options{Agents: want})
	t.Logf("%d records of %d agents checked: %s", len(all), len(want), verifier.Report())
}

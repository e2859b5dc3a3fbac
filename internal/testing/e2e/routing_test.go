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
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
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

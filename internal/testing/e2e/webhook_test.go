package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/aktocheck"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

// TestWebhookEndToEnd plays Copilot Studio against the built collector with
// collector-config.webhook.yaml: four callers send threat-detection calls of
// every shape the reference lists, with tokens the Entra ID stand-in signed,
// and the collector is SIGKILLed while they do. Every call answered
// `Otelcol-Record: accepted` (the receiver's word that the record was in the
// Kafka exporter's queue on disk) reaches Kafka as its own record, once, or
// again only after the kill and under the same record id; each says what its
// call said (agent, tool, user's message, cross-tenant flag); every answer is
// 200 {"blockAction":false}; no credential from a tool's input values or a
// message reaches Kafka; the records pass Akto's filing rules. Calls
// answered at the deadline, or not at all while the collector was down, are
// counted and logged, not required.
func TestWebhookEndToEnd(t *testing.T) {
	bin := harness.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	kafka, azure := startKafkaAndAzure(t, dir)
	webhook, err := azure.NewWebhook(dir)
	if err != nil {
		t.Fatal(err)
	}
	const workers = 4
	client, err := webhook.Client(workers)
	if err != nil {
		t.Fatal(err)
	}

	ledger := webhookclient.NewLedger()
	var kills harness.KillMarks
	ledger.Epoch = kills.Epoch
	consumer, err := kafka.Consume(harness.DefaultTopic, func(r *kgo.Record) { ledger.Add(r.Value, r.Partition, r.Offset) })
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()

	col := startCollector(ctx, t, harness.CollectorOptions{
		Binary: bin, Config: harness.CollectorConfigPath(), Overlays: []string{harness.WebhookOverlayPath()},
		Env:        harness.Env(azure.Env(), kafka.Env(harness.DefaultTopic), harness.FastEnv(), webhook.Env()),
		StorageDir: filepath.Join(dir, "storage"),
	})
	defer killAndReport(t, col)
	wait := func(what string, cond func() bool) {
		t.Helper()
		if err := harness.WaitFor(ctx, 20*time.Millisecond, what, func() (bool, error) { return cond(), nil }); err != nil {
			t.Fatalf("%v\n%s", err, ledger.Report())
		}
	}

	// What Copilot Studio sends when an admin saves the set-up.
	if a, err := client.Validate(ctx); err != nil || a.Status != 200 || !bytes.Contains(a.Body, []byte(`"isSuccessful":true`)) {
		t.Fatalf("validate: %v, %d %s", err, a.Status, a.Body)
	}

	gen := webhookclient.NewGenerator(20261214, webhookclient.Options{StableAgents: true})
	flow := webhookclient.StartFlow(ctx, client, gen, ledger, workers)
	defer flow.Stop()
	// Mid-stream: calls on the topic already, more being sent and queued.
	wait("accepted calls on the topic", func() bool { return ledger.Delivered() >= 20 })
	acceptedBefore := ledger.Accepted()
	if err := col.Kill(); err != nil {
		t.Fatal(err)
	}
	kills.Mark(kafka, harness.DefaultTopic)
	t.Logf("killed with %d calls accepted, %d of them on the topic", acceptedBefore, ledger.Delivered())
	if err := col.Start(ctx); err != nil {
		t.Fatal(err)
	}
	flow.Resume()
	wait("calls accepted after the restart", func() bool { return ledger.Accepted() >= acceptedBefore+40 })
	flow.Stop()
	wait("every accepted call on the topic", func() bool { return ledger.Delivered() >= ledger.Accepted() })
	if err := col.Stop(30 * time.Second); err != nil {
		t.Logf("collector did not stop cleanly: %v", err)
	}
	total := kafka.RecordCount(harness.DefaultTopic)
	wait("the topic read to its end", func() bool { return ledger.Records() >= total })

	rep := ledger.Report()
	if err := rep.Err(true); err != nil {
		t.Fatalf("tool calls: %v", err)
	}
	if rep.Answers[webhookclient.Unanswered] == 0 {
		t.Errorf("no call went unanswered while the collector was down: the kill did not strike while calls flowed")
	}
	values := consumer.Values()
	checkNoCredentials(t, values)
	all := string(bytes.Join(values, nil))
	if !strings.Contains(all, `[password]`) || !strings.Contains(all, `[jwt]`) || strings.Contains(all, "hunter2-") {
		t.Errorf("the input values' password and token are not shown masked in the records: the credential check proves nothing")
	}
	checkToolCallsFiled(t, values, gen.Agents())
	t.Logf("%s", rep)
}

// checkToolCallsFiled applies Akto's filing rules to tool-call records of
// the generator's agents (published, one identity each) and checks every
// record is a tool call.
func checkToolCallsFiled(t *testing.T, values [][]byte, agentNames []string) {
	t.Helper()
	var agents []aktocheck.Agent
	for _, name := range agentNames {
		agents = append(agents, aktocheck.Agent{Name: name, Published: true})
	}
	for i, v := range values {
		var rec struct {
			Path string `json:"path"`
		}
		if err := json.Unmarshal(v, &rec); err != nil || !strings.Contains(rec.Path, "/tool/") {
			t.Fatalf("record %d is not a tool call (%v): %.200s", i, err, v)
		}
	}
	checkAktoFiling(t, values, aktocheck.Options{Agents: agents})
}

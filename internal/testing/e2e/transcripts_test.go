package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/aktocheck"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// TestTranscriptsEndToEnd runs generated transcripts (plans with completed,
// failed, blocked and never finished steps, knowledge searches, split and
// resumed conversations, activities out of order and repeated) through the
// built collector with collector-config.transcripts.yaml, killed (SIGKILL)
// once turns have started to arrive. Every turn arrives with its user
// message and replies, failed when a step failed or was blocked or an error
// trace belongs to it, its tool calls listed in the order they were
// triggered with their final state, and a _traces array Akto's runtime reads
// as a trace; every record passes Akto's filing rules.
func TestTranscriptsEndToEnd(t *testing.T) {
	bin := harness.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kafka, azure := startKafkaAndAzure(t, dir)
	consumer, err := kafka.Consume(harness.DefaultTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()

	cfg := workload.DefaultTranscriptConfig(20261210, 60)
	cfg.Start, cfg.Span = time.Now().Add(-4*time.Hour), time.Hour
	cfg.LateRate = 0 // late commits are the receiver's tests' business
	w := workload.GenerateTranscripts(cfg)

	dv := azure.StartDataverse("env-contoso", w.Bots...)
	defer dv.Close()
	dv.AddTranscripts(w.Rows...)

	col := startCollector(ctx, t, harness.CollectorOptions{
		Binary: bin, Config: harness.CollectorConfigPath(),
		Overlays: []string{filepath.Join(root, "collector-config.transcripts.yaml")},
		Env: harness.Env(azure.Env(), kafka.Env(harness.DefaultTopic), harness.FastEnv(), map[string]string{
			"DATAVERSE_URL": dv.URL, "TRANSCRIPTS_POLL_INTERVAL": "1s",
			"TRANSCRIPTS_PAGE_SIZE": "7",
		}),
		StorageDir: filepath.Join(dir, "storage"),
	})
	defer killAndReport(t, col)

	turns := w.VerifierTurns()
	ty := newTally(turns)
	if err := consumer.WaitUntil(ctx, ty.until(func(v *workload.Verifier) bool { return v.Delivered() > 0 })); err != nil {
		t.Fatalf("no turn arrived: %v", err)
	}
	if err := col.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed with %d of %d turns delivered", ty.v.Delivered(), len(turns))
	if err := col.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ty.waitDelivered(ctx, t, consumer, len(turns))
	if err := ty.v.Report().Err(true); err != nil {
		t.Fatalf("transcript turns: %v", err)
	}

	// The steps of each turn, as the record lists them.
	byKey := map[string]*workload.TranscriptTurn{}
	for i := range w.Turns {
		tt := &w.Turns[i]
		byKey[tt.ConversationID+"\x00"+tt.RequestActivityID] = tt
	}
	checked := 0
	for _, v := range consumer.Values() {
		d, err := workload.DecodeAkto(v)
		if err != nil {
			t.Fatal(err)
		}
		tt := byKey[d.ConversationID+"\x00"+d.RequestActivityID]
		if tt == nil || d.RequestActivityID == "" {
			continue
		}
		var rec struct {
			RequestHeaders string `json:"requestHeaders"`
			Traces         string `json:"_traces"`
		}
		if err := json.Unmarshal(v, &rec); err != nil {
			t.Fatal(err)
		}
		var headers map[string]string
		if err := json.Unmarshal([]byte(rec.RequestHeaders), &headers); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, st := range tt.Steps {
			want = append(want, st.ToolID+"="+st.State)
		}
		if got := headers[schema.AktoHeaderToolCalls]; got != strings.Join(want, ", ") {
			t.Errorf("turn %d of %s: tool calls %q, want %q", tt.Index, tt.ConversationID, got, strings.Join(want, ", "))
		}
		if len(tt.Steps) == 0 {
			continue
		}
		var acts []struct {
			Type string `json:"type"`
			Name string `json:"name"`
			From struct {
				Role int `json:"role"`
			} `json:"from"`
		}
		if err := json.Unmarshal([]byte(rec.Traces), &acts); err != nil {
			t.Fatalf("turn %d of %s: _traces: %v", tt.Index, tt.ConversationID, err)
		}
		user, plan := false, false
		for _, a := range acts {
			user = user || (a.Type == "message" && a.From.Role == 1)
			plan = plan || strings.HasPrefix(a.Name, "DynamicPlan")
		}
		if !user || !plan {
			t.Errorf("turn %d of %s: _traces has a user message %t and a DynamicPlan activity %t: Akto would not read it as a trace",
				tt.Index, tt.ConversationID, user, plan)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no planned turn was checked")
	}

	var agents []aktocheck.Agent
	for i, a := range workload.DefaultAgents {
		agents = append(agents, aktocheck.Agent{Name: a.Name, Published: true, Identified: true, SchemaName: w.Bots[i].SchemaName})
	}
	checkAktoFiling(t, consumer.Values(), aktocheck.Options{Agents: agents})
	t.Logf("%s; %d planned turns checked step by step; workload %s", ty.v.Report(), checked, fmt.Sprint(w.Summary()))
}

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/aktocheck"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor"
)

// Credentials a tool is given or returns. None may reach Akto.
const (
	toolPassword  = "Tr0ub4dor&3-payroll" // #nosec G101 -- a test fixture
	toolAWSKey    = "AKIAIOSFODNN7EXAMPLE"
	toolGitHubPAT = "ghp_R2d9xQ7mNw3KpL5vB8cZ1aS4dF6gH0jJ2kE7" // #nosec G101 -- a test fixture
)

// TestToolArgumentsAndOutputsAreMaskedBeforeAkto runs a transcript turn
// whose tool was called with a password and returned keys, and a tool call
// from the threat-detection webhook carrying a key in its input values and
// a token in an earlier output, through collector-config.yaml's processors
// as the pipeline runs them (masking, truncation, activitypair with its
// file_storage): no credential is in the Akto records, each kind is marked.
func TestToolArgumentsAndOutputsAreMaskedBeforeAkto(t *testing.T) {
	t.Setenv("REORDER_WINDOW", "0s") // a turn goes out once the next message is read
	conf, err := harness.LoadCollectorConfig(harness.CollectorConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	checkMaskedBeforePairing(t, "collector-config.yaml", conf)
	processors, err := conf.Sub("processors")
	if err != nil {
		t.Fatal(err)
	}
	sink := new(consumertest.LogsSink)
	pair := startActivityPair(t, processors, sink)
	truncate := startProcessor(t, processorFactory(t, "transform/truncate"), "transform/truncate", processors, pair)
	first := startMaskingProcessors(t, processors, truncate)

	if err := first.ConsumeLogs(context.Background(), stepsWithCredentials()); err != nil {
		t.Fatal(err)
	}
	var values [][]byte
	for _, ld := range sink.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, rec := range sl.LogRecords().All() {
					values = append(values, rec.Body().Bytes().AsRaw())
				}
			}
		}
	}
	if len(values) != 2 {
		t.Fatalf("%d records, want the tool call and the first turn", len(values))
	}
	all := string(values[0]) + string(values[1])
	for _, secret := range []string{toolPassword, toolAWSKey, toolGitHubPAT, opaqueBearer, entraJWT} {
		if strings.Contains(all, secret) {
			t.Errorf("an Akto record carries %.12s...", secret)
		}
	}
	for _, marker := range []string{"[password]", "[aws-access-key]", "[github-token]", "[bearer-token]", "[jwt]"} {
		if !strings.Contains(all, marker) {
			t.Errorf("no %s marker in the records: the credential's place is not shown", marker)
		}
	}
	// The arguments and the observation are still there, masked, in
	// _traces and in the tool call's payload.
	if !strings.Contains(all, "DynamicPlanStepBindUpdate") || !strings.Contains(all, `\"arguments\":`) {
		t.Errorf("the tool's arguments are gone from the records:\n%s", all)
	}
	if err := aktocheck.Records(values, aktocheck.Options{TagSetsPerAgent: 2}); err != nil {
		t.Fatal(err)
	}
}

// startActivityPair builds processors::activitypair as configured, on a
// real file_storage extension.
func startActivityPair(t *testing.T, processors *confmap.Conf, next consumer.Logs) consumer.Logs {
	t.Helper()
	f := activitypairprocessor.NewFactory()
	cfg := f.CreateDefaultConfig()
	unmarshalSection(t, processors, "activitypair", cfg)
	if err := cfg.(interface{ Validate() error }).Validate(); err != nil {
		t.Fatalf("processors::activitypair: %v", err)
	}
	proc, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(f.Type()), cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(context.Background(), harness.StartFileStorage(t, t.TempDir())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Shutdown(context.Background()) })
	return proc
}

// stepsWithCredentials is the transcripts receiver's records of a turn with
// a tool step and the next user message, and the webhook receiver's record
// of a tool call.
func stepsWithCredentials() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(schema.AgentName, "Payroll Bot")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	at := time.Now().Add(-time.Hour)
	add := func(item string, d time.Duration, event string, attrs map[string]string, body string) {
		rec := recs.AppendEmpty()
		rec.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(d)))
		rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(at.Add(30 * time.Minute)))
		a := rec.Attributes()
		a.PutStr(schema.EventName, event)
		a.PutStr(schema.ItemID, item)
		a.PutStr(schema.ConversationID, "conv-payroll")
		a.PutStr(schema.AgentName, "Payroll Bot")
		for k, v := range attrs {
			a.PutStr(k, v)
		}
		if body != "" {
			rec.Body().SetStr(body)
		}
	}
	args := `{"server":"sql.contoso.local","password":"` + toolPassword + `"}`
	observation := `{"Response":{"config":"aws_access_key_id=` + toolAWSKey + `\ngit remote token ` + toolGitHubPAT + `"}}`
	add("00000000-0000-4000-8000-000000000001", 0, schema.EventMessageReceived,
		map[string]string{schema.ActivityType: "message", schema.ActivityID: "u1", schema.ActivityRole: schema.RoleUser}, "Export the payroll database")
	add("00000000-0000-4000-8000-000000000002", time.Second, schema.EventPlanStepBindUpdate, map[string]string{
		schema.ActivityType: "event", schema.ActivityName: schema.EventPlanStepBindUpdate, schema.ReplyToActivityID: "u1",
		schema.ActivityValue: `{"stepId":"s-1","taskDialogId":"crp_payroll.action.Export","arguments":` + args + `}`,
		schema.ToolCallID:    "s-1", schema.ToolID: "crp_payroll.action.Export", schema.ToolArguments: args,
	}, "")
	add("00000000-0000-4000-8000-000000000003", 2*time.Second, schema.EventPlanStepFinished, map[string]string{
		schema.ActivityType: "event", schema.ActivityName: schema.EventPlanStepFinished, schema.ReplyToActivityID: "u1",
		schema.ActivityValue: `{"stepId":"s-1","state":"completed","observation":` + observation + `}`,
		schema.ToolCallID:    "s-1", schema.StepState: schema.StepStateCompleted, schema.ToolResult: observation,
	}, "")
	add("00000000-0000-4000-8000-000000000004", 3*time.Second, schema.EventMessageSend,
		map[string]string{schema.ActivityType: "message", schema.ReplyToActivityID: "u1"}, "Done.")
	add("00000000-0000-4000-8000-000000000005", time.Minute, schema.EventMessageReceived,
		map[string]string{schema.ActivityType: "message", schema.ActivityID: "u2", schema.ActivityRole: schema.RoleUser}, "Thanks")

	call := ld.ResourceLogs().AppendEmpty()
	call.Resource().Attributes().PutStr(schema.AgentName, "Payroll Bot")
	rec := call.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	rec.SetTimestamp(pcommon.NewTimestampFromTime(at))
	rec.Body().SetStr("Send the keys to ops, header Authorization: Bearer " + opaqueBearer)
	for k, v := range map[string]string{
		schema.EventName: schema.ToolCallEventName, schema.ToolCallRecordID: "0123456789abcdef0123456789abcdef",
		schema.ConversationID: "conv-payroll", schema.ToolCallID: "s-9", schema.ToolName: "Send-an-email",
		schema.ToolArguments:       `{"Body":"key ` + toolAWSKey + `"}`,
		schema.ToolPreviousOutputs: `[{"toolId":"x","outputs":{"token":"` + entraJWT + `"}}]`,
	} {
		rec.Attributes().PutStr(k, v)
	}
	return ld
}

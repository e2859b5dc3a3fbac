package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeakto"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

func TestFormatTurn(t *testing.T) {
	record := `{"path":"/copilot/conversation/a%3A1EBq/message/1","method":"POST",` +
		`"requestHeaders":"{\"host\":\"copilot.microsoft.com\",\"x-akto-message-id\":\"62e8b827\",\"x-copilotstudio-activity-id\":\"1700000000101\",` +
		`\"x-copilotstudio-channel\":\"msteams\",\"x-copilotstudio-topics\":\"cr44e_hrAgent.topic.ConversationalBoosting,cr44e_hrAgent.topic.Escalate\",` +
		`\"x-copilotstudio-tool-calls\":\"crx_helpdesk.action.GetTicket=completed, P:UniversalSearchTool=triggered\"}",` +
		`"requestPayload":"{\"text\":\"How do I reset my password?\"}",` +
		`"responsePayload":"{\"text\":\"Go to aka.ms/sspr.\\nIn short: aka.ms/sspr\",\"messages\":[{\"text\":\"Go to aka.ms/sspr.\"},{\"text\":\"In short: aka.ms/sspr\"}]}",` +
		`"time":"1771406677","statusCode":"500",` +
		`"tag":"{\"source\":\"COPILOT_STUDIO\",\"bot-name\":\"hr-agent\",\"gen-ai\":\"Gen AI\"}",` +
		`"_traces":"[{\"type\":\"message\"},{\"type\":\"event\",\"name\":\"DynamicPlanReceived\"}]"}`
	out := formatTurn(3, []byte(record))
	for _, want := range []string{
		"── turn 3 · hr-agent · msteams ·",
		"conversation    a:1EBq  (message 1)",
		"user said       How do I reset my password?",
		"tools called    • action.GetTicket=completed",
		"                • P:UniversalSearchTool=triggered",
		"agent answered  • Go to aka.ms/sspr.",
		"                • In short: aka.ms/sspr",
		"topics          ConversationalBoosting, Escalate",
		"status          500 (the turn failed",
		"_traces         2 activities",
		"turn id         62e8b827",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}

	greeting := `{"path":"/copilot/conversation/c1/message/0","requestPayload":"","responsePayload":"",` +
		`"statusCode":"200","tag":"{\"bot-name\":\"x\"}"}`
	out = formatTurn(1, []byte(greeting))
	for _, want := range []string{"user said       (nothing: the agent spoke first)", "agent answered  (no answer)"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}

	tool := `{"path":"/copilot/conversation/c1/tool/s-1","requestHeaders":"{\"x-akto-message-id\":\"rec-1\",\"x-copilotstudio-channel\":\"pva-studio\",` +
		`\"x-copilotstudio-conversation-id\":\"c1\",\"x-copilotstudio-step-id\":\"s-1\",\"x-copilotstudio-tool-kind\":\"action\"}",` +
		`"requestPayload":"{\"text\":\"Mail it to me\",\"tool\":\"Send-an-email\",\"arguments\":{\"To\":\"a@b.c\"},\"thought\":\"Mail it.\"}",` +
		`"responsePayload":"{\"blockAction\":false}","tag":"{\"bot-name\":\"hr-agent\"}"}`
	out = formatTurn(4, []byte(tool))
	for _, want := range []string{
		"── tool call 4 · hr-agent · pva-studio", "user said       Mail it to me", "tool            Send-an-email  (action)",
		`arguments       {"To":"a@b.c"}`, "planner thought Mail it.", "record id       rec-1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}

	if out := formatTurn(2, []byte("not json")); !strings.Contains(out, "not an Akto traffic record") || !strings.Contains(out, "not json") {
		t.Errorf("a record that is not Akto's is shown raw, got:\n%s", out)
	}
}

func TestErrorLinesPassesOnlyErrors(t *testing.T) {
	var b strings.Builder
	w := &errorLines{out: &b}
	// Lines arrive split across writes, as from a pipe.
	for _, chunk := range []string{
		"2026-11-25T07:00:00Z\tinfo\tstarted\n2026-11-25T07:00:01Z\terr",
		"or\tcopilotstudioreceiver/receiver.go:1\tauthentication failed\n",
		"2026-11-25T07:00:02Z\twarn\tslow\n",
	} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	want := "collector: 2026-11-25T07:00:01Z\terror\tcopilotstudioreceiver/receiver.go:1\tauthentication failed\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestIngestionSummary(t *testing.T) {
	got := ingestionSummary([]fakeakto.Request{{Status: 200}, {Status: 401}, {Status: 200}, {Status: 422}})
	if want := "The ingestion stand-in answered 2 x HTTP 200, 1 x HTTP 401, 1 x HTTP 422."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseSources(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: nil},
		{in: "webhook, AppInsights,webhook", want: []string{"appinsights", "webhook"}},
		{in: "transcripts", want: []string{"transcripts"}},
		{in: "appinsights,kafka", err: `unknown source "kafka"`},
		{in: ",", err: "names no source"},
	} {
		got, err := parseSources(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseSources(%q): error %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseSources(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestReceiversOverride(t *testing.T) {
	// The overlays' own lists suffice for Application Insights with one
	// more source; otherwise the override names every receiver asked for.
	for _, sources := range [][]string{{"appinsights"}, {"appinsights", "transcripts"}, {"appinsights", "webhook"}} {
		if got := receiversOverride(sources); got != "" {
			t.Errorf("receiversOverride(%v) = %q, want none", sources, got)
		}
	}
	for sources, want := range map[string]string{
		"appinsights,transcripts,webhook": "yaml:service::pipelines::logs::receivers: [copilotstudio, copilotstudio_transcripts, copilotstudiowebhook]",
		"transcripts,webhook":             "yaml:service::pipelines::logs::receivers: [copilotstudio_transcripts, copilotstudiowebhook]",
		"webhook":                         "yaml:service::pipelines::logs::receivers: [copilotstudiowebhook]",
	} {
		list, err := parseSources(sources)
		if err != nil {
			t.Fatal(err)
		}
		if got := receiversOverride(list); got != want {
			t.Errorf("receiversOverride(%s) = %q, want %q", sources, got, want)
		}
	}
}

// TestRunShowsEverySource is `make run` on stand-ins with the built
// collector: the sample telemetry's turns, the sample transcript's turns
// with their tool calls (a password in them masked), and the webhook
// client's tool calls, each printed as it reaches Kafka; Ctrl-C (the
// context) stops it cleanly.
func TestRunShowsEverySource(t *testing.T) {
	bin := harness.Binary(t)
	t.Setenv("APPINSIGHTS_APP_ID", "") // stand-ins, whatever the developer's shell holds
	t.Setenv("AZURE_CLIENT_SECRET", "")
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sample, err := harness.LoadSample(root, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantTurns := len(sample.Turns) + 2 // the transcript's two turns
	wantCalls := len(webhookclient.Variants)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &watchedBuffer{changed: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{binary: bin, config: harness.CollectorConfigPath(), akto: "kafka"}, out, io.Discard)
	}()
	deadline := time.After(3 * time.Minute) // a guard against a hang, not a timing
	for strings.Count(out.String(), "── turn ") < wantTurns || strings.Count(out.String(), "── tool call ") < wantCalls {
		select {
		case <-out.changed:
		case err := <-done:
			t.Fatalf("run ended early: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("waited 3 minutes for %d turns and %d tool calls:\n%s", wantTurns, wantCalls, out.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after Ctrl-C: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"running appinsights, transcripts, webhook on local stand-ins",
		"--config 'yaml:service::pipelines::logs::receivers: [copilotstudio, copilotstudio_transcripts, copilotstudiowebhook]'",
		`POST /validate (an admin saving the set-up) answered 200 {"isSuccessful":true,"status":"OK"}`,
		`answered 200 {"blockAction":false}`,
		// The transcript's turns: tools in the order they were triggered, with their states.
		"── turn", "it-service-agent · msteams",
		"tools called    • P:UniversalSearchTool=completed\n                  • action.ServiceNow-CreateIncident=completed\n",
		"tools called    • action.Office365Outlook-SendanemailV2=failed\n",
		"the login is svc_share password=[password]",
		// A webhook call's record.
		"── tool call", "tool            create_issue  (mcp)", "(not the agent's)",
		fmt.Sprintf("Stopped. %d records (%d turns, %d tool calls) printed.", wantTurns+wantCalls, wantTurns, wantCalls),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in the output:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Winter2026!") {
		t.Errorf("a password from the transcript reached the output unmasked:\n%s", got)
	}
	if n := strings.Count(got, "record accepted"); n != wantCalls {
		t.Errorf("%d of %d webhook calls answered with their record accepted:\n%s", n, wantCalls, got)
	}
}

// watchedBuffer is run's output, read while it is written.
type watchedBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func (w *watchedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

package main

import (
	"strings"
	"testing"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeakto"
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

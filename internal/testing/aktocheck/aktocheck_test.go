package aktocheck

import (
	"encoding/json"
	"strings"
	"testing"
)

// record is a traffic record as the processor writes a turn of agent, with
// fields given as Go values: change builds a variant.
type record map[string]any

func objectText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func turn(agent string, conversation, index string, tag map[string]string) record {
	return record{
		"path":   "/copilot/conversation/" + conversation + "/message/" + index,
		"method": "POST",
		"requestHeaders": objectText(map[string]string{
			"host": "copilot.microsoft.com", "content-type": "application/json",
			"x-akto-message-id": "id-" + conversation + "-" + index, "x-copilotstudio-conversation-id": conversation,
			"x-copilotstudio-channel": "msteams",
		}),
		"responseHeaders": `{"content-type":"application/json"}`,
		"requestPayload":  `{"text":"How many days of leave do I have?"}`,
		"responsePayload": `{"text":"25 days.\nAnything else?","messages":[{"text":"25 days."},{"text":"Anything else?"}]}`,
		"ip":              "0.0.0.0", "time": "1771377886", "statusCode": "200", "type": "HTTP/1.1", "status": "OK",
		"akto_account_id": "1000000", "akto_vxlan_id": "0", "is_pending": "false", "source": "MIRRORING",
		"tag": objectText(tag),
	}
}

func hrTag() map[string]string {
	return map[string]string{
		"source": "COPILOT_STUDIO", "bot-name": "hr-agent", "gen-ai": "Gen AI", "bot-id": "bot-hr",
		"bot-schemaname": "cr44e_hrAgent", "bot-environment-id": "env-1", "bot-authentication-mode": "microsoft_entra_id",
		"unauthenticated": "false", "bot-published-state": "published",
	}
}

func faqTag() map[string]string {
	return map[string]string{"source": "COPILOT_STUDIO", "bot-name": "public-faq", "gen-ai": "Gen AI"}
}

var agents = []Agent{
	{Name: "HR Agent", Published: true, Identified: true, SchemaName: "cr44e_hrAgent"},
	{Name: "Public FAQ"},
}

func (r record) with(kv ...any) record {
	out := record{}
	for k, v := range r {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func (r record) bytes() []byte { return []byte(objectText(map[string]any(r))) }

func goodRecords() []record {
	greeting := turn("HR Agent", "c1", "0", hrTag()).with("requestPayload", "", "responsePayload", `{"text":"Hello!"}`)
	withTraces := turn("HR Agent", "c1", "1", hrTag()).with("_traces",
		`[{"type":"message","id":"a1","from":{"role":1},"timestampMs":1,"text":"Hi"},{"type":"event","name":"DynamicPlanReceived","from":{"role":0},"timestampMs":2,"value":{"planIdentifier":"p"}}]`)
	unanswered := turn("Public FAQ", "c2", "0", faqTag()).with("responsePayload", "")
	tool := turn("HR Agent", "c1", "x", hrTag()).with(
		"path", "/copilot/conversation/c1/tool/step-1",
		"requestPayload", `{"text":"Mail it","tool":"Send-an-email","arguments":{"To":"a@b.c"}}`,
		"responsePayload", `{"blockAction":false}`)
	return []record{greeting, withTraces, unanswered, tool}
}

func check(rs []record, opts Options) []Violation {
	var raw [][]byte
	for _, r := range rs {
		raw = append(raw, r.bytes())
	}
	return Check(raw, opts)
}

func TestGoodRecordsPass(t *testing.T) {
	if vs := check(goodRecords(), Options{Agents: agents}); len(vs) > 0 {
		t.Fatal(Err(vs))
	}
	if vs := check(goodRecords(), Options{}); len(vs) > 0 {
		t.Fatalf("without agents: %v", Err(vs))
	}
}

func TestEachRuleCatchesItsCase(t *testing.T) {
	hr := func(mutate ...any) record { return turn("HR Agent", "c9", "3", hrTag()).with(mutate...) }
	tagWith := func(kv ...string) string {
		tag := hrTag()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(tag, kv[i])
			} else {
				tag[kv[i]] = kv[i+1]
			}
		}
		return objectText(tag)
	}
	headersWith := func(kv ...string) string {
		h := map[string]string{"host": "copilot.microsoft.com", "x-akto-message-id": "id"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(h, kv[i])
			} else {
				h[kv[i]] = kv[i+1]
			}
		}
		return objectText(h)
	}
	for _, tt := range []struct {
		name    string
		records []record
		opts    Options
		rule    string
	}{
		{"not JSON", nil, Options{}, "json"},
		{"a field that is not a string", []record{hr("time", 1771377886)}, Options{}, "field-type"},
		{"a missing field", []record{hr("tag", nil)}, Options{}, "field-missing"},
		{"another source", []record{hr("source", "OTHER")}, Options{}, "field-value"},
		{"a status that is not a number", []record{hr("statusCode", "OK")}, Options{}, "field-value"},
		{"a dot-only conversation segment", []record{hr("path", "/copilot/conversation/../message/1")}, Options{}, "path"},
		{"another path", []record{hr("path", "/api/chat")}, Options{}, "path"},
		{"headers that are not an object", []record{hr("requestHeaders", `["host"]`)}, Options{}, "json-object"},
		{"a header that is not a string", []record{hr("requestHeaders", `{"host":"copilot.microsoft.com","x-akto-message-id":"i","n":1}`)}, Options{}, "json-object"},
		{"_traces an object, not an array", []record{hr("_traces", `{"activities":[]}`)}, Options{}, "traces-array"},
		{"the bot name in the host", []record{hr("requestHeaders", headersWith("host", "hr-agent.copilot-studio"))}, Options{}, "host"},
		{"no message id", []record{hr("requestHeaders", headersWith("x-akto-message-id", ""))}, Options{}, "message-id"},
		{"no prompt where Akto looks", []record{hr("requestPayload", `{"question":"Hi"}`)}, Options{}, "prompt"},
		{"no answer where Akto looks", []record{hr("responsePayload", `{"replies":["Hi"]}`)}, Options{}, "answer"},
		{"a payload that is not JSON", []record{hr("requestPayload", `Hi`)}, Options{}, "payload"},
		{"ids in the payload", []record{hr("requestPayload", `{"text":"Hi","activityId":"a1","userId":"u"}`)}, Options{}, "payload-metadata"},
		{"ids in a reply", []record{hr("responsePayload", `{"text":"Hi","messages":[{"text":"Hi","activityId":""}]}`)}, Options{}, "payload-metadata"},
		{"no gen-ai", []record{hr("tag", tagWith("gen-ai", ""))}, Options{}, "tag"},
		{"another tag source", []record{hr("tag", tagWith("source", "KUBERNETES"))}, Options{}, "tag"},
		{"a per-turn tag", []record{hr("tag", tagWith("turn-id", "abc"))}, Options{}, "tag-per-record"},
		{"an unsanitised bot name", []record{hr("tag", tagWith("bot-name", "HR Agent"))}, Options{}, "bot-name"},
		{"unpublished written down", []record{hr("tag", tagWith("bot-published-state", "unpublished"))}, Options{}, "published"},
		{"a published agent without the key", []record{hr("tag", tagWith("bot-published-state", ""))}, Options{Agents: agents}, "published"},
		{"an unpublished agent with the key", []record{turn("Public FAQ", "c2", "0", faqTag()).with("tag", objectText(map[string]string{
			"source": "COPILOT_STUDIO", "bot-name": "public-faq", "gen-ai": "Gen AI", "bot-published-state": "published"}))}, Options{Agents: agents}, "published"},
		{"an unknown agent", []record{hr("tag", tagWith("bot-name", "shadow-agent"))}, Options{Agents: agents}, "agent"},
		{"a known agent without its identity", []record{hr("tag", tagWith("bot-environment-id", ""))}, Options{Agents: agents}, "identity"},
		{"a sanitised schema name", []record{hr("tag", tagWith("bot-schemaname", "cr44e-hragent"))}, Options{Agents: agents}, "identity"},
		{"a tag value per turn", []record{hr(), hr("tag", tagWith("unauthenticated", "true"))}, Options{}, "tag-values"},
		{"a tag that grows by source", []record{hr(), hr("tag", tagWith("bot-authentication-mode", ""))}, Options{}, "tag-sets"},
		{"one agent in two collections", []record{hr(), hr("tag", tagWith("bot-name", "hr-agent-renamed"))}, Options{}, "collections"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var vs []Violation
			if tt.records == nil {
				vs = Check([][]byte{[]byte(`{"path":`)}, tt.opts)
			} else {
				vs = check(tt.records, tt.opts)
			}
			found := false
			for _, v := range vs {
				found = found || v.Rule == tt.rule
			}
			if !found {
				t.Fatalf("no %s violation; got %v", tt.rule, vs)
			}
		})
	}
}

func TestTwoSourcesOfOneAgentWhenAllowed(t *testing.T) {
	full := turn("HR Agent", "c1", "0", hrTag())
	partial := turn("HR Agent", "c1", "1", hrTag()).with("tag", objectText(map[string]string{
		"source": "COPILOT_STUDIO", "bot-name": "hr-agent", "gen-ai": "Gen AI", "bot-id": "bot-hr", "bot-published-state": "published"}))
	if vs := check([]record{full, partial}, Options{TagSetsPerAgent: 2}); len(vs) > 0 {
		t.Fatal(Err(vs))
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"HR Agent":                "hr-agent",
		"HR Agent (Contoso) – EU": "hr-agent-contoso-eu",
		"--Ünïcode Bøt--":         "ünïcode-bøt",
		"a - b":                   "a-b",
		"日本語 エージェント":              "日本語-エージェント",
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrListsViolations(t *testing.T) {
	vs := check([]record{turn("HR Agent", "c1", "0", hrTag()).with("source", "X", "method", "GET")}, Options{})
	err := Err(vs)
	if err == nil || !strings.Contains(err.Error(), "record 0: field-value") {
		t.Fatalf("Err = %v", err)
	}
	if Err(nil) != nil {
		t.Fatal("no violations, no error")
	}
}

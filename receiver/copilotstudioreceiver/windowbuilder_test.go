package copilotstudioreceiver

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

var standardColumns = appinsights.Columns[:]

// response renders a query API body in the real shape.
func response(t *testing.T, columns []string, rows [][]any) string {
	t.Helper()
	cols := make([]appinsights.Column, len(columns))
	for i, c := range columns {
		typ := appinsights.ColumnType(c)
		if typ == "" {
			typ = "string"
		}
		cols[i] = appinsights.Column{Name: c, Type: typ}
	}
	b, err := json.Marshal(map[string]any{"tables": []any{map[string]any{"name": appinsights.ResultTable, "columns": cols, "rows": rows}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// buildRowByRow decodes body and builds each row into one batch as it is
// read, without the row store.
func buildRowByRow(t testing.TB, b *windowBuilder, body io.Reader) (plog.Logs, windowResult, appinsights.Result) {
	t.Helper()
	b.startBatch(0)
	res, err := appinsights.Decode(body, func(r *appinsights.Row) error { b.add(r); return nil })
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return b.logs, b.result(), res
}

// decodeWindow builds body row by row in a new window.
func decodeWindow(t *testing.T, body string) (plog.Logs, windowResult, appinsights.Result) {
	t.Helper()
	return buildRowByRow(t, newWindowBuilder(testAppID, nil, nil), strings.NewReader(body))
}

func std(id, name, dims string) []any {
	return []any{"2026-02-18T01:24:36.123Z", name, id, dims, "HR Agent", "2026-02-18T01:25:10.4567891Z"}
}

func recordsByID(ld plog.Logs) map[string]plog.LogRecord {
	out := map[string]plog.LogRecord{}
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				v, _ := lrs.At(k).Attributes().Get(schema.ItemID)
				out[v.Str()] = lrs.At(k)
			}
		}
	}
	return out
}

func TestDecodeRowsToRecords(t *testing.T) {
	tokenValue := `{"id":"abc","connectionName":"sso","token":"eyJ0eXAiOiJKV1QiLCJhbGciOi.secret.part"}`
	cases := []struct {
		name     string
		row      []any
		body     string
		attrs    map[string]any // expected attributes (string or bool)
		absent   []string
		wantKept bool
	}{
		{
			name: "user message, DesignMode spelling, sensitive properties",
			row:  std("m1", "BotMessageReceived", `{"type":"message","channelId":"msteams","conversationId":"a:1EBqwy","activityId":"1700000000001","fromId":"29:1W6aRX","fromName":"Jane Doe","recipientId":"28:c40c1118","recipientName":"HR Agent","locale":"en-US","DesignMode":"False","text":"How do I reset my password?","TeamsTenantId":"t-1"}`),
			body: "How do I reset my password?",
			attrs: map[string]any{
				schema.EventName: "BotMessageReceived", schema.ActivityType: "message", schema.ChannelID: "msteams",
				schema.ConversationID: "a:1EBqwy", schema.ActivityID: "1700000000001", schema.UserID: "29:1W6aRX",
				schema.UserName: "Jane Doe", schema.RecipientID: "28:c40c1118", schema.RecipientName: "HR Agent",
				schema.Locale: "en-US", schema.DesignMode: false, schema.AgentName: "HR Agent", schema.ItemID: "m1",
				schema.DimensionPrefix + "TeamsTenantId": "t-1",
			},
			wantKept: true,
		},
		{
			name:     "designMode spelling, lower-case True",
			row:      std("m2", "BotMessageReceived", `{"type":"message","conversationId":"c","designMode":"true"}`),
			attrs:    map[string]any{schema.DesignMode: true},
			wantKept: true,
		},
		{
			name:     "key case variants",
			row:      std("m3", "BotMessageSend", `{"ConversationId":"c3","ChannelID":"webchat","ReplyActivityId":"1700000000001","Text":"Here is how."}`),
			body:     "Here is how.",
			attrs:    map[string]any{schema.ConversationID: "c3", schema.ChannelID: "webchat", schema.ReplyToActivityID: "1700000000001"},
			wantKept: true,
		},
		{
			name:     "missing optional fields: no text, no activity id",
			row:      std("m4", "BotMessageReceived", `{"type":"conversationUpdate","conversationId":"c4"}`),
			attrs:    map[string]any{schema.ActivityType: "conversationUpdate"},
			absent:   []string{schema.ActivityID, schema.UserID, schema.DesignMode, schema.ChannelID},
			wantKept: true,
		},
		{
			name:     "token exchange invoke keeps the value verbatim",
			row:      std("m5", "BotMessageReceived", mustJSON(map[string]string{"type": "invoke", "name": "signin/tokenExchange", "value": tokenValue, "conversationId": "c5"})),
			attrs:    map[string]any{schema.ActivityType: "invoke", schema.ActivityName: "signin/tokenExchange", schema.ActivityValue: tokenValue},
			wantKept: true,
		},
		{
			name:     "value as a JSON object is kept as its JSON text",
			row:      std("m6", "BotMessageReceived", `{"type":"event","name":"startConversation","value":{"a":[1,2]},"conversationId":"c6"}`),
			attrs:    map[string]any{schema.ActivityValue: `{"a":[1,2]}`, schema.ActivityName: "startConversation"},
			wantKept: true,
		},
		{
			name:     "topic action without conversation id is kept",
			row:      std("f1", "TopicAction", `{"TopicName":"cr44e_MyAgent.topic.Greeting","TopicId":"t1","Kind":"HttpRequest","ActionId":"a1"}`),
			attrs:    map[string]any{schema.TopicName: "cr44e_MyAgent.topic.Greeting", schema.TopicKind: "HttpRequest", schema.DimensionPrefix + "TopicId": "t1", schema.DimensionPrefix + "ActionId": "a1"},
			absent:   []string{schema.ConversationID},
			wantKept: true,
		},
		{
			name:     "error log",
			row:      std("f2", "OnErrorLog", `{"ErrorCode":"FlowActionException","ErrorMessage":"boom","conversationId":"c7"}`),
			attrs:    map[string]any{schema.ErrorCode: "FlowActionException", schema.ErrorMessage: "boom", schema.ConversationID: "c7"},
			wantKept: true,
		},
		{
			name:     "custom event: type and name are its own properties",
			row:      std("f3", "MyCustomEvent", `{"type":"audit","name":"x","conversationId":"c8"}`),
			attrs:    map[string]any{schema.DimensionPrefix + "type": "audit", schema.DimensionPrefix + "name": "x"},
			absent:   []string{schema.ActivityType, schema.ActivityName},
			wantKept: true,
		},
		{
			name:     "empty and null custom properties make no attribute; an empty known field stays",
			row:      std("e1", "BotMessageReceived", `{"type":"message","conversationId":"c10","speak":"","Extra":null,"locale":"","Kept":"k"}`),
			attrs:    map[string]any{schema.Locale: "", schema.DimensionPrefix + "Kept": "k"},
			absent:   []string{schema.DimensionPrefix + "speak", schema.DimensionPrefix + "Extra"},
			wantKept: true,
		},
		{
			name:     "customDimensions returned as an object",
			row:      []any{"2026-02-18T01:24:36.123Z", "BotMessageReceived", "m7", map[string]any{"type": "message", "conversationId": "c9", "text": "obj"}, "HR Agent", "2026-02-18T01:25:10Z"},
			body:     "obj",
			attrs:    map[string]any{schema.ConversationID: "c9"},
			wantKept: true,
		},
		{
			name:     "escapes and surrogate pairs in text",
			row:      std("m8", "BotMessageReceived", `{"type":"message","conversationId":"c","text":"caf\u00e9 \ud83d\ude00 \"q\"\n"}`),
			body:     "café 😀 \"q\"\n",
			wantKept: true,
		},
		{name: "customDimensions not JSON", row: std("bad1", "BotMessageReceived", `{"type":"message",`)},
		{name: "customDimensions trailing garbage", row: std("bad2", "BotMessageReceived", `{"conversationId":"c"} x`)},
		{name: "message without conversation id", row: std("bad3", "BotMessageSend", `{"text":"hi"}`)},
		{name: "unknown activity type", row: std("bad4", "BotMessageReceived", `{"type":"bogus","conversationId":"c"}`)},
		{name: "itemId null", row: []any{"2026-02-18T01:24:36Z", "BotMessageReceived", nil, `{}`, "A", "2026-02-18T01:24:37Z"}},
		{name: "timestamp not a datetime", row: []any{12345, "BotMessageReceived", "bad6", `{"conversationId":"c"}`, "A", "2026-02-18T01:24:37Z"}},
		{name: "row shorter than the header", row: []any{"2026-02-18T01:24:36Z", "BotMessageReceived", "bad7"}},
	}
	var rows [][]any
	for _, c := range cases {
		rows = append(rows, c.row)
	}
	logs, b, res := decodeWindow(t, response(t, standardColumns, rows))
	if res.Rows != len(cases) {
		t.Fatalf("decoded %d rows, want %d", res.Rows, len(cases))
	}
	got := recordsByID(logs)
	kept := 0
	for _, c := range cases {
		id, _ := c.row[2].(string)
		lr, ok := got[id]
		if ok != c.wantKept || (!c.wantKept && id == "") {
			if c.wantKept || ok {
				t.Errorf("%s: kept = %v, want %v", c.name, ok, c.wantKept)
			}
			continue
		}
		if !c.wantKept {
			continue
		}
		kept++
		if lr.Body().AsString() != c.body {
			t.Errorf("%s: body = %q, want %q", c.name, lr.Body().AsString(), c.body)
		}
		for k, want := range c.attrs {
			v, ok := lr.Attributes().Get(k)
			switch w := want.(type) {
			case bool:
				if !ok || v.Type() != pcommon.ValueTypeBool || v.Bool() != w {
					t.Errorf("%s: %s = %v, want bool %v", c.name, k, v.AsRaw(), w)
				}
			case string:
				if !ok || v.Str() != w {
					t.Errorf("%s: %s = %q, want %q", c.name, k, v.AsString(), w)
				}
			}
		}
		for _, k := range c.absent {
			if _, ok := lr.Attributes().Get(k); ok {
				t.Errorf("%s: unexpected attribute %s", c.name, k)
			}
		}
	}
	if b.records != kept {
		t.Errorf("records = %d, want %d", b.records, kept)
	}
	wantDrops := map[string]int{reasonBadDimensions: 2, reasonNoConversation: 1, reasonUnknownActivity: 1, reasonBadColumn: 3}
	for reason, n := range wantDrops {
		if b.drops[reason] != n {
			t.Errorf("drops[%s] = %d, want %d", reason, b.drops[reason], n)
		}
	}
	if len(b.malformed) != 7 {
		t.Errorf("malformed rows to log = %d, want 7", len(b.malformed))
	}
	for _, m := range b.malformed {
		if strings.Contains(m.detail, "eyJ0") || strings.Contains(m.detail, "hi") {
			t.Errorf("malformed-row detail leaks a value: %q", m.detail)
		}
	}
}

func TestDecodeTimestampsAndResourcePerAgent(t *testing.T) {
	rows := [][]any{
		{"2026-02-18T01:24:36.1234567Z", "BotMessageReceived", "a1", `{"type":"message","conversationId":"c"}`, "HR Agent", "2026-02-18T01:25:10.4567891Z"},
		{"2026-02-18T01:24:37Z", "BotMessageSend", "b1", `{"conversationId":"c"}`, "IT Agent", "2026-02-18T01:25:11Z"},
		{"2026-02-18T01:24:38Z", "BotMessageSend", "a2", `{"conversationId":"c"}`, "HR Agent", "2026-02-18T01:25:12Z"},
		{"2026-02-18T01:24:38Z", "BotMessageSend", "a2", `{"conversationId":"c"}`, "HR Agent", "2026-02-18T01:25:12Z"},
	}
	logs, b, _ := decodeWindow(t, response(t, standardColumns, rows))
	if n := logs.ResourceLogs().Len(); n != 2 {
		t.Fatalf("resource logs = %d, want one per agent (2)", n)
	}
	for i := 0; i < 2; i++ {
		rl := logs.ResourceLogs().At(i)
		agent, _ := rl.Resource().Attributes().Get(schema.AgentName)
		want := map[string]int{"HR Agent": 2, "IT Agent": 1}[agent.Str()]
		if n := rl.ScopeLogs().At(0).LogRecords().Len(); n != want {
			t.Errorf("agent %q has %d records, want %d", agent.Str(), n, want)
		}
	}
	lr := recordsByID(logs)["a1"]
	if got, want := lr.Timestamp().AsTime(), time.Date(2026, 2, 18, 1, 24, 36, 123456700, time.UTC); !got.Equal(want) {
		t.Errorf("timestamp = %v, want %v", got, want)
	}
	if got, want := lr.ObservedTimestamp().AsTime(), time.Date(2026, 2, 18, 1, 25, 10, 456789100, time.UTC); !got.Equal(want) {
		t.Errorf("observed timestamp = %v, want %v", got, want)
	}
	if b.drops[reasonDuplicate] != 1 {
		t.Errorf("duplicate item id in one response dropped %d times, want 1", b.drops[reasonDuplicate])
	}
}

func TestDecodeMapsColumnsByName(t *testing.T) {
	cols := []string{appinsights.ColIngest, "extra", appinsights.ColItemID, appinsights.ColRoleInstance, appinsights.ColDimensions, appinsights.ColName, appinsights.ColTimestamp}
	rows := [][]any{{"2026-02-18T01:25:10Z", 42, "x1", "HR Agent", `{"conversationId":"c","text":"hi"}`, "BotMessageSend", "2026-02-18T01:24:36Z"}}
	logs, b, _ := decodeWindow(t, response(t, cols, rows))
	lr, ok := recordsByID(logs)["x1"]
	if !ok || lr.Body().Str() != "hi" {
		t.Fatalf("row with reordered columns not decoded: %v", b.malformed)
	}
}

// oneByteReader forces every buffer boundary the scanner can meet.
type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

func TestDecodeAcrossReadBoundaries(t *testing.T) {
	body := response(t, standardColumns, [][]any{
		std("a", "BotMessageReceived", `{"type":"message","conversationId":"c","text":"caf\u00e9 \ud83d\ude00 \\ \"x\""}`),
		std("b", "BotMessageSend", `{"conversationId":"c","value":{"k":["]","}"]}}`),
	})
	var texts []string
	logs, b, _ := buildRowByRow(t, newWindowBuilder(testAppID, nil, nil), &oneByteReader{body})
	for _, id := range []string{"a", "b"} {
		lr, ok := recordsByID(logs)[id]
		if !ok {
			t.Fatalf("row %s lost: %v", id, b.malformed)
		}
		texts = append(texts, lr.Body().AsString())
	}
	if texts[0] != `café 😀 \ "x"` {
		t.Fatalf("text = %q", texts[0])
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// FuzzBuildWindow feeds arbitrary bodies to the decoder and the record
// builder: they must never panic, and every decoded row is either a record
// or a counted drop.
func FuzzBuildWindow(f *testing.F) {
	f.Add(`{"tables":[{"name":"PrimaryResult","columns":[{"name":"timestamp","type":"datetime"},{"name":"name","type":"string"},{"name":"itemId","type":"string"},{"name":"customDimensions","type":"dynamic"},{"name":"cloud_RoleInstance","type":"string"},{"name":"ingest","type":"datetime"}],"rows":[["2026-02-18T01:24:36.123Z","BotMessageReceived","i1","{\"type\":\"message\",\"conversationId\":\"c\",\"text\":\"hi \\u00e9\"}","HR Agent","2026-02-18T01:25:10.456Z"],["x",1,null,"{",null,"2026-02-18T01:25:10Z"]]}],"error":{"code":"PartialError","message":"m"}}`)
	f.Add(`{"tables":[]}`)
	f.Add(`not json`)
	f.Add(`{"tables":[{"rows":[[1]],"columns":[]}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		b := newWindowBuilder(testAppID, nil, nil)
		b.startBatch(0)
		res, err := appinsights.Decode(strings.NewReader(body), func(r *appinsights.Row) error { b.add(r); return nil })
		if err != nil {
			return
		}
		built := b.result()
		dropped := 0
		for _, n := range built.drops {
			dropped += n
		}
		if built.records+dropped != res.Rows {
			t.Fatalf("%d rows: %d records + %d drops", res.Rows, built.records, dropped)
		}
	})
}

func TestOverFullResultLeavesOutItsLastInstant(t *testing.T) {
	at := func(id, ingest string) []any {
		return []any{"2026-02-18T01:24:36Z", "BotMessageSend", id, `{"conversationId":"c"}`, "HR Agent", ingest}
	}
	body := response(t, standardColumns, [][]any{
		at("a", "2026-02-18T01:25:01Z"), at("b", "2026-02-18T01:25:02Z"), at("c", "2026-02-18T01:25:02Z"),
		at("d", "2026-02-18T01:25:03Z"), at("bad", "not a time"), at("e", "2026-02-18T01:25:03Z"),
	})
	for _, overFull := range []bool{false, true} {
		wb := newWindowBuilder(testAppID, nil, nil)
		if _, err := appinsights.Decode(strings.NewReader(body), func(r *appinsights.Row) error { wb.offer(r); return nil }); err != nil {
			t.Fatal(err)
		}
		cut := wb.finish(overFull)
		logs, _ := wb.nextBatch(math.MaxInt)
		b := wb.result()
		got := recordsByID(logs)
		want := map[bool]string{false: "a,b,c,d,e", true: "a,b,c"}[overFull]
		var ids []string
		for _, id := range []string{"a", "b", "c", "d", "e"} {
			if _, ok := got[id]; ok {
				ids = append(ids, id)
			}
		}
		if strings.Join(ids, ",") != want || len(b.seen) != len(ids) {
			t.Errorf("overFull=%v: records %v (seen %d), want %s", overFull, ids, len(b.seen), want)
		}
		// A malformed row is counted whatever the cut, even among the rows left out.
		if b.drops[reasonBadColumn] != 1 || len(b.malformed) != 1 || b.malformed[0].itemID != "bad" {
			t.Errorf("overFull=%v: drops %v, malformed %+v; want the row \"bad\" counted once", overFull, b.drops, b.malformed)
		}
		if !cut.Equal(time.Date(2026, 2, 18, 1, 25, 3, 0, time.UTC)) {
			t.Errorf("cut = %v", cut)
		}
	}
}

func TestRowOfAnEventNotAskedForIsDropped(t *testing.T) {
	body := response(t, standardColumns, [][]any{
		std("ok", "BotMessageSend", `{"conversationId":"c"}`),
		std("odd", "SomethingNobodyAskedFor", `{"conversationId":"c","text":"x"}`),
	})
	logs, b, _ := buildRowByRow(t, newWindowBuilder(testAppID, toSet(defaultEventNames()), nil), strings.NewReader(body))
	if got := recordsByID(logs); len(got) != 1 || b.drops[reasonUnexpectedEvent] != 1 || b.malformed[0].itemID != "odd" {
		t.Fatalf("records %d, drops %v, malformed %+v", len(got), b.drops, b.malformed)
	}
}

// TestBatchesMatchRowByRowBuild builds a window of several thousand rows
// (more than one block of stored rows, several chunks) in batches and
// checks every record against building the rows straight from the decoder,
// also after a second window has reused the first one's released memory.
func TestBatchesMatchRowByRowBuild(t *testing.T) {
	body := benchResponse(3 << 20)
	reference := func(body []byte) []map[string]any {
		logs, _, _ := buildRowByRow(t, newWindowBuilder(testAppID, nil, nil), bytes.NewReader(body))
		return recordsAsRaw(logs)
	}
	batched := func(body []byte) []plog.Logs {
		b := newWindowBuilder(testAppID, nil, nil)
		if _, err := appinsights.Decode(bytes.NewReader(body), func(r *appinsights.Row) error { b.offer(r); return nil }); err != nil {
			t.Fatal(err)
		}
		b.finish(false)
		var out []plog.Logs
		for {
			logs, n := b.nextBatch(999)
			if n == 0 {
				return out
			}
			if n > 999 || logs.LogRecordCount() != n {
				t.Fatalf("batch of %d records (%d in the logs), want at most 999", n, logs.LogRecordCount())
			}
			out = append(out, logs)
		}
	}
	want := reference(body)
	if len(want) <= rowBlockSize {
		t.Fatalf("only %d rows: the test needs more than one block", len(want))
	}
	first := batched(body)
	// A second, different window reuses the first one's chunks and blocks.
	second := bytes.ReplaceAll(benchResponse(3<<20), []byte("reset"), []byte("RESET"))
	if got, want2 := concatRaw(batched(second)), reference(second); !reflect.DeepEqual(got, want2) {
		t.Fatal("second window's records differ from the row-by-row build")
	}
	got := concatRaw(first)
	if len(got) != len(want) {
		t.Fatalf("%d records in batches, %d row by row", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d differs:\n%v\nwant\n%v", i, got[i], want[i])
		}
	}
}

// recordsAsRaw lists each record's fields and attributes, in order.
func recordsAsRaw(ld plog.Logs) []map[string]any {
	var out []map[string]any
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				out = append(out, map[string]any{
					"resource": rl.Resource().Attributes().AsRaw(), "attributes": lr.Attributes().AsRaw(),
					"body": lr.Body().AsRaw(), "event": lr.EventName(), "time": lr.Timestamp(), "observed": lr.ObservedTimestamp(),
				})
			}
		}
	}
	return out
}

func concatRaw(batches []plog.Logs) []map[string]any {
	var out []map[string]any
	for _, ld := range batches {
		out = append(out, recordsAsRaw(ld)...)
	}
	return out
}

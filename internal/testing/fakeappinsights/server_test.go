package fakeappinsights

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const appID = "app-1"

var now = time.Date(2026, 2, 18, 12, 0, 0, 0, time.UTC)

const kqlText = `customEvents
| where name in ("BotMessageReceived", "BotMessageSend")
| extend ingest = ingestion_time()
| where ingest >= datetime(2026-02-18T11:00:00.0000000Z) and ingest < datetime(2026-02-18T11:57:00.0000000Z)
| project timestamp, name, itemId, customDimensions, cloud_RoleInstance, ingest
| order by ingest asc, itemId asc
| take 100`

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.AppID == "" {
		opts.AppID = appID
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.SetNow(now)
	return s
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func post(t *testing.T, s *Server, path, q, timespan string, headers map[string]string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": q, "timespan": timespan})
	req, _ := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(string(body)))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

type result struct {
	Tables []struct {
		Name    string `json:"name"`
		Columns []struct {
			Name, Type string
		} `json:"columns"`
		Rows [][]any `json:"rows"`
	} `json:"tables"`
	Error *struct {
		Message, Code, CorrelationID string
		InnerError                   map[string]any `json:"innererror"`
	} `json:"error"`
}

func decode(t *testing.T, a answer) result {
	t.Helper()
	var r result
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, a.body)
	}
	return r
}

func msg(id string, ingest time.Time, name string) Row {
	return Row{Timestamp: ingest.Add(-time.Second), IngestionTime: ingest, Name: name, ItemID: id,
		CustomDimensions: Dimensions(map[string]string{"conversationId": "c"}), RoleInstance: "HR Agent"}
}

func TestAuthentication(t *testing.T) {
	s := start(t, Options{TokenValidator: func(tok string) bool { return tok == "good" }, APIKey: "key"})
	path := "/v1/apps/" + appID + "/query"
	cases := []struct {
		name    string
		path    string
		headers map[string]string
		status  int
		code    string
	}{
		{"no credential", path, nil, 401, "AuthorizationRequiredError"},
		{"foreign token", path, map[string]string{"Authorization": "Bearer bad"}, 403, "InvalidTokenError"},
		{"good token", path, map[string]string{"Authorization": "Bearer good"}, 200, ""},
		{"api key", path, map[string]string{"x-api-key": "key"}, 200, ""},
		{"wrong api key", path, map[string]string{"x-api-key": "nope"}, 403, "InvalidApiKeyError"},
		{"unknown app", "/v1/apps/other/query", map[string]string{"x-api-key": "key"}, 404, "PathNotFoundError"},
	}
	for _, c := range cases {
		a := post(t, s, c.path, kqlText, "", c.headers)
		if a.status != c.status {
			t.Errorf("%s: status %d, want %d", c.name, a.status, c.status)
			continue
		}
		if c.code != "" {
			r := decode(t, a)
			if r.Error == nil || r.Error.Code != c.code || r.Error.CorrelationID == "" || r.Error.Message == "" {
				t.Errorf("%s: error body %s", c.name, a.body)
			}
		}
	}
}

func TestQuerySelectsVisibleRowsInOrder(t *testing.T) {
	s := start(t, Options{})
	s.AddRows(
		msg("b", now.Add(-30*time.Minute), "BotMessageSend"),
		msg("a", now.Add(-30*time.Minute), "BotMessageReceived"),
		msg("early", now.Add(-61*time.Minute), "BotMessageReceived"),       // below the lower bound
		msg("edge", now.Add(-3*time.Minute), "BotMessageReceived"),         // at the exclusive upper bound
		msg("topic", now.Add(-20*time.Minute), "TopicStart"),               // not in the name list
		msg("future", now.Add(-2*time.Minute+time.Hour), "BotMessageSend"), // not ingested yet
		msg("c", now.Add(-10*time.Minute), "BotMessageSend"),
	)
	r := decode(t, post(t, s, "/v1/apps/"+appID+"/query", kqlText, "", nil))
	if len(r.Tables) != 1 || r.Tables[0].Name != "PrimaryResult" || len(r.Tables[0].Columns) != 6 {
		t.Fatalf("unexpected shape: %+v", r)
	}
	if r.Tables[0].Columns[3].Name != "customDimensions" || r.Tables[0].Columns[3].Type != "dynamic" {
		t.Fatalf("columns: %+v", r.Tables[0].Columns)
	}
	var ids []string
	for _, row := range r.Tables[0].Rows {
		ids = append(ids, row[2].(string))
		if _, ok := row[3].(string); !ok {
			t.Fatalf("customDimensions is not a string: %T", row[3])
		}
	}
	if got := strings.Join(ids, ","); got != "a,b,c" {
		t.Fatalf("rows = %s, want a,b,c", got)
	}

	// Once the clock passes its ingestion time, "edge" shows up to a wider query.
	wider := strings.Replace(kqlText, "11:57:00", "13:00:00", 1)
	s.Advance(2 * time.Hour)
	r = decode(t, post(t, s, "/v1/apps/"+appID+"/query", wider, "", nil))
	if n := len(r.Tables[0].Rows); n != 5 {
		t.Fatalf("after the clock moved: %d rows, want 5 (a, b, c, edge, future)", n)
	}
}

func TestTakeTimespanAgentsAndGET(t *testing.T) {
	s := start(t, Options{})
	for i := range 5 {
		r := msg(string(rune('a'+i)), now.Add(-time.Duration(50-i)*time.Minute), "BotMessageReceived")
		if i == 4 {
			r.RoleInstance = `Ops "Night" Agent`
			r.Timestamp = now.Add(-72 * time.Hour) // outside a 2-day timespan
		}
		s.AddRows(r)
	}
	q := strings.Replace(kqlText, "take 100", "take 2", 1)
	if n := len(decode(t, post(t, s, "/v1/apps/"+appID+"/query", q, "", nil)).Tables[0].Rows); n != 2 {
		t.Errorf("take 2 gave %d rows", n)
	}
	if n := len(decode(t, post(t, s, "/v1/apps/"+appID+"/query", kqlText, "P2D", nil)).Tables[0].Rows); n != 4 {
		t.Errorf("timespan P2D gave %d rows, want 4", n)
	}
	if n := len(decode(t, post(t, s, "/v1/apps/"+appID+"/query", kqlText, "2026-02-15T00:00:00Z/2026-02-19T00:00:00Z", nil)).Tables[0].Rows); n != 5 {
		t.Errorf("explicit interval gave %d rows, want 5", n)
	}
	agents := strings.Replace(kqlText, "| extend", "| where cloud_RoleInstance in (\"Ops \\\"Night\\\" Agent\")\n| extend", 1)
	if rows := decode(t, post(t, s, "/v1/apps/"+appID+"/query", agents, "", nil)).Tables[0].Rows; len(rows) != 1 || rows[0][4] != `Ops "Night" Agent` {
		t.Errorf("agent filter gave %v", rows)
	}
	resp, err := http.Get(s.URL() + "/v1/apps/" + appID + "/query?query=" + url.QueryEscape(kqlText))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET answered %d", resp.StatusCode)
	}
}

func TestUnsupportedQueryIsABadArgument(t *testing.T) {
	s := start(t, Options{})
	for _, q := range []string{
		"requests | take 1",
		strings.Replace(kqlText, "| take 100", "| summarize count()", 1),
		strings.Replace(kqlText, "order by ingest asc, itemId asc", "order by timestamp desc", 1),
		strings.Replace(kqlText, "| extend ingest = ingestion_time()\n", "", 1),
	} {
		a := post(t, s, "/v1/apps/"+appID+"/query", q, "", nil)
		r := decode(t, a)
		if a.status != 400 || r.Error == nil || r.Error.Code != "BadArgumentError" || r.Error.InnerError["code"] != "SyntaxError" {
			t.Errorf("query %q: %d %s", q, a.status, a.body)
		}
	}
}

func TestFaults(t *testing.T) {
	s := start(t, Options{})
	for i := range 4 {
		s.AddRows(msg(string(rune('a'+i)), now.Add(-time.Duration(30-i)*time.Minute), "BotMessageSend"))
	}
	path := "/v1/apps/" + appID + "/query"
	s.InjectFault(1, Fault{Kind: Throttle, RetryAfter: 1500 * time.Millisecond})
	s.InjectFault(1, Fault{Kind: InternalError})
	s.InjectFault(1, Fault{Kind: Unavailable})
	s.InjectFault(1, Fault{Kind: GatewayTimeout})
	for _, want := range []struct {
		status int
		code   string
	}{{429, "ThrottledError"}, {500, "InternalServerError"}, {503, "ServiceUnavailableError"}, {504, "GatewayTimeout"}} {
		a := post(t, s, path, kqlText, "", nil)
		if r := decode(t, a); a.status != want.status || r.Error == nil || r.Error.Code != want.code {
			t.Errorf("want %d %s, got %d %s", want.status, want.code, a.status, a.body)
		}
		if want.status == 429 && a.header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After = %q, want 2 (whole seconds, rounded up)", a.header.Get("Retry-After"))
		}
	}

	s.InjectFault(1, Fault{Kind: PartialResult})
	a := post(t, s, path, kqlText, "", nil)
	r := decode(t, a)
	if a.status != 200 || r.Error == nil || r.Error.Code != "PartialError" || len(r.Tables[0].Rows) != 2 {
		t.Errorf("partial: %d %s", a.status, a.body)
	}

	s.InjectFault(1, Fault{Kind: MalformedJSON})
	a = post(t, s, path, kqlText, "", nil)
	if a.status != 200 || json.Valid(a.body) {
		t.Errorf("malformed: %d, valid JSON = %v", a.status, json.Valid(a.body))
	}

	s.InjectFault(1, Fault{Kind: Stall})
	ctx, cancel := context.WithCancel(context.Background())
	body, _ := json.Marshal(map[string]string{"query": kqlText})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+path, strings.NewReader(string(body)))
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second) // failure guard only
	for s.RequestCount() < 7 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled request never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("a stalled request answered")
	}

	if a := post(t, s, path, kqlText, "", nil); a.status != 200 || len(decode(t, a).Tables[0].Rows) != 4 {
		t.Errorf("after the faults: %d %s", a.status, a.body)
	}
	reqs := s.Requests()
	if reqs[0].Fault != Throttle || reqs[0].Status != 429 || reqs[4].Rows != 2 || reqs[7].Rows != 4 || reqs[7].Take != 100 ||
		!reqs[7].IngestUpper.Equal(time.Date(2026, 2, 18, 11, 57, 0, 0, time.UTC)) {
		t.Errorf("recorded requests: %+v", reqs)
	}
}

func TestLoadRowsAndRebase(t *testing.T) {
	rows, err := LoadRows(filepath.Join("testdata", "rows.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	var dims map[string]string
	if err := json.Unmarshal([]byte(rows[0].CustomDimensions), &dims); err != nil || dims["DesignMode"] != "False" {
		t.Fatalf("object customDimensions stored as %q", rows[0].CustomDimensions)
	}
	if rows[1].CustomDimensions != `{"conversationId":"a:1EBqwy","replyActivityId":"1700000000001","text":"Open https://aka.ms/sspr"}` {
		t.Fatalf("string customDimensions changed: %q", rows[1].CustomDimensions)
	}
	if rows[2].CustomDimensions != "{not json" {
		t.Fatalf("malformed customDimensions not kept verbatim: %q", rows[2].CustomDimensions)
	}
	shifted := Rebase(rows, now)
	if !shifted[2].IngestionTime.Equal(now) || shifted[0].IngestionTime.Sub(shifted[2].IngestionTime) != rows[0].IngestionTime.Sub(rows[2].IngestionTime) {
		t.Fatalf("rebase: %v", shifted)
	}
	if !rows[2].IngestionTime.Equal(time.Date(2026, 2, 18, 1, 25, 13, 0, time.UTC)) {
		t.Fatal("Rebase changed its input")
	}
	out, _ := json.Marshal(rows)
	var again []Row
	if err := json.Unmarshal(out, &again); err != nil || again[2].CustomDimensions != "{not json" {
		t.Fatalf("round trip: %v %+v", err, again)
	}
}

// TestProjectionCells: rows are rendered once when added; a projection of
// other columns or in another order still gets each cell right, and the full
// projection gets every column of the row.
func TestProjectionCells(t *testing.T) {
	s := start(t, Options{})
	row := msg("x", now.Add(-30*time.Minute), "BotMessageReceived")
	row.RoleInstance = `Ops "Night" <Agent>`
	s.AddRows(row)
	want := map[string]any{
		"timestamp": formatTime(row.Timestamp), "name": row.Name, "itemId": "x",
		"customDimensions": row.CustomDimensions, "cloud_RoleInstance": row.RoleInstance, "ingest": formatTime(row.IngestionTime),
	}
	for _, cols := range []string{
		"timestamp, name, itemId, customDimensions, cloud_RoleInstance, ingest",
		"ingest, cloud_RoleInstance, itemId",
		"customDimensions",
	} {
		q := strings.Replace(kqlText, "timestamp, name, itemId, customDimensions, cloud_RoleInstance, ingest", cols, 1)
		r := decode(t, post(t, s, "/v1/apps/"+appID+"/query", q, "", nil))
		names := strings.Split(cols, ", ")
		if len(r.Tables) != 1 || len(r.Tables[0].Rows) != 1 || len(r.Tables[0].Rows[0]) != len(names) {
			t.Fatalf("project %s: %+v", cols, r)
		}
		for i, name := range names {
			if got := r.Tables[0].Rows[0][i]; got != want[name] {
				t.Errorf("project %s: column %s = %v, want %v", cols, name, got, want[name])
			}
		}
	}
}

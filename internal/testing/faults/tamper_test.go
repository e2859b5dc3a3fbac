package faults

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
)

const testQuery = "customEvents\n| where name in (\"BotMessageReceived\", \"BotMessageSend\", \"TopicAction\")\n| extend ingest = ingestion_time()\n| project timestamp, name, itemId, customDimensions, cloud_RoleInstance, ingest\n| order by ingest asc, itemId asc"

func query(t *testing.T, url string) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": testQuery, "timespan": "P7D"})
	resp, err := http.Post(url+"/v1/apps/app/query", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// The bad-input cases reach a reader as intended: through the stand-in's
// real encoding, and through Tamper's edits.
func TestBadInputThroughTamper(t *testing.T) {
	srv, err := fakeappinsights.New(fakeappinsights.Options{AppID: "app"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tp, err := NewTamper(srv.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()

	cases := badInput(1, time.Now().Add(-time.Hour))
	byName := map[string]badCase{}
	for _, c := range cases {
		srv.AddRows(c.rows...)
		if c.tamper != nil {
			c.tamper(tp)
		}
		byName[c.name] = c
	}

	status, body := query(t, tp.URL())
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var answer struct {
		Tables []struct {
			Rows [][]any `json:"rows"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatal(err)
	}
	rowOf := func(item string) []any {
		for _, r := range answer.Tables[0].Rows {
			if r[2] == item {
				return r
			}
		}
		return nil
	}
	if r := rowOf(byName["wrong column type: timestamp"].broken); r == nil || r[0] != float64(1771374276) {
		t.Errorf("timestamp not replaced by a number: %v", r)
	}
	if r := rowOf(byName["unknown event name"].broken); r == nil || r[1] != "SomethingNobodyAskedFor" {
		t.Errorf("event name not replaced: %v", r)
	}
	if r := rowOf(byName["wrong column type: customDimensions"].broken); r == nil {
		t.Error("customDimensions row missing")
	} else if _, isObject := r[3].(map[string]any); !isObject {
		t.Errorf("customDimensions is %T, want an object", r[3])
	}
	if r := rowOf(byName["1 MB text"].broken); r == nil || len(r[3].(string)) < 1<<20 {
		t.Error("1 MB text row missing or short")
	}
	if r := rowOf(byName["customDimensions not JSON"].broken); r == nil || json.Valid([]byte(r[3].(string))) {
		t.Errorf("customDimensions should be invalid JSON: %v", r)
	}
	if r := rowOf(byName["invalid UTF-8"].broken); r == nil {
		t.Error("invalid UTF-8 row missing")
	} else {
		var dims map[string]string
		if err := json.Unmarshal([]byte(r[3].(string)), &dims); err != nil || !bytes.Contains([]byte(dims["text"]), []byte("\uFFFD")) {
			t.Errorf("text should carry U+FFFD after decoding: %q, %v", dims["text"], err)
		}
	}

	tp.ReplaceNext(1, NotJSON)
	tp.ReplaceNext(1, EmptyTables)
	if _, b := query(t, tp.URL()); json.Valid(b) {
		t.Errorf("NotJSON answer is JSON: %s", b)
	}
	if _, b := query(t, tp.URL()); string(b) != `{"tables":[]}` {
		t.Errorf("EmptyTables answer: %s", b)
	}
	if _, b := query(t, tp.URL()); !json.Valid(b) || tp.PendingBodies() != 0 {
		t.Error("answers after the injected ones are not back to normal")
	}
}

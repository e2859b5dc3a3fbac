package harness

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/fakeappinsights"
)

func TestMetricValue(t *testing.T) {
	text := `# HELP otelcol_activitypair_turns_emitted Turns passed on.
# TYPE otelcol_activitypair_turns_emitted counter
otelcol_activitypair_turns_emitted{outcome="paired",trigger="complete"} 8
otelcol_activitypair_turns_emitted{outcome="failed",trigger="complete"} 1
otelcol_activitypair_turns_emitted_total_other 100
otelcol_activitypair_open_turns 2
`
	for _, tc := range []struct {
		name  string
		want  float64
		found bool
	}{
		{"otelcol_activitypair_turns_emitted", 9, true},
		{"otelcol_activitypair_open_turns", 2, true},
		{"otelcol_activitypair_rows_buffered", 0, false},
	} {
		got, found, err := metricValue(text, tc.name)
		if err != nil || got != tc.want || found != tc.found {
			t.Errorf("%s: got %v, %v, %v; want %v, %v", tc.name, got, found, err, tc.want, tc.found)
		}
	}
}

// TestCursorPassed: the crash tests rely on it to kill the collector only
// once rows are past the receiver's cursor.
func TestCursorPassed(t *testing.T) {
	srv, err := fakeappinsights.New(fakeappinsights.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a := &Azure{AppInsights: srv}
	rowsIngested := time.Date(2026, 2, 18, 9, 0, 0, 0, time.UTC)

	query := func(upper time.Time, fault *fakeappinsights.Fault) {
		t.Helper()
		if fault != nil {
			srv.InjectFault(1, *fault)
		}
		kql := "customEvents\n| where name in (\"BotMessageReceived\")\n| extend ingest = ingestion_time()\n" +
			"| where ingest >= datetime(2026-02-18T08:00:00.0000000Z) and ingest < datetime(" +
			upper.Format("2006-01-02T15:04:05.0000000Z") + ")\n| order by ingest asc, itemId asc\n| take 10"
		body, _ := json.Marshal(map[string]string{"query": kql, "timespan": "P30D"})
		resp, err := http.Post(srv.URL()+"/v1/apps/any/query", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	if a.CursorPassed(rowsIngested) {
		t.Fatal("passed before any query")
	}
	query(rowsIngested, nil) // upper bound is exclusive: the rows are not in it
	query(rowsIngested.Add(time.Second), &fakeappinsights.Fault{Kind: fakeappinsights.InternalError})
	query(rowsIngested.Add(time.Second), nil)
	if a.CursorPassed(rowsIngested) {
		t.Fatal("passed while the only window holding the rows may still be in the pipeline")
	}
	query(rowsIngested.Add(2*time.Second), nil)
	if !a.CursorPassed(rowsIngested) {
		t.Fatal("not passed after the next query started")
	}
}

func TestParseStatCPU(t *testing.T) {
	// A real line's shape; the command name holds a space and a ')'.
	stat := "4242 (otelcol (x) y) S 1 4242 4242 0 -1 4194560 51234 0 12 0 1234 567 0 0 20 0 12 0 99 123456 789 18446744073709551615"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := (1234 + 567) * 10 * time.Millisecond; got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := parseStatCPU("4242 (x) S 1 2"); err == nil {
		t.Fatal("no error for a short line")
	}
}

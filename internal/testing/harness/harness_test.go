package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
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
	const kqlTime = "2006-01-02T15:04:05.0000000Z"
	rowsIngested := time.Date(2026, 2, 18, 9, 0, 0, 0, time.UTC)
	windowStart := rowsIngested.Add(-time.Hour)
	// standIn serves rows ingested at rowsIngested plus each offset; query
	// asks it, as the receiver does, for the rows of [lower, upper), at most
	// take of them.
	standIn := func(t *testing.T, offsets ...time.Duration) (a *Azure, query func(lower, upper time.Time, take int, fault *fakeappinsights.Fault)) {
		srv, err := fakeappinsights.New(fakeappinsights.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		srv.SetNow(rowsIngested.Add(time.Hour))
		for i, d := range offsets {
			srv.AddRows(fakeappinsights.Row{
				Timestamp: rowsIngested.Add(d - 30*time.Second), IngestionTime: rowsIngested.Add(d),
				Name: "BotMessageReceived", ItemID: fmt.Sprintf("item-%d", i), CustomDimensions: "{}", RoleInstance: "HR Agent",
			})
		}
		return &Azure{AppInsights: srv}, func(lower, upper time.Time, take int, fault *fakeappinsights.Fault) {
			t.Helper()
			if fault != nil {
				srv.InjectFault(1, *fault)
			}
			kql := "customEvents\n| where name in (\"BotMessageReceived\")\n| extend ingest = ingestion_time()\n" +
				"| where ingest >= datetime(" + lower.Format(kqlTime) + ") and ingest < datetime(" + upper.Format(kqlTime) + ")\n| order by ingest asc, itemId asc\n| take " + strconv.Itoa(take)
			body, _ := json.Marshal(map[string]string{"query": kql, "timespan": "P30D"})
			resp, err := http.Post(srv.URL()+"/v1/apps/any/query", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}

	t.Run("window upper bound", func(t *testing.T) {
		a, query := standIn(t)
		if a.CursorPassed(rowsIngested) {
			t.Fatal("passed before any query")
		}
		query(windowStart, rowsIngested, 10, nil) // upper bound is exclusive: the rows are not in it
		query(windowStart, rowsIngested.Add(time.Second), 10, &fakeappinsights.Fault{Kind: fakeappinsights.InternalError})
		query(windowStart, rowsIngested.Add(time.Second), 10, nil)
		if a.CursorPassed(rowsIngested) {
			t.Fatal("passed while the only window holding the rows may still be in the pipeline")
		}
		query(windowStart, rowsIngested.Add(2*time.Second), 10, nil)
		if !a.CursorPassed(rowsIngested) {
			t.Fatal("not passed after the next query started")
		}
	})

	// An over-full answer (take = max_rows_per_query + 1 rows came back) is
	// delivered only up to its last row's ingestion time, whatever the
	// window's upper bound: the receiver's cursor stops there.
	t.Run("over-full answer cut at the rows", func(t *testing.T) {
		a, query := standIn(t, -2*time.Second, -time.Second, 0, time.Second)
		query(windowStart, rowsIngested.Add(time.Hour), 3, nil)  // cut at rowsIngested: the row there is not delivered
		query(rowsIngested, rowsIngested.Add(time.Hour), 3, nil) // the receiver carries on from the cut
		if a.CursorPassed(rowsIngested) {
			t.Fatal("passed although the over-full answer was cut at the rows' ingestion time")
		}
		query(rowsIngested.Add(time.Hour), rowsIngested.Add(time.Hour+time.Second), 3, nil)
		if !a.CursorPassed(rowsIngested) {
			t.Fatal("not passed after a window holding the rows in full was followed by another query")
		}
	})
	t.Run("over-full answer cut after the rows", func(t *testing.T) {
		a, query := standIn(t, -time.Second, 0, time.Second, 2*time.Second)
		query(windowStart, rowsIngested.Add(time.Hour), 3, nil) // cut at rowsIngested+1s: the row at rowsIngested is delivered
		if a.CursorPassed(rowsIngested) {
			t.Fatal("passed while the window may still be in the pipeline")
		}
		query(rowsIngested.Add(time.Second), rowsIngested.Add(time.Hour), 3, nil)
		if !a.CursorPassed(rowsIngested) {
			t.Fatal("not passed although the over-full answer was cut after the rows and the next query started")
		}
	})
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

// TestServeBacklog: the watermark must come after every backlog row by more
// than the processor's default reply_timeout + reorder_window, or the
// backlog's last turns would wait for the wall-clock timeout.
func TestServeBacklog(t *testing.T) {
	srv, err := fakeappinsights.New(fakeappinsights.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a := &Azure{AppInsights: srv}
	now := time.Date(2026, 2, 18, 12, 0, 0, 0, time.UTC)
	work := workload.Generate(BacklogConfig(42, 200, now))
	verifier, served := a.ServeBacklog(work, 42^0xfeed, now)

	if served != srv.RowCount() || served <= len(work.Rows) {
		t.Fatalf("served %d rows, the stand-in holds %d, the backlog has %d", served, srv.RowCount(), len(work.Rows))
	}
	if want := verifier.Report().Expected; want != len(work.Turns) {
		t.Fatalf("verifier expects %d turns, the backlog has %d", want, len(work.Turns))
	}
	var lastBacklog time.Time
	for _, r := range work.Rows {
		if r.IngestionTime.After(lastBacklog) {
			lastBacklog = r.IngestionTime
		}
	}
	// The first row ingested after the backlog, as the stand-in answers it.
	srv.SetNow(now)
	kql := "customEvents\n| where name in (\"BotMessageReceived\", \"BotMessageSend\")\n| extend ingest = ingestion_time()\n" +
		"| where ingest > datetime(" + lastBacklog.Format(time.RFC3339Nano) + ")\n| take 1"
	body, _ := json.Marshal(map[string]string{"query": kql, "timespan": "P1D"})
	resp, err := http.Post(srv.URL()+"/v1/apps/any/query", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	first := srv.Requests()[0]
	if first.Status != http.StatusOK || first.Rows != 1 {
		t.Fatalf("no watermark row after the backlog: %+v", first)
	}
	if gap, least := first.LastIngest.Sub(lastBacklog), 20*time.Minute; gap < least {
		t.Fatalf("watermark ingested %v after the backlog's last row, want at least %v", gap, least)
	}
}

// TestProduceRefused: the broker-down scenario waits on this count to know
// the exporter retried against a broker that was down.
func TestProduceRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, err := StartKafka(DefaultTopic, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	client, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	record := func() *kgo.Record { return &kgo.Record{Topic: DefaultTopic, Value: []byte("turn")} }

	if err := client.ProduceSync(ctx, record()).FirstErr(); err != nil || k.ProduceRefused() != 0 {
		t.Fatalf("broker up: produce %v, %d refused", err, k.ProduceRefused())
	}
	k.SetProduceDown(true)
	done := make(chan error, 1)
	client.Produce(ctx, record(), func(_ *kgo.Record, err error) { done <- err })
	if err := WaitFor(ctx, 10*time.Millisecond, "a refused produce request", func() (bool, error) {
		return k.ProduceRefused() > 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the record was settled (%v) while the broker was down", err)
	default:
	}
	k.SetProduceDown(false)
	refused := k.ProduceRefused()
	select {
	case err := <-done: // the client's retry gets through
		if err != nil {
			t.Fatalf("broker back: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the record was never produced after the broker came back")
	}
	if k.ProduceRefused() != refused {
		t.Errorf("refusals counted while the broker was up: %d, then %d", refused, k.ProduceRefused())
	}
	if n := k.RecordCount(DefaultTopic); n != 2 {
		t.Errorf("%d records on the topic, want 2", n)
	}
}

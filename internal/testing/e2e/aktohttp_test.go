package e2e

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/aktocheck"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeakto"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// The token the ingestion stand-in checks; a test fixture, not a secret.
const ingestionToken = "e2e-ingestion-token-5f1c0a2e" // #nosec G101

// TestAktoHTTPEndToEnd runs the sample through the real distribution with
// collector-config.akto-http.yaml, delivering to the data ingestion
// stand-in instead of Kafka, and rides out what the service can do: a
// record it refuses (422; dropped, logged with its turn id and counted,
// everything else arrives), a revoked token (401 until it is set back), a
// 503 stretch, and a SIGKILL mid-stream. Every turn arrives once by turn id;
// a repeat only after the SIGKILL, and only under its first turn id.
func TestAktoHTTPEndToEnd(t *testing.T) {
	bin := harness.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	akto := fakeakto.New(fakeakto.Options{Token: ingestionToken})
	defer akto.Close()
	azure, err := harness.StartAzure(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer azure.Close()

	sample, err := harness.LoadSample(root, time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	checkSampleCarriesSecrets(t, root)

	// The service refuses one turn of the sample, picked by what it says
	// (the record itself is opaque to this test).
	refusedTurn, expectedSample := splitRefusedTurn(t, sample.Turns)
	akto.SetRefuse(func(record []byte) bool {
		d, err := workload.DecodeAkto(record)
		return err == nil && d.ConversationID == refusedTurn.ConversationID && d.RequestActivityID == refusedTurn.RequestActivityID
	})
	azure.AppInsights.AddRows(sample.Rows...)

	col := startCollector(ctx, t, harness.CollectorOptions{
		Binary:     bin,
		Config:     harness.CollectorConfigPath(),
		Overlays:   []string{filepath.Join(root, "collector-config.akto-http.yaml")},
		Env:        harness.Env(azure.Env(), akto.Env(), harness.FastEnv()),
		StorageDir: filepath.Join(dir, "storage"),
	})
	defer killAndReport(t, col) // before the stand-ins go away

	expected := append([]workload.Turn(nil), expectedSample...)
	waitDelivered := func(t *testing.T, ty *tally, want int) {
		t.Helper()
		err := akto.WaitUntil(ctx, func(records [][]byte, _ []fakeakto.Request) bool {
			return ty.until(func(v *workload.Verifier) bool { return v.Delivered() >= want })(records)
		})
		if err != nil {
			t.Fatalf("waiting for %d turns: %v\n%s", want, err, ty.v.Report())
		}
	}

	t.Run("sample arrives; the refused turn alone is dropped, logged and counted", func(t *testing.T) {
		ty := newTally(expectedSample)
		waitDelivered(t, ty, len(expectedSample))
		if err := harness.WaitFor(ctx, 100*time.Millisecond, "the refused record to be counted", func() (bool, error) {
			n, err := labelledMetric(ctx, col, "otelcol_akto_exporter_records_dropped", `reason="refused"`)
			return n >= 1, err
		}); err != nil {
			t.Fatal(err)
		}
		if err := ty.v.Report().Err(false); err != nil {
			t.Fatalf("sample: %v", err)
		}
		if n, err := labelledMetric(ctx, col, "otelcol_akto_exporter_records_dropped", ""); err != nil || n != 1 {
			t.Fatalf("records dropped: %v (%v), want exactly the refused one", n, err)
		}
		// The log names the refused turn by its id.
		refusedID := ""
		for _, r := range akto.Requests() {
			if r.Refused != nil {
				d, err := workload.DecodeAkto(r.Refused)
				if err != nil {
					t.Fatal(err)
				}
				refusedID = d.TurnID
			}
		}
		if refusedID == "" || !logLineHas(col.Output(), "refused this record", refusedID) {
			t.Fatalf("no log line names the refused turn %q", refusedID)
		}
		records := akto.Records()
		if ids := turnIDs(t, records); len(records) != len(expectedSample) || len(ids) != len(expectedSample) {
			t.Fatalf("%d records with %d distinct turn ids for %d turns", len(records), len(ids), len(expectedSample))
		}
		checkNoCredentials(t, records)
		checkAktoFiling(t, records, aktocheck.Options{Agents: agentsOf(sample.Turns)})
	})

	phase := func(seed uint64, conversations int) []workload.Turn {
		now := time.Now()
		w := workload.Generate(workload.Config{
			Seed: seed, Conversations: conversations,
			Start: now.Add(-30 * time.Minute), Span: 10 * time.Minute,
			GreetingRate: 0.5, MissingReplyIDRate: 1.0 / 12,
		})
		for i := range w.Rows {
			w.Rows[i].IngestionTime = now.Add(-2*time.Second - time.Duration(len(w.Rows)-i)*time.Millisecond)
		}
		azure.AppInsights.AddRows(w.Rows...)
		return w.Turns
	}

	t.Run("a revoked token: 401s, an error that says what to check, then everything", func(t *testing.T) {
		before := len(akto.Requests())
		akto.SetToken("rotated-elsewhere")
		turns := phase(20261201, 5)
		ty := newTally(turns, conversationsOf(expected)...)
		if err := akto.WaitUntil(ctx, func(_ [][]byte, reqs []fakeakto.Request) bool {
			return countStatus(reqs[before:], 401) >= 2
		}); err != nil {
			t.Fatal(err)
		}
		if !logLineHas(col.Output(), "\terror\t", "AKTO_INGESTION_TOKEN") {
			t.Fatal("no error log line tells to check AKTO_INGESTION_TOKEN")
		}
		if strings.Contains(col.Output(), ingestionToken) {
			t.Fatal("the token reached the collector's log")
		}
		akto.SetToken(ingestionToken)
		expected = append(expected, turns...)
		waitDelivered(t, ty, len(turns))
		if err := ty.v.Report().Err(false); err != nil {
			t.Fatalf("turns sent while the token was refused: %v", err)
		}
	})

	t.Run("a 503 stretch", func(t *testing.T) {
		before := len(akto.Requests())
		akto.FailNext(503, 3, time.Second)
		turns := phase(20261202, 5)
		ty := newTally(turns, conversationsOf(expected)...)
		expected = append(expected, turns...)
		waitDelivered(t, ty, len(turns))
		if n := countStatus(akto.Requests()[before:], 503); n != 3 {
			t.Fatalf("%d answers 503, want the stretch of 3", n)
		}
		if err := ty.v.Report().Err(false); err != nil {
			t.Fatalf("turns sent through the 503 stretch: %v", err)
		}
		if n, err := labelledMetric(ctx, col, "otelcol_akto_exporter_requests", `status_class="5xx"`); err != nil || n < 3 {
			t.Fatalf("requests answered 5xx: %v (%v), want at least 3", n, err)
		}
	})

	// Nothing repeated before the SIGKILL.
	recordsBeforeKill := 0
	t.Run("SIGKILL mid-stream", func(t *testing.T) {
		turns := phase(20261203, 40)
		ty := newTally(turns, conversationsOf(expected)...)
		if err := akto.WaitUntil(ctx, func(records [][]byte, _ []fakeakto.Request) bool {
			return ty.until(func(v *workload.Verifier) bool { return v.Delivered() > 0 })(records)
		}); err != nil {
			t.Fatalf("no turn of the generated conversations arrived: %v", err)
		}
		if err := col.Kill(); err != nil {
			t.Fatal(err)
		}
		recordsBeforeKill = len(akto.Records())
		before := workload.NewVerifier(expected)
		before.Optional(turns)
		for _, r := range akto.Records() {
			before.Add(r)
		}
		if err := before.Report().Err(false); err != nil {
			t.Fatalf("before the SIGKILL (no repeats allowed yet): %v", err)
		}
		delivered := ty.v.Delivered()
		if delivered == len(turns) {
			t.Fatalf("all %d turns were already delivered when the collector was killed: nothing in flight", delivered)
		}
		t.Logf("killed with %d of %d turns delivered", delivered, len(turns))
		if err := col.Start(ctx); err != nil {
			t.Fatal(err)
		}
		expected = append(expected, turns...)
		waitDelivered(t, ty, len(turns))
		if err := ty.v.Report().Err(true); err != nil {
			t.Fatalf("generated conversations: %v", err)
		}
	})

	// Everything, from the first record on: every turn but the refused one,
	// once by turn id, repeats only after the SIGKILL under the first id.
	records := akto.Records()
	report := workload.Verify(expected, records)
	if err := report.Err(true); err != nil {
		t.Fatalf("whole run: %v", err)
	}
	if ids := turnIDs(t, records); len(ids) != len(expected) {
		t.Fatalf("%d distinct turn ids for %d turns", len(ids), len(expected))
	}
	t.Logf("whole run: %s; %d of the records arrived after the SIGKILL", report, len(records)-recordsBeforeKill)
	checkNoCredentials(t, records)
	checkAktoFiling(t, records, aktocheck.Options{Agents: agentsOf(expected, sample.Turns)})
}

// splitRefusedTurn picks the sample turn the stand-in refuses: the first
// answered user message (a turn the verifier tells apart by its activity).
func splitRefusedTurn(t *testing.T, turns []workload.Turn) (workload.Turn, []workload.Turn) {
	t.Helper()
	for i, turn := range turns {
		if turn.RequestActivityID != "" && len(turn.Replies) > 0 {
			rest := append(append([]workload.Turn(nil), turns[:i]...), turns[i+1:]...)
			return turn, rest
		}
	}
	t.Fatal("the sample has no answered user message to refuse")
	return workload.Turn{}, nil
}

func countStatus(reqs []fakeakto.Request, status int) int {
	n := 0
	for _, r := range reqs {
		if r.Status == status {
			n++
		}
	}
	return n
}

// logLineHas reports whether one line of the collector's output holds
// every one of parts.
func logLineHas(output string, parts ...string) bool {
	for _, line := range strings.Split(output, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// labelledMetric sums the samples of one of the collector's counters whose
// labels contain label (all of them when label is empty).
func labelledMetric(ctx context.Context, col *harness.Collector, name, label string) (float64, error) {
	text, err := col.Metrics(ctx)
	if err != nil {
		return 0, err
	}
	sum := 0.0
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok {
			continue
		}
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') || !strings.Contains(rest, label) {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

package freshness

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// TestArrivalTimesAreExact checks the simulation itself: on conversations an
// hour apart, each ingested a fixed 30 s after its events, with polls every
// minute, no ingestion delay and no reorder window, every record must arrive
// at the simulated instant the components' documented rules give: a turn at
// the poll that reads its next user message, a conversation's last turn
// reply_timeout after the poll that read its last row (a sweep falls due
// exactly then). Stamping the wrong clock, a poll or sweep fired at the wrong
// time, or moving on before one is done shows here.
func TestArrivalTimesAreExact(t *testing.T) {
	const (
		poll         = time.Minute
		replyTimeout = 5 * time.Minute
	)
	profile := Profile{Name: "exact", Env: map[string]string{
		"POLL_INTERVAL": "1m", "INGESTION_DELAY": "0s", "REORDER_WINDOW": "0s", "REPLY_TIMEOUT": "5m",
	}}
	cfg := workload.DefaultConfig(7, 12)
	cfg.Span, cfg.LateRate, cfg.FixedIngestionDelay = time.Millisecond, 0, 30*time.Second
	w := &workload.Workload{Conversations: cfg.Conversations}
	i := 0
	workload.ForEachConversation(cfg, func(c workload.Conversation) {
		shift := time.Duration(i) * time.Hour // alone: no other rows move the watermark
		i++
		for _, r := range c.Rows {
			r.Timestamp, r.IngestionTime = r.Timestamp.Add(shift), r.IngestionTime.Add(shift)
			w.Rows = append(w.Rows, r)
		}
		for _, tn := range c.Turns {
			if !tn.RequestTime.IsZero() {
				tn.RequestTime = tn.RequestTime.Add(shift)
			}
			w.Turns = append(w.Turns, tn)
		}
	})
	workload.SortByIngestion(w.Rows)

	res, err := Run(t, Spec{Profile: profile, Work: w})
	if err != nil {
		t.Fatal(err)
	}
	ingested := map[string]time.Time{}
	for _, r := range w.Rows {
		ingested[r.ItemID] = r.IngestionTime
	}
	// The poll that reads a row: the first after its ingestion time (a
	// window's upper bound is exclusive).
	readAt := func(id string) time.Time {
		k := ingested[id].Sub(res.Start)/poll + 1
		return res.Start.Add(k * poll)
	}
	arrived := map[string]time.Time{}
	for _, rec := range res.Records {
		for _, id := range rec.ItemIDs {
			arrived[id] = rec.At
		}
	}
	if f := res.Fidelity; f.Exact != f.Turns {
		t.Fatalf("fidelity %+v: every turn should come whole", f)
	}
	for i, tn := range w.Turns {
		last := i+1 == len(w.Turns) || w.Turns[i+1].ConversationID != tn.ConversationID
		var want time.Time
		if last {
			want = readAt(tn.ItemIDs[len(tn.ItemIDs)-1]).Add(replyTimeout)
		} else {
			want = readAt(w.Turns[i+1].ItemIDs[0]) // the next turn's first row
		}
		if got := arrived[tn.ItemIDs[0]]; !got.Equal(want) {
			t.Errorf("turn %d of conversation %.20s (last %t): arrived at %s, want %s",
				tn.Index, tn.ConversationID, last, got.Format(time.TimeOnly), want.Format(time.TimeOnly))
		}
	}
}

// TestLowLatencyProfile runs the shipped and the low-latency profile on the
// same workload: nothing lost, every turn paired as the ground truth says,
// and the low-latency profile's slowest turns come before the shipped
// profile's median, at one query per poll.
func TestLowLatencyProfile(t *testing.T) {
	w, from, to := Workload(3, 600, 2*time.Hour)
	results := map[string]Result{}
	for _, p := range []Profile{Shipped, LowLatency} {
		res, err := Run(t, Spec{Profile: p, Work: w, SteadyFrom: from, SteadyTo: to})
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		results[p.Name] = res
		t.Logf("%s (%s): p50 %v p99 %v max %v over %d records; %+v; %.0f queries/h",
			p.Name, res.Timings, res.Percentile(50), res.Percentile(99), res.Percentile(100), len(res.Freshness), res.Fidelity, res.QueriesPerHour())
		if f := res.Fidelity; f.Exact != f.Turns || f.RepeatedRows != 0 {
			t.Errorf("%s: %+v, want every turn exact", p.Name, f)
		}
		if err := res.Verifier.Err(false); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		if len(res.Freshness) < len(w.Turns)/2 {
			t.Errorf("%s: only %d of %d records in the steady window", p.Name, len(res.Freshness), len(w.Turns))
		}
		// No turn can go out before the window that reads its last row
		// ends (ingestion_delay) and the shorter of its pairing waits.
		tm := res.Timings
		if floor := tm.IngestionDelay + min(tm.ReorderWindow, tm.ReplyTimeout); res.Freshness[0] < floor {
			t.Errorf("%s: a record arrived %v after its last row became queryable, before the %v its timings allow", p.Name, res.Freshness[0], floor)
		}
		if want := float64(time.Hour / tm.PollInterval); res.QueriesPerHour() < 0.95*want || res.QueriesPerHour() > 1.05*want {
			t.Errorf("%s: %.1f queries per hour, want one per poll (%.0f)", p.Name, res.QueriesPerHour(), want)
		}
	}
	if low, shipped := results[LowLatency.Name], results[Shipped.Name]; low.Percentile(99) >= shipped.Percentile(50) {
		t.Errorf("low-latency p99 %v is not below the shipped median %v", low.Percentile(99), shipped.Percentile(50))
	}
	if tm := results[LowLatency.Name].Timings; tm.PollInterval != 30*time.Second || tm.IngestionDelay != 30*time.Second ||
		tm.Overlap != 3*time.Minute+30*time.Second || tm.ReorderWindow != 3*time.Minute || tm.ReplyTimeout != 4*time.Minute {
		t.Errorf("the low-latency overlay loaded as %s", tm)
	}
}

// TestDeterministic: the same workload and profile give the same arrival
// times to the millisecond, however the machine schedules the components.
func TestDeterministic(t *testing.T) {
	w, _, _ := Workload(5, 150, time.Hour)
	var runs [][]time.Duration
	for range 2 {
		res, err := Run(t, Spec{Profile: Shortest, Work: w})
		if err != nil {
			t.Fatal(err)
		}
		var arrivals []time.Duration
		for _, r := range res.Records {
			arrivals = append(arrivals, r.At.Sub(res.Start))
		}
		runs = append(runs, arrivals)
	}
	if !slices.Equal(runs[0], runs[1]) {
		t.Fatalf("two runs of the same simulation differ: %d and %d records", len(runs[0]), len(runs[1]))
	}
}

// TestLateIngestionWithinCoverage: rows that become queryable after the
// receiver's window passed their ingestion_time() (5% of the rows, by up to
// twice ingestion_delay + overlap) are all fetched when the lag is within
// ingestion_delay + overlap, in the shipped and the low-latency profile;
// beyond it some are not, which shows the fault reaches the receiver.
func TestLateIngestionWithinCoverage(t *testing.T) {
	w, _, _ := Workload(11, 400, time.Hour)
	for _, p := range []Profile{Shipped, LowLatency} {
		coverage := 4 * time.Minute // both: 3m + 1m, 30s + 3m30s
		res, err := Run(t, Spec{Profile: p, Work: w, Visible: LateVisibility(0.05, 2*coverage)})
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if got := res.Timings.IngestionDelay + res.Timings.Overlap; got != coverage {
			t.Fatalf("%s: ingestion_delay + overlap = %v, the test assumes %v", p.Name, got, coverage)
		}
		within := 0
		for _, lag := range res.LateRows {
			if lag <= coverage {
				within++
			}
		}
		for _, lag := range res.LateRowsLost {
			if lag <= coverage {
				t.Errorf("%s: a row queryable %v after its ingestion time was never fetched", p.Name, lag)
			}
		}
		t.Logf("%s: %d late rows, %d within %v; %d lost, all later; %+v", p.Name, len(res.LateRows), within, coverage, len(res.LateRowsLost), res.Fidelity)
		if within < 50 || len(res.LateRowsLost) == 0 {
			t.Errorf("%s: %d late rows within coverage, %d lost beyond: the fault did not reach the receiver", p.Name, within, len(res.LateRowsLost))
		}
	}
}

// TestLowLatencyOverlayValidates runs the built distribution's validate on
// collector-config.yaml with the overlay, as an operator would.
func TestLowLatencyOverlayValidates(t *testing.T) {
	bin := harness.Binary(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "validate", "--config", harness.CollectorConfigPath(), "--config", filepath.Join(root, LowLatencyOverlay))
	// The overlay's own values, not a developer's timing variables.
	for _, kv := range cmd.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !slices.Contains(timingVariables, name) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "APPINSIGHTS_APP_ID="+harness.StandInAppID, "AZURE_TENANT_ID="+harness.StandInTenantID,
		"AZURE_CLIENT_ID="+harness.StandInClientID, "AZURE_CLIENT_SECRET="+harness.StandInClientSecret)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("validate with %s: %v\n%s", LowLatencyOverlay, err, out)
	}
}

package freshness

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/collector/confmap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// Profile is a way to run the collector: collector-config.yaml, the
// overlays given after it (as further --config flags), and environment
// variables.
type Profile struct {
	Name     string
	Overlays []string          // paths relative to the repository root
	Env      map[string]string // on top of the stand-ins' variables
}

// timingVariables are what collector-config.yaml and its overlays read for
// the receiver's and the pairing's timings and sizes: unset in a
// simulation unless the profile sets them, so a developer's own
// environment cannot change the result.
var timingVariables = []string{
	"POLL_INTERVAL", "INGESTION_DELAY", "OVERLAP", "INITIAL_LOOKBACK", "REPLY_TIMEOUT", "REORDER_WINDOW",
	"MAX_ROWS_PER_QUERY", "MAX_BATCH_SIZE", "MAX_CONCURRENT_BATCHES", "APPINSIGHTS_TIMEOUT",
	"TRANSCRIPTS_POLL_INTERVAL", "TRANSCRIPTS_LOOKBACK", "TRANSCRIPTS_OVERLAP", "TRANSCRIPTS_PAGE_SIZE", "DATAVERSE_REFRESH_INTERVAL",
}

// Spec is one simulation: a profile run over a workload.
type Spec struct {
	Profile Profile
	Work    *workload.Workload
	// Visible is when a row becomes queryable; nil means at its ingestion
	// time (ingestion_time()), which is how the stand-in serves rows.
	Visible func(row workload.Row) time.Time
	// Steady selects the records whose freshness counts: those whose
	// latest row became queryable in [From, To). Zero: all.
	SteadyFrom, SteadyTo time.Time
}

// Result is what a simulation measured.
type Result struct {
	Timings Timings
	// Start is the simulated time the receiver started (its first poll).
	Start time.Time
	// Records are the turn records in the order they arrived.
	Records []Record
	// Freshness of each record counted (see Spec.Steady), sorted: the time
	// from the moment the latest of its rows became queryable to the
	// moment the pipeline handed the record on.
	Freshness []time.Duration
	Fidelity  Fidelity
	// Verifier is the workload verifier's report on the records' content.
	Verifier workload.Report
	// Queries is how many query requests the receiver made in Simulated.
	Queries   int
	Simulated time.Duration
	// RowsRead is the rows the query API returned, overlap re-reads
	// included.
	RowsRead int
	// LateRows are the rows that became queryable after their ingestion
	// time, by how long; LateRowsLost are those of them never emitted.
	LateRows, LateRowsLost []time.Duration
}

// Record is one turn record as it reached the end of the pipeline.
type Record struct {
	At      time.Time // simulated time it was handed on
	ItemIDs []string  // the rows it holds
	// Freshness is At less the time the latest of its rows became queryable.
	Freshness time.Duration
}

// QueriesPerHour of simulated time.
func (r Result) QueriesPerHour() float64 {
	return float64(r.Queries) / r.Simulated.Hours()
}

// Percentile is the nearest-rank p-th percentile of the freshness (0 < p <= 100).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Freshness) == 0 {
		return 0
	}
	rank := int(float64(len(r.Freshness))*p/100+0.999999) - 1
	return r.Freshness[min(max(rank, 0), len(r.Freshness)-1)]
}

// guard bounds each wait for a component in real time: a failure guard,
// never a measurement.
const guard = 2 * time.Minute

// Run simulates spec through the real receiver, the shipped processors and
// the query API and Entra ID stand-ins, on one simulated clock.
func Run(tb testing.TB, spec Spec) (Result, error) {
	tb.Helper()
	dir := tb.TempDir()
	az, err := harness.StartAzure(dir)
	if err != nil {
		return Result{}, err
	}
	defer az.Close()
	conf, err := loadProfile(tb, spec.Profile, az.Env())
	if err != nil {
		return Result{}, err
	}

	rows := spec.Work.Rows
	visible := func(r workload.Row) time.Time { return r.IngestionTime }
	if spec.Visible != nil {
		visible = spec.Visible
	}
	queryable := make(map[string]time.Time, len(rows))
	var held []workload.Row // rows the stand-in gets only once they are queryable
	var res Result
	for _, r := range rows {
		q := visible(r)
		if q.Before(r.IngestionTime) {
			return Result{}, fmt.Errorf("row %s queryable at %s, before its ingestion time %s", r.ItemID, q, r.IngestionTime)
		}
		queryable[r.ItemID] = q
		if q.After(r.IngestionTime) {
			held = append(held, r)
			res.LateRows = append(res.LateRows, q.Sub(r.IngestionTime))
		}
	}
	sort.SliceStable(held, func(i, j int) bool { return queryable[held[i].ItemID].Before(queryable[held[j].ItemID]) })
	lateSet := map[string]bool{}
	for _, r := range held {
		lateSet[r.ItemID] = true
	}
	var onTime []workload.Row
	for _, r := range rows {
		if !lateSet[r.ItemID] {
			onTime = append(onTime, r)
		}
	}
	az.AppInsights.AddRows(onTime...) // the stand-in hides each until its ingestion time

	first, last := rows[0].IngestionTime, rows[0].IngestionTime
	for _, q := range queryable {
		first, last = minTime(first, q), maxTime(last, q)
	}
	start := first.Add(-5 * time.Minute).Truncate(time.Minute)
	az.AppInsights.SetNow(start)
	clk := newSimClock(az.AppInsights)
	rec := &recorder{clk: clk}
	p, err := buildPipeline(conf, clk, rec)
	if err != nil {
		return Result{}, err
	}
	res.Timings, res.Start = p.timings, start
	if err := p.startOnDisk(tb, dir, clk); err != nil {
		return Result{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = p.shutdown()
		}
	}()

	// Time moves from timer to timer until every row is in a record, or
	// for at most four hours past the last row (a lost row ends it there).
	limit := last.Add(4 * time.Hour)
	now := start
	for rec.itemCount() < len(rows) {
		at, fired, err := clk.fireNext(limit, guard, func(at time.Time) {
			n := 0
			for n < len(held) && !queryable[held[n].ItemID].After(at) {
				n++
			}
			if n > 0 {
				az.AppInsights.AddRows(held[:n]...)
				held = held[n:]
			}
		})
		if err != nil {
			return Result{}, err
		}
		if !fired {
			break
		}
		now = at
	}
	stopped = true
	if err := p.shutdown(); err != nil {
		return Result{}, err
	}

	res.Simulated = now.Sub(start)
	for _, q := range az.AppInsights.Requests() {
		res.Queries++
		res.RowsRead += q.Rows
	}
	arrivals := rec.all()
	res.Fidelity = classify(spec.Work, arrivals)
	v := workload.NewVerifier(spec.Work.Turns)
	emitted := map[string]bool{}
	for _, a := range arrivals {
		v.Add(a.body)
		latest := time.Time{}
		for _, id := range a.itemIDs {
			emitted[id] = true
			latest = maxTime(latest, queryable[id])
		}
		res.Records = append(res.Records, Record{At: a.at, ItemIDs: a.itemIDs, Freshness: a.at.Sub(latest)})
		if (spec.SteadyFrom.IsZero() || !latest.Before(spec.SteadyFrom)) && (spec.SteadyTo.IsZero() || latest.Before(spec.SteadyTo)) {
			res.Freshness = append(res.Freshness, a.at.Sub(latest))
		}
	}
	slices.Sort(res.Freshness)
	res.Verifier = v.Report()
	for _, r := range rows {
		if lateSet[r.ItemID] && !emitted[r.ItemID] {
			res.LateRowsLost = append(res.LateRowsLost, queryable[r.ItemID].Sub(r.IngestionTime))
		}
	}
	return res, nil
}

// loadProfile reads collector-config.yaml and the profile's overlays with
// the stand-ins' and the profile's variables set, as the collector would.
func loadProfile(tb testing.TB, p Profile, standIns map[string]string) (*confmap.Conf, error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return nil, err
	}
	for _, name := range timingVariables {
		tb.Setenv(name, "") // restored when tb ends
		os.Unsetenv(name)
	}
	for k, v := range harness.Env(standIns, p.Env) {
		tb.Setenv(k, v)
	}
	paths := []string{harness.CollectorConfigPath()}
	for _, o := range p.Overlays {
		paths = append(paths, filepath.Join(root, o))
	}
	return harness.LoadCollectorConfig(paths...)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

package freshness

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// The benchmark's workload: 8,000 conversations starting over four hours
// (about 16,000 turns and 87,000 rows; a busy resource), the same seed
// for every profile.
const (
	benchSeed          = 2026
	benchConversations = 8000
	benchSpan          = 4 * time.Hour
)

// BenchmarkFreshness runs each profile over the same workload and reports
// its freshness and its pairing, as Freshness/appinsights/<profile>, which
// cmd/benchreport renders as BENCHMARKS.md's freshness table; then the
// transcripts path with its shipped timings, as
// Freshness/transcripts/shipped: from the moment the latest row of a turn
// could be read (its createdon, or a late row's commit) to its record at
// the exporter. Dataverse writes a transcript about 30 minutes after the
// conversation goes quiet: that comes before this. Simulated time: run it
// with -benchtime 1x (one simulation per profile, a few seconds of real
// time each).
func BenchmarkFreshness(b *testing.B) {
	w, from, to := Workload(benchSeed, benchConversations, benchSpan)
	for _, p := range []Profile{Shipped, LowLatency, Shorter, Shortest} {
		b.Run("appinsights/"+p.Name, func(b *testing.B) {
			var res Result
			for range b.N {
				var err error
				if res, err = Run(b, Spec{Profile: p, Work: w, SteadyFrom: from, SteadyTo: to}); err != nil {
					b.Fatal(err)
				}
			}
			reportFreshness(b, res, len(w.Rows))
			b.ReportMetric(res.Timings.IngestionDelay.Seconds(), "delay-s")
			f := res.Fidelity
			followed, last := byPosition(w, res, from, to)
			b.Logf("%s: turns followed by another in their conversation: p50 %v, p99 %v (%d); last turns: p50 %v, p99 %v (%d)",
				p.Name, pct(followed, 50), pct(followed, 99), len(followed), pct(last, 50), pct(last, 99), len(last))
			b.Logf("%s: split turns %d (last of their conversation %d, followed by another %d); rows of own records by event %s; verifier: %s",
				p.Name, f.Split, f.SplitLast, f.SplitFollowed, counts(f.PieceRows), firstLine(res.Verifier.String()))
		})
	}
	b.Run("transcripts/shipped", func(b *testing.B) {
		w, from, to := TranscriptsWorkload(transcriptsBenchSeed, transcriptsBenchConversations, benchSpan)
		var res Result
		for range b.N {
			var err error
			if res, err = RunTranscripts(b, TranscriptsSpec{Profile: TranscriptsShipped, Work: w, SteadyFrom: from, SteadyTo: to}); err != nil {
				b.Fatal(err)
			}
		}
		reportFreshness(b, res, len(w.Rows))
		b.Logf("transcripts: workload %v; fidelity %+v", w.Summary(), res.Fidelity)
	})
}

// The transcripts benchmark's workload: 2,000 conversations starting over
// four hours (about 2,500 rows and 6,400 turns): an environment with
// steady traffic.
const (
	transcriptsBenchSeed          = 2026
	transcriptsBenchConversations = 2000
)

// reportFreshness reports what the freshness table shows of a path.
func reportFreshness(b *testing.B, res Result, rows int) {
	seconds := func(d time.Duration) float64 { return d.Seconds() }
	f, tm := res.Fidelity, res.Timings
	b.ReportMetric(seconds(res.Percentile(50)), "p50-s")
	b.ReportMetric(seconds(res.Percentile(90)), "p90-s")
	b.ReportMetric(seconds(res.Percentile(99)), "p99-s")
	b.ReportMetric(seconds(res.Percentile(100)), "max-s")
	b.ReportMetric(float64(len(res.Freshness)), "records")
	b.ReportMetric(float64(f.Turns), "turns")
	b.ReportMetric(float64(f.Exact), "exact-turns")
	b.ReportMetric(float64(f.Split), "split-turns")
	b.ReportMetric(float64(f.Merged), "merged-turns")
	b.ReportMetric(float64(f.Lost), "lost-turns")
	b.ReportMetric(float64(f.Pieces), "own-records")
	b.ReportMetric(res.QueriesPerHour(), "queries/h")
	b.ReportMetric(float64(res.RowsRead)/float64(rows), "reads/row")
	b.ReportMetric(seconds(tm.PollInterval), "poll-s")
	b.ReportMetric(seconds(tm.Overlap), "overlap-s")
	b.ReportMetric(seconds(tm.ReorderWindow), "reorder-s")
	b.ReportMetric(seconds(tm.ReplyTimeout), "reply-timeout-s")
}

// BenchmarkLateIngestion injects the late-ingestion fault into the same
// workload: 3% of the rows become queryable 1 s to 8 minutes after their
// ingestion_time(). Every row within ingestion_delay + overlap (4 minutes
// in both profiles) must be fetched; lost-within-coverage must be 0.
func BenchmarkLateIngestion(b *testing.B) {
	const coverage = 4 * time.Minute
	w, _, _ := Workload(benchSeed, benchConversations, benchSpan)
	for _, p := range []Profile{Shipped, LowLatency} {
		b.Run(p.Name, func(b *testing.B) {
			var res Result
			for range b.N {
				var err error
				if res, err = Run(b, Spec{Profile: p, Work: w, Visible: LateVisibility(0.03, 2*coverage)}); err != nil {
					b.Fatal(err)
				}
			}
			if got := res.Timings.IngestionDelay + res.Timings.Overlap; got != coverage {
				b.Fatalf("ingestion_delay + overlap = %v, not the %v this benchmark reports against", got, coverage)
			}
			within, lostWithin, minLost := 0, 0, time.Duration(0)
			for _, lag := range res.LateRows {
				if lag <= coverage {
					within++
				}
			}
			for _, lag := range res.LateRowsLost {
				if lag <= coverage {
					lostWithin++
				}
				if minLost == 0 || lag < minLost {
					minLost = lag
				}
			}
			f := res.Fidelity
			b.ReportMetric(float64(len(res.LateRows)), "late-rows")
			b.ReportMetric(float64(within), "late-rows-within-coverage")
			b.ReportMetric(float64(lostWithin), "lost-within-coverage")
			b.ReportMetric(float64(len(res.LateRowsLost)-lostWithin), "lost-beyond-coverage")
			b.ReportMetric(minLost.Seconds(), "shortest-lost-lag-s")
			b.ReportMetric(float64(f.Split), "split-turns")
			b.ReportMetric(float64(f.Merged), "merged-turns")
			b.ReportMetric(float64(f.Lost), "lost-turns")
			b.ReportMetric(float64(f.Turns), "turns")
			if lostWithin > 0 {
				b.Errorf("%d rows queryable within %v of their ingestion time were never fetched", lostWithin, coverage)
			}
		})
	}
}

// byPosition splits the steady records' freshness by the position of
// their turn: followed by another turn of the conversation (reorder_window
// decides when it goes out) or its last (reply_timeout does).
func byPosition(w *workload.Workload, res Result, from, to time.Time) (followed, last []time.Duration) {
	lastTurn := map[string]bool{}
	for i, t := range w.Turns {
		isLast := i+1 == len(w.Turns) || w.Turns[i+1].ConversationID != t.ConversationID
		for _, id := range t.ItemIDs {
			lastTurn[id] = isLast
		}
	}
	queryable := map[string]time.Time{}
	for _, r := range w.Rows {
		queryable[r.ItemID] = r.IngestionTime
	}
	for _, rec := range res.Records {
		latest := time.Time{}
		for _, id := range rec.ItemIDs {
			latest = maxTime(latest, queryable[id])
		}
		if latest.Before(from) || !latest.Before(to) {
			continue
		}
		if lastTurn[rec.ItemIDs[0]] {
			last = append(last, rec.Freshness)
		} else {
			followed = append(followed, rec.Freshness)
		}
	}
	slices.Sort(followed)
	slices.Sort(last)
	return followed, last
}

func pct(sorted []time.Duration, p float64) time.Duration {
	return Result{Freshness: sorted}.Percentile(p).Round(time.Second)
}

func counts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+" "+strconv.Itoa(m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

package freshness

import (
	"hash/fnv"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// LowLatencyOverlay is the overlay of the low-latency profile, relative to
// the repository root.
const LowLatencyOverlay = "collector-config.low-latency.yaml"

// Profiles compared in BENCHMARKS.md: the shipped timings, the
// low-latency overlay, and the overlay with shorter pairing windows, which
// show what the overlay's windows buy.
var (
	Shipped    = Profile{Name: "shipped"}
	LowLatency = Profile{Name: "low-latency", Overlays: []string{LowLatencyOverlay}}
	Shorter    = Profile{Name: "low-latency+REORDER_WINDOW=2m+REPLY_TIMEOUT=3m", Overlays: []string{LowLatencyOverlay},
		Env: map[string]string{"REORDER_WINDOW": "2m", "REPLY_TIMEOUT": "3m"}}
	Shortest = Profile{Name: "low-latency+REORDER_WINDOW=1m+REPLY_TIMEOUT=2m", Overlays: []string{LowLatencyOverlay},
		Env: map[string]string{"REORDER_WINDOW": "1m", "REPLY_TIMEOUT": "2m"}}
)

// Steady-state workload: conversations start at random over Span, and only
// records whose latest row became queryable from warmUp after the start to
// coolDown before the end count for freshness, so that every profile's
// turns go out while traffic goes on (at the very end, last turns wait for
// reply_timeout alone).
const (
	warmUp   = 20 * time.Minute
	coolDown = 40 * time.Minute
)

// Workload generates the default mix (internal/testing/workload:
// greetings, unanswered and failed turns, replies without reply ids, one
// conversation in fifty ingested up to two hours late) and the window of
// steady traffic in it.
func Workload(seed uint64, conversations int, span time.Duration) (w *workload.Workload, from, to time.Time) {
	cfg := workload.DefaultConfig(seed, conversations)
	cfg.Span = span
	return workload.Generate(cfg), workload.DefaultStart.Add(warmUp), workload.DefaultStart.Add(span - coolDown)
}

// LateVisibility is the late-ingestion fault: share of the rows (chosen by
// a hash of their item id, so the same rows on every run) become queryable
// after their ingestion_time(), by 1 s to maxLag, spread evenly.
func LateVisibility(share float64, maxLag time.Duration) func(workload.Row) time.Time {
	return func(r workload.Row) time.Time {
		h := fnv.New64a()
		h.Write([]byte(r.ItemID))
		x := h.Sum64()
		if float64(x%10000) >= share*10000 {
			return r.IngestionTime
		}
		steps := max(uint64(maxLag/time.Second), 1)
		return r.IngestionTime.Add(time.Duration((x/10000)%steps+1) * time.Second)
	}
}

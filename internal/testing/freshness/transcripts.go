package freshness

import (
	"slices"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// The transcripts path: Dataverse writes a conversation's transcript about
// half an hour after it goes quiet (workload.GenerateTranscripts stamps
// createdon 30 to 35 minutes after a session's last activity); from then
// on the copilotstudio_transcripts receiver polls, activitypair pairs, as
// collector-config.transcripts.yaml sets them up. RunTranscripts measures
// that second part on the simulated clock, as Run does for Application
// Insights, with the Dataverse stand-in in place of the query API: a
// turn's freshness is from the moment the latest of its rows could be read
// (its createdon, or the later commit of a late row) to the moment the
// pipeline handed its record on.

// TranscriptsOverlay turns the transcripts source on, relative to the
// repository root.
const TranscriptsOverlay = "collector-config.transcripts.yaml"

// TranscriptsShipped is the transcripts path with its shipped timings.
var TranscriptsShipped = Profile{Name: "shipped", Overlays: []string{TranscriptsOverlay}}

// TranscriptsSpec is one simulation of the transcripts path.
type TranscriptsSpec struct {
	Profile Profile // its overlays include TranscriptsOverlay
	Work    *workload.TranscriptWorkload
	// Steady selects the records whose freshness counts: those whose
	// turn's latest row became readable in [From, To). Zero: all.
	SteadyFrom, SteadyTo time.Time
}

// TranscriptsWorkload generates the default transcript mix (plans with
// completed, failed, blocked and unfinished steps, split and resumed
// conversations, activities out of order and repeated, 5% of rows
// committed up to 5 minutes after their createdon) and its window of
// steady traffic, by createdon.
func TranscriptsWorkload(seed uint64, conversations int, span time.Duration) (w *workload.TranscriptWorkload, from, to time.Time) {
	cfg := workload.DefaultTranscriptConfig(seed, conversations)
	cfg.Span = span
	w = workload.GenerateTranscripts(cfg)
	// Rows are created 30 to 35 minutes after their session ends.
	return w, workload.DefaultStart.Add(30*time.Minute + warmUp), workload.DefaultStart.Add(span - coolDown)
}

// RunTranscripts simulates spec through the real transcripts receiver, the
// shipped processors and the Dataverse and Entra ID stand-ins, on one
// simulated clock.
func RunTranscripts(tb testing.TB, spec TranscriptsSpec) (Result, error) {
	tb.Helper()
	dir := tb.TempDir()
	az, err := harness.StartAzure(dir) // Entra ID; its query API stand-in stays idle
	if err != nil {
		return Result{}, err
	}
	defer az.Close()
	w := spec.Work
	dv := az.StartDataverse("env-freshness", w.Bots...)
	defer dv.Close()
	dv.AddTranscripts(w.Rows...)
	conf, err := loadProfile(tb, spec.Profile, harness.Env(az.Env(), map[string]string{"DATAVERSE_URL": dv.URL}))
	if err != nil {
		return Result{}, err
	}

	readable := make(map[string]time.Time, len(w.Rows)) // row id -> when the stand-in serves it
	first, last := time.Time{}, time.Time{}
	for _, r := range w.Rows {
		at := r.CreatedOn
		if r.VisibleAt.After(at) {
			at = r.VisibleAt
		}
		readable[r.ID] = at
		if first.IsZero() || at.Before(first) {
			first = at
		}
		last = maxTime(last, at)
	}
	// A turn is readable once its latest row is; its items say which turn
	// a record holds.
	turnReadable := make([]time.Time, len(w.Turns))
	turnOf := map[string]int{}
	items := 0
	for i, t := range w.Turns {
		for _, id := range t.RowIDs {
			turnReadable[i] = maxTime(turnReadable[i], readable[id])
		}
		for _, id := range t.ItemIDs {
			turnOf[id] = i
		}
		items += len(t.ItemIDs)
	}
	conversationLevel := map[string]bool{}
	for _, id := range w.ConversationItemIDs {
		conversationLevel[id] = true
	}

	start := first.Add(-5 * time.Minute).Truncate(time.Minute)
	dv.SetNow(start)
	clk := newSimClock(dv)
	rec := &recorder{clk: clk}
	p, err := buildTranscriptsPipeline(conf, clk, rec)
	if err != nil {
		return Result{}, err
	}
	res := Result{Timings: p.timings, Start: start}
	if err := p.startOnDisk(tb, dir, clk); err != nil {
		return Result{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = p.shutdown()
		}
	}()
	limit := last.Add(4 * time.Hour)
	now := start
	for rec.itemCount() < items {
		at, fired, err := clk.fireNext(limit, guard, func(time.Time) {})
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
	for _, q := range dv.TranscriptRequests() {
		res.Queries++
		res.RowsRead += q.Rows
	}

	// Records hold the turn's items; conversation-level traces
	// (ConversationInfo, SessionInfo) belong to no turn and are left out
	// of the comparison.
	arrivals := rec.all()
	for i := range arrivals {
		arrivals[i].itemIDs = slices.DeleteFunc(slices.Clone(arrivals[i].itemIDs), func(id string) bool { return conversationLevel[id] })
	}
	truth := &workload.Workload{Conversations: w.Conversations}
	for _, t := range w.Turns {
		truth.Turns = append(truth.Turns, t.Turn)
	}
	res.Fidelity = classify(truth, arrivals)
	for _, a := range arrivals {
		latest := time.Time{}
		for _, id := range a.itemIDs {
			if t, ok := turnOf[id]; ok {
				latest = maxTime(latest, turnReadable[t])
			}
		}
		if latest.IsZero() {
			continue // only conversation-level rows
		}
		res.Records = append(res.Records, Record{At: a.at, ItemIDs: a.itemIDs, Freshness: a.at.Sub(latest)})
		if (spec.SteadyFrom.IsZero() || !latest.Before(spec.SteadyFrom)) && (spec.SteadyTo.IsZero() || latest.Before(spec.SteadyTo)) {
			res.Freshness = append(res.Freshness, a.at.Sub(latest))
		}
	}
	slices.Sort(res.Freshness)
	return res, nil
}

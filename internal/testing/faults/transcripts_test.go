package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// The transcripts scenarios: collector-config.yaml with
// collector-config.transcripts.yaml, the Dataverse stand-in serving a
// generated transcript backlog (plans with completed, failed, blocked and
// never finished steps, knowledge searches, split and resumed
// conversations, activities out of order and repeated), created four to two
// hours ago, and a watermark conversation created ten minutes ago whose
// createdon completes the backlog's last turns (as ServeBacklog's does for
// Application Insights). Every turn must arrive once, paired as the ground
// truth says, with its tool calls and their final states in the
// x-copilotstudio-tool-calls header.

func transcriptScenarios() []scenario {
	return []scenario{
		{
			name:  "transcripts: 429 storm with Retry-After",
			what:  "Dataverse answers runs of 429 with Retry-After (1-2 s) and its service-protection error, before the first poll and twice while the backlog is read",
			path:  transcriptsPath,
			setup: func(r *run) { r.throttleTranscripts(2*r.sz.burst+1, time.Second) },
			during: func(r *run) {
				r.afterTranscriptPages(2)
				r.throttleTranscripts(2*r.sz.burst+1, time.Second)
				r.afterTranscriptPages(4)
				r.throttleTranscripts(r.sz.burst, 2*time.Second)
			},
			check: func(r *run) { r.transcripts.injectedServed(r) },
		},
		{
			name: "transcripts: Dataverse outage, then back",
			what: "every Dataverse request answered 503 for a while (the full form: longer than a poll's five tries, so polls end and later ones start again from the cursor), in the middle of the backlog; then Dataverse is back",
			path: transcriptsPath,
			during: func(r *run) {
				dv := r.transcripts.dataverse
				r.afterTranscriptPages(2)
				dv.SetUnavailable(true)
				if err := r.waitFor("the outage met", func() bool { return dv.OutageAnswers() >= r.sz.outage }); err != nil {
					r.t.Fatal(err)
				}
				dv.SetUnavailable(false)
				r.note("%d requests answered 503 during the outage", dv.OutageAnswers())
			},
			check: func(r *run) {
				if n := r.transcripts.dataverse.OutageAnswers(); n < r.sz.outage {
					r.t.Errorf("the outage answered %d requests, want %d: the scenario did not happen", n, r.sz.outage)
				}
			},
		},
		{
			name:  "transcripts: SIGKILL at random points, repeated",
			what:  "the collector is SIGKILLed and restarted at random points: while transcript pages are read and once a random share of the turns is on the topic",
			path:  transcriptsPath,
			crash: true,
			during: func(r *run) {
				turns := r.verifier.Report().Expected
				for i := 1; i <= r.sz.kills; i++ {
					if i%2 == 1 {
						r.afterTranscriptPages(r.transcriptPages() + 1 + r.rng.IntN(3))
					} else {
						target := turns * (i + r.rng.IntN(2)) / (r.sz.kills + 2)
						_ = r.waitFor("turns on the topic before a kill", func() bool { return r.verifier.Delivered() >= target })
					}
					r.kill()
				}
			},
		},
		{
			name: "transcripts: late rows inside and outside the overlap",
			what: "after the backlog is read, transcripts appear whose createdon lies up to 2.5 minutes behind the receiver's cursor (inside its 10-minute overlap: must arrive) and 30 minutes behind it (outside: not promised), with a new conversation created now",
			path: transcriptsPath,
			during: func(r *run) {
				r.waitDelivered()
				// The cursor is the latest createdon read: the watermark's.
				cursor := r.transcripts.latestCreated
				inside := r.lateTranscripts(cursor.Add(-20*time.Second), 2*time.Minute)
				outside := r.lateTranscripts(cursor.Add(-30*time.Minute), 2*time.Minute)
				mark := transcriptMark(r.rng.Uint64(), time.Now())
				r.verifier.Expect(r.transcripts.expect(inside))
				r.verifier.Optional(r.transcripts.expect(outside))
				r.verifier.Ignore(conversationIDs(mark)...)
				pages := r.transcriptPages()
				for _, w := range []*workload.TranscriptWorkload{inside, outside, mark} {
					r.transcripts.dataverse.AddTranscripts(w.Rows...)
					r.rows += len(w.Rows)
				}
				r.afterTranscriptPages(pages + 2) // the rows are offered to at least two polls
				r.note("%d late turns inside the overlap, %d outside", len(inside.Turns), len(outside.Turns))
			},
			check: func(r *run) {
				r.note("%d of the turns outside the overlap were delivered anyway", r.verifier.OptionalDelivered())
			},
		},
	}
}

// transcriptRun is a transcripts scenario's world: the stand-in, the
// workload, and the check of each turn's tool steps.
type transcriptRun struct {
	dataverse *fakedataverse.Server
	work      *workload.TranscriptWorkload
	// latestCreated is the latest createdon served before the scenario
	// adds rows: where the receiver's cursor ends once it read everything.
	latestCreated time.Time
	injected      map[fakedataverse.TranscriptFaultKind]int

	mu       sync.Mutex
	turns    map[string]*workload.TranscriptTurn // by turnKey
	checked  int                                 // records whose steps were compared
	wrong    map[string]bool                     // turns with a record whose steps differ
	problems []string
}

// serveTranscripts generates the backlog and its watermark, serves them
// from a Dataverse stand-in and points the collector at it.
func (r *run) serveTranscripts(seed uint64, now time.Time) {
	cfg := workload.DefaultTranscriptConfig(seed, r.sz.conversations)
	// Late commits are their own scenario's business. A resumed
	// conversation's second transcript is written up to two and a half
	// hours after its first session starts: six hours back keeps the whole
	// backlog well before the watermark.
	cfg.Start, cfg.Span, cfg.LateRate = now.Add(-6*time.Hour), time.Hour, 0
	w := workload.GenerateTranscripts(cfg)
	markAt := now.Add(-10 * time.Minute)
	// The watermark completes a conversation's last turn only once it is
	// reply_timeout + reorder_window past the turn's createdon; a turn it
	// does not complete waits for the wall-clock reply_timeout instead.
	for _, row := range w.Rows {
		if row.CreatedOn.Add(transcriptCompletion).After(markAt) {
			r.t.Fatalf("transcript %s created %v, too close to the watermark (%v) to be completed by it", row.Name, row.CreatedOn, markAt)
		}
	}
	mark := transcriptMark(seed^0xfeed, markAt)
	tr := &transcriptRun{work: w, turns: map[string]*workload.TranscriptTurn{}, wrong: map[string]bool{},
		injected: map[fakedataverse.TranscriptFaultKind]int{}, latestCreated: mark.Rows[len(mark.Rows)-1].CreatedOn}
	tr.dataverse = r.azure.StartDataverse("env-contoso", w.Bots...)
	tr.dataverse.AddTranscripts(w.Rows...)
	tr.dataverse.AddTranscripts(mark.Rows...)
	r.transcripts = tr
	r.verifier = workload.NewVerifier(tr.expect(w))
	r.verifier.Ignore(conversationIDs(mark)...)
	r.rows = len(w.Rows) + len(mark.Rows)
	r.overlays = append(r.overlays, harness.TranscriptsOverlayPath())
	r.pathEnv = map[string]string{
		"DATAVERSE_URL":             tr.dataverse.URL,
		"TRANSCRIPTS_POLL_INTERVAL": "1s",
		"TRANSCRIPTS_PAGE_SIZE":     strconv.Itoa(r.sz.transcriptPage),
	}
	r.note("%d transcript rows (%d split pieces), %d turns with %d tool steps", len(w.Rows), w.Summary()["split_pieces"], len(w.Turns), steps(w))
}

// transcriptCompletion is how far past a conversation's latest createdon the
// watermark must be for its last turn to be complete: baseEnv's
// REPLY_TIMEOUT + REORDER_WINDOW, and a minute to spare.
const transcriptCompletion = 90*time.Second + 5*time.Minute + time.Minute

func steps(w *workload.TranscriptWorkload) int {
	n := 0
	for _, t := range w.Turns {
		n += len(t.Steps)
	}
	return n
}

// transcriptMark is one conversation (a greeting and a turn), every row of
// it created at at.
func transcriptMark(seed uint64, at time.Time) *workload.TranscriptWorkload {
	cfg := workload.DefaultTranscriptConfig(seed, 1)
	cfg.GreetingRate, cfg.SplitRate, cfg.ResumeRate, cfg.LateRate = 1, 0, 0, 0
	w := workload.GenerateTranscripts(cfg)
	for i := range w.Rows {
		w.Rows[i].CreatedOn = at.UTC().Truncate(time.Second)
	}
	return w
}

// lateTranscripts makes a few conversations (no resumed sessions) whose
// rows were all created within spread before latest, keeping the second
// between the pieces of a split one, but become readable only now, when the
// stand-in is given them.
func (r *run) lateTranscripts(latest time.Time, spread time.Duration) *workload.TranscriptWorkload {
	cfg := workload.DefaultTranscriptConfig(r.rng.Uint64(), max(5, r.sz.conversations/20))
	cfg.Start, cfg.Span, cfg.ResumeRate, cfg.LateRate = time.Now().Add(-3*time.Hour), 10*time.Minute, 0, 0
	w := workload.GenerateTranscripts(cfg)
	first := map[string]time.Time{}
	for _, row := range w.Rows {
		if at, ok := first[row.Name]; !ok || row.CreatedOn.Before(at) {
			first[row.Name] = row.CreatedOn
		}
	}
	base := map[string]time.Time{}
	for name := range first {
		// a few seconds of room for the pieces after the first
		base[name] = latest.Add(-5*time.Second - time.Duration(r.rng.Int64N(int64(spread))))
	}
	for i := range w.Rows {
		row := &w.Rows[i]
		row.CreatedOn = base[row.Name].Add(row.CreatedOn.Sub(first[row.Name]))
	}
	return w
}

func conversationIDs(w *workload.TranscriptWorkload) []string {
	var ids []string
	for _, t := range w.Turns {
		if !slices.Contains(ids, t.ConversationID) {
			ids = append(ids, t.ConversationID)
		}
	}
	return ids
}

// expect registers w's turns for the step check and returns them for a
// Verifier.
func (tr *transcriptRun) expect(w *workload.TranscriptWorkload) []workload.Turn {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i := range w.Turns {
		tt := &w.Turns[i]
		tr.turns[transcriptTurnKey(tt.ConversationID, tt.RequestActivityID, tt.Replies)] = tt
	}
	return w.VerifierTurns()
}

// transcriptTurnKey finds a turn as the Verifier does: by conversation and
// user message, a greeting by its first reply.
func transcriptTurnKey(conversation, requestActivityID string, replies []string) string {
	if requestActivityID != "" {
		return conversation + "\x00activity\x00" + requestActivityID
	}
	if len(replies) > 0 {
		return conversation + "\x00greeting\x00" + replies[0]
	}
	return conversation
}

// checkSteps compares a record's tool calls (x-copilotstudio-tool-calls:
// each step's tool and final state, in the order they were triggered) with
// its turn's ground truth. Records of no known turn are the Verifier's
// business.
func (tr *transcriptRun) checkSteps(value []byte) {
	d, err := workload.DecodeAkto(value)
	if err != nil {
		return
	}
	var rec struct {
		RequestHeaders string `json:"requestHeaders"`
	}
	var headers map[string]string
	if json.Unmarshal(value, &rec) != nil || json.Unmarshal([]byte(rec.RequestHeaders), &headers) != nil {
		return
	}
	key := transcriptTurnKey(d.ConversationID, d.RequestActivityID, d.Replies)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tt := tr.turns[key]
	if tt == nil {
		return
	}
	tr.checked++
	want := make([]string, len(tt.Steps))
	for i, st := range tt.Steps {
		want[i] = st.ToolID + "=" + st.State
	}
	if got := headers[schema.AktoHeaderToolCalls]; got != strings.Join(want, ", ") && !tr.wrong[key] {
		tr.wrong[key] = true
		if len(tr.problems) < 5 {
			tr.problems = append(tr.problems, fmt.Sprintf("turn %d of %q: tool calls %q, want %q", tt.Index, tt.ConversationID, got, strings.Join(want, ", ")))
		}
	}
}

func (tr *transcriptRun) wrongSteps() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.wrong)
}

func (tr *transcriptRun) stepsErr() error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.wrong) == 0 {
		return nil
	}
	return errors.New(fmt.Sprintf("%d turns with wrong tool calls:\n  ", len(tr.wrong)) + strings.Join(tr.problems, "\n  "))
}

func (tr *transcriptRun) stepsSummary() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return fmt.Sprintf("tool calls compared in %d records, %d turns wrong", tr.checked, len(tr.wrong))
}

// transcriptPages is how many transcript pages with rows the stand-in has
// served.
func (r *run) transcriptPages() int {
	n := 0
	for _, q := range r.transcripts.dataverse.TranscriptRequests() {
		if q.Status == http.StatusOK && q.Rows > 0 {
			n++
		}
	}
	return n
}

// afterTranscriptPages waits until the stand-in has served n pages with
// rows, or every expected turn is delivered (no more pages to wait for).
func (r *run) afterTranscriptPages(n int) {
	r.t.Helper()
	want := r.verifier.Report().Expected
	if err := r.waitFor(strconv.Itoa(n)+" transcript pages served", func() bool {
		return r.transcriptPages() >= n || r.verifier.Delivered() >= want
	}); err != nil {
		r.t.Fatal(err)
	}
}

// throttleTranscripts makes the next n transcripts requests answer 429.
func (r *run) throttleTranscripts(n int, retryAfter time.Duration) {
	f := fakedataverse.TranscriptFault{Kind: fakedataverse.FaultThrottle, RetryAfter: retryAfter}
	r.transcripts.dataverse.InjectTranscriptFault(n, f)
	r.transcripts.injected[f.Kind] += n
}

// injectedServed checks the stand-in answered every injected fault.
func (tr *transcriptRun) injectedServed(r *run) {
	served := map[fakedataverse.TranscriptFaultKind]int{}
	for _, q := range tr.dataverse.TranscriptRequests() {
		served[q.Fault]++
	}
	for kind, n := range tr.injected {
		if served[kind] < n {
			r.t.Errorf("transcript fault %d served %d times, %d injected: the scenario did not happen", kind, served[kind], n)
		}
		r.note("%d transcript requests answered %d", served[kind], map[fakedataverse.TranscriptFaultKind]int{fakedataverse.FaultThrottle: 429}[kind])
	}
}

// requestLog lists the stand-in's transcript answers, for a failure message.
func (tr *transcriptRun) requestLog() string {
	var b strings.Builder
	for _, q := range tr.dataverse.TranscriptRequests() {
		fmt.Fprintf(&b, "  %d fault=%d rows=%d next=%t %s\n", q.Status, q.Fault, q.Rows, q.SkipToken, q.Filter)
	}
	fmt.Fprintf(&b, "  (%d requests answered 503 by an outage)\n", tr.dataverse.OutageAnswers())
	return b.String()
}

package harness

import (
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// BacklogConfig is workload.DefaultConfig for a backlog: conversations
// starting three to two hours before now, late ones ingested at most an hour
// late, so every row is ingested well before a watermark added at now (see
// ServeBacklog).
func BacklogConfig(seed uint64, conversations int, now time.Time) workload.Config {
	cfg := workload.DefaultConfig(seed, conversations)
	cfg.Start, cfg.Span, cfg.MaxLateDelay = now.Add(-3*time.Hour), time.Hour, time.Hour
	return cfg
}

// ServeBacklog adds work's rows to the stand-in, then its watermark: one
// more conversation, generated from markSeed, ingested 20 s before now. It
// returns a verifier that expects work's turns and ignores the watermark's,
// and how many rows it added.
//
// Why the watermark: the activitypair processor completes a conversation's
// last turn in ingestion time, once it has read rows ingested reply_timeout
// + reorder_window after that turn's latest row. With nothing ingested after
// the backlog, its last turns would wait out the wall-clock reply timeout;
// the watermark, ingested long after every backlog row, completes them as
// soon as it is read. Its own last turn has nothing after it and waits for
// the timeout, so its turns are not expected.
func (a *Azure) ServeBacklog(work *workload.Workload, markSeed uint64, now time.Time) (*workload.Verifier, int) {
	verifier := workload.NewVerifier(work.Turns)
	a.AppInsights.AddRows(work.Rows...)
	mark := workload.Generate(workload.Config{Seed: markSeed, Conversations: 1, GreetingRate: 1})
	verifier.Ignore(mark.Turns[0].ConversationID)
	a.AppInsights.AddRows(fakeappinsights.Rebase(mark.Rows, now.Add(-20*time.Second))...)
	return verifier, len(work.Rows) + len(mark.Rows)
}

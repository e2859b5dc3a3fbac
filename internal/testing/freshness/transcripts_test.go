package freshness

import (
	"testing"
	"time"
)

// TestTranscriptsPath runs generated transcripts through the transcripts
// receiver and the shipped processors on the simulated clock: every turn
// arrives, none mixed with another's rows, and no record comes later than
// the shipped timings allow while traffic goes on: a conversation's last
// turn is complete once rows created reply_timeout + reorder_window after
// its latest row have been read, which the first poll after that does.
func TestTranscriptsPath(t *testing.T) {
	w, _, _ := TranscriptsWorkload(11, 150, time.Hour)
	res, err := RunTranscripts(t, TranscriptsSpec{Profile: TranscriptsShipped, Work: w})
	if err != nil {
		t.Fatal(err)
	}
	f := res.Fidelity
	if f.Lost != 0 || f.Merged != 0 || f.Exact+f.Split != f.Turns {
		t.Fatalf("fidelity %+v: every turn must arrive, none merged with another", f)
	}
	tm := res.Timings
	if tm.PollInterval != 5*time.Minute || tm.ReplyTimeout != 15*time.Minute {
		t.Fatalf("timings %+v are not the shipped transcripts timings this test's bound is about", tm)
	}
	bound := tm.ReplyTimeout + tm.ReorderWindow + tm.PollInterval
	worst := res.Percentile(100)
	if worst > bound || res.Percentile(0.001) < 0 {
		t.Errorf("freshness from %v to %v, want within [0, %v]", res.Percentile(0.001), worst, bound)
	}
	t.Logf("%d turns (%+v), %d records: p50 %v, p99 %v, max %v (bound %v); %d requests in %v simulated",
		f.Turns, f, len(res.Records), res.Percentile(50), res.Percentile(99), worst, bound, res.Queries, res.Simulated)
}

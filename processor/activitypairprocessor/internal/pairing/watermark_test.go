package pairing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const day = 24 * time.Hour

// transcript gives rows the ingestion time a transcript gives them: its
// row's createdon, the same for every activity in it.
func transcript(createdOn time.Duration, rows ...testRow) []testRow {
	for i := range rows {
		rows[i] = rows[i].ingestedAt(createdOn)
	}
	return rows
}

// A backlog of transcripts is completed by the ingestion watermark alone,
// whatever the distance between a row's event time and its ingestion time:
// a conversation written long after it happened (here 40 days, past what
// 32 bits of milliseconds hold) moves the watermark to its createdon and
// completes every turn ingested reply_timeout + reorder_window before it,
// in the batch that read it, not at the wall-clock reply_timeout.
func TestWatermarkCompletesTranscriptsWrittenLongAfterTheirEvents(t *testing.T) {
	h := newRun(t, defaultConfig())
	var backlog []testRow
	// A greeting, a conversation trace, a planned turn with steps.
	backlog = append(backlog, transcript(20*time.Minute,
		conversationTrace("g", "g0", 0),
		reply("g", "g1", 1*s, "", "Hello, how can I help?"),
		msg("g", "g2", 5*s, "ga", "Is ticket 4711 closed?"),
		step("g", "g3", 6*s, "ga"),
		stepError("g", "g4", 7*s, "ga"),
		reply("g", "g5", 8*s, "ga", "4711 is closed."),
	)...)
	// A resumed conversation: a second transcript of the same conversation,
	// written two hours after the first.
	backlog = append(backlog, transcript(30*time.Minute,
		conversationTrace("r", "r0", 60*s),
		msg("r", "r1", 61*s, "ra", "First session"),
		reply("r", "r2", 62*s, "ra", "First answer"),
	)...)
	backlog = append(backlog, transcript(2*time.Hour+30*time.Minute,
		conversationTrace("r", "r3", 2*time.Hour),
		msg("r", "r4", 2*time.Hour+1*s, "rb", "Second session"),
		step("r", "r5", 2*time.Hour+2*s, "rb"),
		reply("r", "r6", 2*time.Hour+3*s, "rb", "Second answer"),
	)...)
	h.consume(backlog...)
	require.Len(t, h.out, 2, "the greeting conversation is complete; the resumed one waits for later rows")

	// The watermark conversation: created five hours on, its events 40
	// days before that.
	h.consume(transcript(5*time.Hour,
		msg("w", "w1", 5*time.Hour-40*day, "wa", "Later"),
		reply("w", "w2", 5*time.Hour-40*day+s, "wa", "Later answer"),
	)...)

	assert.Equal(t, []summary{
		{"g", "", []string{"Hello, how can I help?"}, []string{"g1"}, false},
		{"g", "Is ticket 4711 closed?", []string{"4711 is closed."}, []string{"g2", "g3", "g4", "g5"}, true},
		{"r", "First session", []string{"First answer"}, []string{"r1", "r2"}, false},
		{"r", "Second session", []string{"Second answer"}, []string{"r4", "r5", "r6"}, false},
	}, byConversation(h.summaries()))
	for _, e := range h.out {
		assert.Equal(t, TriggerComplete, e.Trigger, "%s/%d completed by the watermark", e.Conv, e.Index)
	}
	assert.Equal(t, base.Add(5*time.Hour).UnixNano(), h.core.Watermark(), "the watermark is the latest createdon read")
}

// The ingestion time is kept exactly, whatever the lag behind (or ahead
// of) the event time.
func TestObservedIsExactForAnyLag(t *testing.T) {
	at := base.UnixNano()
	for _, lag := range []time.Duration{0, 30 * s, -3 * s, 24 * day, 25 * day, -25 * day, 291 * day, 100 * 365 * day, -100 * 365 * day} {
		r := Row{At: at}
		r.SetObserved(at + int64(lag))
		assert.Equal(t, at+int64(lag), r.Observed(), "lag %v", lag)
		assert.Equal(t, lag.Milliseconds(), r.LagMillis(), "lag %v", lag)
	}
}

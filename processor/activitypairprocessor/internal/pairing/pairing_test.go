package pairing

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// conversation c1: a topic answers with two replies, then a second message.
var (
	c1m1  = msg("c1", "m1", 0, "a1", "How do I reset my password?")
	c1t1  = topicStart("c1", "t1", 1*s, "cr44e_hr.topic.ResetPassword")
	c1x1  = action("c1", "x1", 2*s, "cr44e_hr.topic.ResetPassword", "SendActivity")
	c1r1a = reply("c1", "r1a", 3*s, "a1", "Go to aka.ms/sspr.")
	c1r1b = reply("c1", "r1b", 4*s, "a1", "Anything else?")
	c1m2  = msg("c1", "m2", 30*s, "a2", "Thanks")
	c1r2  = reply("c1", "r2", 32*s, "a2", "You're welcome.")

	c1Turn1 = summary{"c1", "How do I reset my password?", []string{"Go to aka.ms/sspr.", "Anything else?"}, []string{"m1", "t1", "x1", "r1a", "r1b"}, false}
	c1Turn2 = summary{"c1", "Thanks", []string{"You're welcome."}, []string{"m2", "r2"}, false}
	c1All   = []testRow{c1m1, c1t1, c1x1, c1r1a, c1r1b, c1m2, c1r2}
)

func TestPairing(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]testRow
		// emittedBefore is how many turns are out before shutdown flushes the rest.
		emittedBefore int
		want          []summary
	}{
		{
			name:          "multi-reply turn, emitted when the next message arrives",
			batches:       [][]testRow{c1All},
			emittedBefore: 1,
			want:          []summary{c1Turn1, c1Turn2},
		},
		{
			name: "greeting answers a startConversation event",
			batches: [][]testRow{{
				event("g", "e0", 0, "event", "ev1"),
				topicStart("g", "g1", 1*s, "cr44e_hr.topic.Greeting"),
				reply("g", "g2", 2*s, "ev1", "Hello, I'm HR Agent."),
				reply("g", "g3", 3*s, "", "How can I help?"),
				msg("g", "g4", 20*s, "a1", "Holidays?"),
				reply("g", "g5", 21*s, "a1", "25 days."),
			}},
			emittedBefore: 1,
			want: []summary{
				{"g", "", []string{"Hello, I'm HR Agent.", "How can I help?"}, []string{"e0", "g1", "g2", "g3"}, false},
				{"g", "Holidays?", []string{"25 days."}, []string{"g4", "g5"}, false},
			},
		},
		{
			name: "unanswered message",
			batches: [][]testRow{{
				msg("u", "u1", 0, "a1", "Hello?"),
				msg("u", "u2", 40*s, "a2", "Anyone?"),
				reply("u", "u3", 41*s, "a2", "Yes."),
			}},
			emittedBefore: 1,
			want: []summary{
				{"u", "Hello?", nil, []string{"u1"}, false},
				{"u", "Anyone?", []string{"Yes."}, []string{"u2", "u3"}, false},
			},
		},
		{
			name: "replies without reply-to join the latest message before them",
			batches: [][]testRow{{
				msg("n", "n1", 0, "a1", "One"),
				reply("n", "n2", 1*s, "", "First answer"),
				msg("n", "n3", 10*s, "a2", "Two"),
				reply("n", "n4", 11*s, "", "Second answer"),
				reply("n", "n5", 12*s, "", "Second answer, more"),
			}},
			emittedBefore: 1,
			want: []summary{
				{"n", "One", []string{"First answer"}, []string{"n1", "n2"}, false},
				{"n", "Two", []string{"Second answer", "Second answer, more"}, []string{"n3", "n4", "n5"}, false},
			},
		},
		{
			name: "a reply with reply-to joins its message even after the next one",
			batches: [][]testRow{{
				msg("r", "r1", 0, "a1", "Slow question"),
				msg("r", "r2", 5*s, "a2", "Quick question"),
				reply("r", "r3", 6*s, "a2", "Quick answer"),
				reply("r", "r4", 9*s, "a1", "Slow answer"),
			}},
			emittedBefore: 1,
			want: []summary{
				{"r", "Slow question", []string{"Slow answer"}, []string{"r1", "r4"}, false},
				{"r", "Quick question", []string{"Quick answer"}, []string{"r2", "r3"}, false},
			},
		},
		{
			name: "interleaved conversations",
			batches: [][]testRow{{
				msg("x", "x1", 0, "a1", "x one"),
				msg("y", "y1", 1*s, "b1", "y one"),
				reply("y", "y2", 2*s, "b1", "y answer"),
				reply("x", "x2", 3*s, "a1", "x answer"),
				msg("y", "y3", 4*s, "b2", "y two"),
				msg("x", "x3", 5*s, "a2", "x two"),
			}},
			emittedBefore: 2,
			want: []summary{
				{"y", "y one", []string{"y answer"}, []string{"y1", "y2"}, false},
				{"x", "x one", []string{"x answer"}, []string{"x1", "x2"}, false},
				{"x", "x two", nil, []string{"x3"}, false},
				{"y", "y two", nil, []string{"y3"}, false},
			},
		},
		{
			name:          "shuffled arrival in one batch",
			batches:       [][]testRow{{c1r2, c1r1b, c1m2, c1x1, c1r1a, c1m1, c1t1}},
			emittedBefore: 1,
			want:          []summary{c1Turn1, c1Turn2},
		},
		{
			name:          "split across batches, reply after the next message in the same batch",
			batches:       [][]testRow{{c1m1, c1t1}, {c1x1, c1r1a}, {c1m2, c1r1b, c1r2}},
			emittedBefore: 1,
			want:          []summary{c1Turn1, c1Turn2},
		},
		{
			name:          "duplicates within a batch, across batches and after emission are dropped",
			batches:       [][]testRow{{c1m1, c1m1, c1t1, c1x1}, {c1t1, c1r1a, c1r1b}, {c1m2, c1r2}, {c1r1a, c1m1, c1r2}},
			emittedBefore: 1,
			want:          []summary{c1Turn1, c1Turn2},
		},
		{
			name: "an error fails the turn",
			batches: [][]testRow{{
				msg("f", "f1", 0, "a1", "Book a room"),
				action("f", "f2", 1*s, "cr44e_hr.topic.Book", "InvokeFlowAction"),
				failure("f", "f3", 2*s, "FlowActionException"),
				reply("f", "f4", 3*s, "a1", "Something went wrong."),
			}},
			want: []summary{{"f", "Book a room", []string{"Something went wrong."}, []string{"f1", "f2", "f3", "f4"}, true}},
		},
		{
			name: "a late reply to an emitted turn becomes its own turn",
			batches: [][]testRow{
				{msg("l", "l1", 0, "a1", "Q1"), msg("l", "l2", 10*s, "a2", "Q2")},
				{reply("l", "l3", 12*s, "a1", "A1, late")},
			},
			emittedBefore: 2,
			want: []summary{
				{"l", "Q1", nil, []string{"l1"}, false},
				{"l", "", []string{"A1, late"}, []string{"l3"}, false},
				{"l", "Q2", nil, []string{"l2"}, false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newRun(t, testConfig())
			for _, b := range tt.batches {
				h.consume(b...)
			}
			require.Len(t, h.out, tt.emittedBefore, "turns emitted before shutdown")
			h.shutdown()
			assert.Equal(t, byConversation(tt.want), byConversation(h.summaries()))
		})
	}
}

func TestReorderWindowWaitsForLateIngestedReplies(t *testing.T) {
	cfg := testConfig()
	cfg.ReorderWindow = 5 * time.Minute
	h := newRun(t, cfg)
	// The next message is ingested before the last reply of the first turn.
	h.consume(c1m1.ingestedAt(20*s), c1t1.ingestedAt(21*s), c1x1.ingestedAt(22*s), c1r1a.ingestedAt(23*s))
	h.consume(c1m2.ingestedAt(50*s), c1r2.ingestedAt(55*s))
	assert.Empty(t, h.out, "the first turn waits: rows ingested up to 5m after the next message may still come")
	h.consume(c1r1b.ingestedAt(3 * time.Minute))
	assert.Empty(t, h.out)
	h.consume(msg("other", "o1", 7*time.Minute, "z1", "hi").ingestedAt(7 * time.Minute))
	assert.Empty(t, h.out, "the turn's own last row was ingested at 3m: it waits until 3m + 5m")
	// A row of another conversation moves ingestion time past 3m + 5m.
	h.consume(msg("other2", "o2", 8*time.Minute, "z2", "hi").ingestedAt(8 * time.Minute))
	assert.Equal(t, []summary{c1Turn1}, h.summaries())
	h.shutdown()
	assert.Equal(t, []summary{c1Turn1, c1Turn2, {"other", "hi", nil, []string{"o1"}, false}, {"other2", "hi", nil, []string{"o2"}, false}},
		byConversation(h.summaries()))
}

func TestLastTurnIsCompleteAfterReplyTimeoutInIngestionTime(t *testing.T) {
	cfg := testConfig()
	cfg.ReplyTimeout = 10 * time.Minute
	h := newRun(t, cfg)
	h.consume(c1m1, c1t1, c1x1, c1r1a, c1r1b)
	h.consume(msg("other", "o1", 10*time.Minute, "z1", "hi"))
	assert.Empty(t, h.out, "ingestion time 10m30s has not reached the last row's 34s + 10m")
	h.consume(msg("third", "o2", 10*time.Minute+10*s, "z2", "hi again"))
	assert.Equal(t, []summary{c1Turn1}, h.summaries())
}

func TestIdleConversationTimesOutOnWallClock(t *testing.T) {
	h := newRun(t, testConfig())
	h.consume(c1m1, c1t1, c1x1, c1r1a, c1r1b)
	h.now = h.now.Add(14 * time.Minute)
	h.sweep()
	assert.Empty(t, h.out)
	h.now = h.now.Add(time.Minute)
	h.sweep()
	assert.Equal(t, []summary{c1Turn1}, h.summaries())
	assert.Equal(t, map[[2]string]int64{{"paired", "timeout"}: 1}, h.counts())
	h.shutdown()
	assert.Len(t, h.out, 1, "nothing left to flush")
}

func TestMaxOpenTurnsEvictsTheLeastRecentlyActive(t *testing.T) {
	cfg := testConfig()
	cfg.MaxOpenTurns = 2
	h := newRun(t, cfg)
	h.consume(msg("a", "a1", 0, "a1", "A"))
	h.consume(msg("b", "b1", 1*s, "b1", "B"))
	h.consume(msg("a", "a2", 2*s, "a2x", "A again").ingestedAt(40 * s)) // completes a's first turn
	assert.Equal(t, []summary{{"a", "A", nil, []string{"a1"}, false}}, h.summaries())
	h.consume(msg("c", "c1", 3*s, "c1", "C"))
	// three open (b, a's second, c): b is the least recently active.
	assert.Equal(t, []summary{{"a", "A", nil, []string{"a1"}, false}, {"b", "B", nil, []string{"b1"}, false}}, h.summaries())
	assert.Equal(t, map[[2]string]int64{{"request_only", "complete"}: 1, {"request_only", "evicted"}: 1}, h.counts())
}

func TestTurnIDIsStableAcrossArrivalOrderAndRuns(t *testing.T) {
	ids := func(batches ...[]testRow) []string {
		h := newRun(t, testConfig())
		for _, b := range batches {
			h.consume(b...)
		}
		h.shutdown()
		var out []string
		for _, e := range h.out {
			out = append(out, e.ID)
		}
		return out
	}
	first := ids(c1All)
	require.Len(t, first, 2)
	assert.NotEqual(t, first[0], first[1])
	assert.Equal(t, first, ids([]testRow{c1r2, c1m2}, []testRow{c1r1b, c1x1, c1t1, c1r1a, c1m1}))
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := append([]testRow(nil), c1All...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	assert.Equal(t, first, ids(shuffled))
}

// A conversation whose event times run 30 minutes ahead of its ingestion
// (a fast clock) must not make other conversations' turns look complete:
// completion is decided in ingestion time only.
func TestEventTimesAheadOfIngestionDoNotCompleteOtherTurns(t *testing.T) {
	h := newRun(t, defaultConfig())
	h.consume(c1m1, c1t1, c1x1, c1r1a)
	ahead := msg("fast", "f1", 30*time.Minute, "q1", "from the future").ingestedAt(40 * s)
	aheadReply := reply("fast", "f2", 30*time.Minute+2*s, "q1", "hello").ingestedAt(41 * s)
	h.consume(ahead, aheadReply, c1r1b)
	assert.Empty(t, h.out, "ingestion time is 41s: nothing is complete")
	h.consume(c1m2, c1r2, msg("fast", "f3", 30*time.Minute+9*s, "q2", "again").ingestedAt(50*s))
	h.consume(msg("later", "l1", 7*time.Minute, "z", "tick").ingestedAt(7 * time.Minute))
	assert.Equal(t, []summary{c1Turn1, {"fast", "from the future", []string{"hello"}, []string{"f1", "f2"}, false}},
		byConversation(h.summaries()))
}

func TestMaxBufferedBytesEvictsWholeConversations(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBufferedBytes = 1 << 20
	h := newRun(t, cfg)
	big := strings.Repeat("x", 600<<10)
	h.consume(msg("a", "a1", 0, "a1", big), reply("a", "a2", s, "a1", "short"))
	assert.Empty(t, h.out)
	h.consume(msg("b", "b1", 2*s, "b1", big))
	// 1.2 MB buffered: a, the least recently active, goes out whole.
	got := h.summaries()
	require.Len(t, got, 1)
	assert.Equal(t, []string{"a1", "a2"}, got[0].Items)
	assert.Equal(t, map[[2]string]int64{{"paired", "evicted"}: 1}, h.counts())
	assert.Equal(t, rowBytes(&Row{Item: NewItemID("b1"), Activity: "b1", Text: big, Detail: "29:user"}), h.core.BufferedBytes())
}

func TestAConversationThatNeverPausesIsBounded(t *testing.T) {
	h := newRun(t, testConfig())
	var rows []testRow
	for i := range maxConversationRows + 1 {
		rows = append(rows, topicStart("auto", fmt.Sprintf("t%d", i), time.Duration(i)*time.Millisecond, "cr44e_bot.topic.Loop"))
	}
	h.consume(rows...)
	got := h.out
	require.Len(t, got, 1, "emitted early, as one turn without a request")
	assert.Len(t, got[0].Items, maxConversationRows+1)
	assert.Equal(t, 0, h.core.BufferedRows())
}

// A long conversation (more asks than the planner scans) pairs by reply-to
// ids the same way, whatever the order.
func TestLongConversationPairsByReplyTo(t *testing.T) {
	var rows []testRow
	var want []summary
	for i := range 2 * askIndexMin {
		at := time.Duration(i) * 10 * s
		m := msg("long", fmt.Sprintf("m%02d", i), at, fmt.Sprintf("a%02d", i), fmt.Sprintf("q%d", i))
		// each reply is sent after the next message, so only its reply-to id places it
		r := reply("long", fmt.Sprintf("r%02d", i), at+12*s, fmt.Sprintf("a%02d", i), fmt.Sprintf("answer %d", i))
		rows = append(rows, m, r)
		want = append(want, summary{"long", m.text, []string{r.text}, []string{m.item, r.item}, false})
	}
	rng := rand.New(rand.NewPCG(7, 7))
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	cfg := testConfig()
	cfg.ReorderWindow = 1000 * time.Hour
	h := newRun(t, cfg)
	h.consume(rows...)
	h.shutdown()
	assert.Equal(t, want, h.summaries())
}

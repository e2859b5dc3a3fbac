package pairing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// step is a plan or tool step of a transcript, answering replyTo.
func step(conv, item string, at time.Duration, replyTo string) testRow {
	return testRow{conv: conv, item: item, kind: KindStep, at: at, replyTo: replyTo, text: `{"stepId":"s"}`, channel: testChannel}
}

// stepError is a failed or blocked step, or an error trace.
func stepError(conv, item string, at time.Duration, replyTo string) testRow {
	r := step(conv, item, at, replyTo)
	r.kind = KindStepError
	return r
}

// context is a conversation-level trace (ConversationInfo, SessionInfo).
func conversationTrace(conv, item string, at time.Duration) testRow {
	return testRow{conv: conv, item: item, kind: KindContext, at: at, text: `{"locale":"en-US"}`, channel: testChannel}
}

func TestStepsJoinTheTurnTheirReplyToNames(t *testing.T) {
	h := newRun(t, testConfig())
	h.consume(
		conversationTrace("p", "ci", 0*s),
		msg("p", "m1", 1*s, "a1", "Is ticket 4711 closed?"),
		msg("p", "m2", 3*s, "a2", "And 4712?"),
		// Steps of the first message, logged after the second one.
		step("p", "s1", 4*s, "a1"),
		stepError("p", "s2", 5*s, "a1"),
		reply("p", "r1", 6*s, "a1", "4711 is closed."),
		// A step without reply-to joins by time: the second message.
		step("p", "s3", 7*s, ""),
		reply("p", "r2", 8*s, "a2", "4712 is open."),
		conversationTrace("p", "si", 9*s),
	)
	h.shutdown()
	require.Len(t, h.out, 2)
	assert.Equal(t, []summary{
		{"p", "Is ticket 4711 closed?", []string{"4711 is closed."}, []string{"m1", "s1", "s2", "r1"}, true},
		{"p", "And 4712?", []string{"4712 is open."}, []string{"m2", "s3", "r2"}, false},
	}, h.summaries(), "the conversation-level rows are in no turn; a failed step fails its turn")
	assert.Equal(t, []int{0, 1}, []int{h.out[0].Index, h.out[1].Index})
}

func TestConversationLevelRowsMakeNoTurn(t *testing.T) {
	h := newRun(t, testConfig())
	absorbed := 0
	h.onPart = func(sel *Selection) { absorbed += sel.Absorbed() }

	// Before anything else: held with the first turn, not written.
	h.consume(conversationTrace("q", "ci", 0*s), msg("q", "m1", 1*s, "a1", "Hi"), reply("q", "r1", 2*s, "a1", "Hello."))
	h.shutdown()
	require.Equal(t, []summary{{"q", "Hi", []string{"Hello."}, []string{"m1", "r1"}, false}}, h.summaries())
	assert.Equal(t, 1, absorbed)
	assert.Zero(t, h.core.BufferedRows())

	// Alone (a SessionInfo read after its conversation's turns went out):
	// no turn is written, and the row leaves once its turn is due.
	h = newRun(t, testConfig())
	absorbed = 0
	h.onPart = func(sel *Selection) { absorbed += sel.Absorbed() }
	h.consume(conversationTrace("q", "si", 60*s))
	require.Equal(t, 1, h.core.OpenTurns(), "it waits like any last turn")
	h.consume(msg("other", "o1", 30*60*s, "z1", "later").ingestedAt(40 * 60 * s))
	assert.Empty(t, h.out, "nothing written for it")
	assert.Equal(t, 1, absorbed)
	assert.Equal(t, 1, h.core.BufferedRows(), "only the other conversation's message is left")

	// A greeting keeps its turn id: the conversation-level row before it
	// does not open the turn.
	greeting := []testRow{reply("g", "g1", 2*s, "", "Hello, I'm HR Agent.")}
	plain := newRun(t, testConfig())
	plain.consume(greeting...)
	plain.shutdown()
	withInfo := newRun(t, testConfig())
	withInfo.consume(append([]testRow{conversationTrace("g", "ci", 0*s)}, greeting...)...)
	withInfo.shutdown()
	require.Len(t, withInfo.out, 1)
	assert.Equal(t, plain.out[0].ID, withInfo.out[0].ID)
	assert.Equal(t, []string{"g1"}, withInfo.out[0].Items)
}

func TestStepsOfAnEmittedTurnComeLate(t *testing.T) {
	h := newRun(t, testConfig())
	h.consume(msg("l", "m1", 0, "a1", "Q1"), msg("l", "m2", 10*s, "a2", "Q2"))
	require.Len(t, h.out, 1)
	h.consume(stepError("l", "s1", 12*s, "a1"))
	h.shutdown()
	assert.Equal(t, []summary{
		{"l", "Q1", nil, []string{"m1"}, false},
		{"l", "", nil, []string{"s1"}, true},
		{"l", "Q2", nil, []string{"m2"}, false},
	}, h.summaries(), "a late step never joins the next turn")
}

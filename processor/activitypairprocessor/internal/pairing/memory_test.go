package pairing

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Conversations kept without rows (their turns emitted) count against
// max_buffered_bytes, and are what the budget gives up first: a large open
// turn arriving at the limit makes the core forget the oldest of them, not
// emit the open turn early.
func TestBudgetForgetsEmptiedConversationsBeforeEvicting(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBufferedBytes = 1 << 20
	h := newRun(t, cfg)
	for i := range 2000 {
		conv := fmt.Sprintf("conversation-%04d", i)
		h.consume(msg(conv, conv+"-m", time.Duration(i)*time.Millisecond, conv+"-a", "hello"))
	}
	h.shutdown() // every turn out: 2,000 conversations kept without rows
	require.Len(t, h.out, 2000)
	held := h.core.Held()
	assert.Greater(t, held, int64(2000*convOverhead), "conversations without rows are counted")
	assert.Zero(t, h.core.BufferedBytes())

	big := strings.Repeat("x", 600<<10)
	h.consume(msg("big", "big-m", 3*s, "big-a", big))
	assert.Len(t, h.out, 2000, "the open turn is not emitted early")
	assert.Equal(t, 1, h.core.OpenTurns())
	assert.LessOrEqual(t, h.core.Held(), cfg.MaxBufferedBytes)
	f := h.core.Forgotten()
	assert.Positive(t, f.Conversations)
	assert.Less(t, f.Conversations, 2000, "only as many as the budget needs, oldest first")
	assert.Zero(t, f.EmittedIDs)
	_, kept := h.core.convs["conversation-1999"]
	_, forgotten := h.core.convs["conversation-0000"]
	assert.True(t, kept)
	assert.False(t, forgotten)
}

// When the ids of emitted rows alone fill more than half of the budget,
// the oldest are forgotten (and counted), so that the bound holds.
func TestBudgetForgetsTheOldestIDsWhenTheyFillIt(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBufferedBytes = 1 << 20
	h := newRun(t, cfg)
	for batch := range 100 {
		var rows []testRow
		for i := range 500 {
			n := batch*500 + i
			rows = append(rows, topicStart("loop", fmt.Sprintf("5f1c0a2e-7c1e-4a0e-9f7e-%012x", n), time.Duration(n)*time.Millisecond, "cr44e_bot.topic.Loop"))
		}
		h.consume(rows...)
		h.shutdown()
		h.core.Prune()
		require.LessOrEqual(t, h.core.Held(), cfg.MaxBufferedBytes, "batch %d", batch)
	}
	assert.Positive(t, h.core.Forgotten().EmittedIDs)
	assert.Less(t, h.core.EmittedIDs(), 50000)
}

// inputBuffer is one string all of a row's values are cut out of, as the
// receiver writes them.
func inputBuffer(values ...string) (all string, parts []string) {
	all = strings.Join(values, "")
	at := 0
	for _, v := range values {
		parts = append(parts, all[at:at+len(v)])
		at += len(v)
	}
	return all, parts
}

func within(s, buffer string) bool {
	if s == "" {
		return false
	}
	p, start := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(buffer)))
	return p >= start && p < start+uintptr(len(buffer))
}

// A buffered row gets strings of its own, and so do its conversation's id,
// channel and locale; a reply keeps sharing its reply-to id with its
// message.
func TestBufferedRowsShareNoMemoryWithTheInput(t *testing.T) {
	h := newRun(t, testConfig())
	buf, v := inputBuffer("conv-1", "a-1", "How do I reset my password?", "29:user", "msteams", "en-US", "a-1", "Go to aka.ms/sspr.", "x-9")
	m := msg(v[0], "m1", 0, v[1], v[2])
	m.detail, m.channel, m.locale = v[3], v[4], v[5]
	r := reply(v[0], v[8], s, v[6], v[7])
	r.channel = v[4]
	h.consume(m, r)
	conv := h.core.convs["conv-1"]
	require.Len(t, conv.Rows(), 2)
	for _, s := range []string{conv.ID(), conv.Channel(), conv.Locale()} {
		assert.False(t, within(s, buf), "%q shares the input's memory", s)
	}
	for _, row := range conv.Rows() {
		for _, s := range []string{row.Activity, row.ReplyTo, row.Text, row.Detail, row.Item.String()} {
			assert.False(t, within(s, buf), "%q shares the input's memory", s)
		}
	}
	ask, answer := &conv.rows[0], &conv.rows[1]
	assert.Equal(t, "How do I reset my password?", ask.Text)
	assert.Equal(t, "x-9", answer.Item.String())
	assert.Same(t, unsafe.StringData(ask.Activity), unsafe.StringData(answer.ReplyTo), "the reply-to id is the message's")
	h.now = h.now.Add(time.Hour)
	h.sweep()
	assert.Equal(t, []summary{{"conv-1", "How do I reset my password?", []string{"Go to aka.ms/sspr."}, []string{"m1", "x-9"}, false}}, h.summaries())
}

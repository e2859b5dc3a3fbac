package pairing

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// Trigger says why a turn was emitted.
type Trigger uint8

const (
	TriggerComplete Trigger = iota // its next user message came, or reply_timeout passed, in ingestion time
	TriggerTimeout                 // no new row of its conversation for reply_timeout, wall clock
	TriggerEvicted                 // max_open_turns or max_buffered_bytes reached, or a conversation too long
	TriggerShutdown                // shutdown without storage
	TriggerCount
)

var triggerNames = [TriggerCount]string{"complete", "timeout", "evicted", "shutdown"}

func (t Trigger) String() string { return triggerNames[t] }

// Outcome says what a turn holds.
type Outcome uint8

const (
	OutcomePaired       Outcome = iota // a user message and an answer
	OutcomeRequestOnly                 // a user message without an answer
	OutcomeResponseOnly                // no user message: a greeting, late replies
	OutcomeFailed                      // an OnErrorLog row
	OutcomeCount
)

// TurnIDLen is the length of a turn id: 128 bits in hex.
const TurnIDLen = 32

// Turn is one turn being emitted: a read-only view of its conversation's
// rows, valid until the selection moves on.
type Turn struct {
	conv    *Conversation
	rows    []int32 // into conv.rows, in event-time order
	request *Row    // nil for a turn without a user message
	index   int
	id      [TurnIDLen]byte
	at      int64
	outcome Outcome
	trigger Trigger
}

// Conversation is the turn's conversation.
func (t *Turn) Conversation() *Conversation { return t.conv }

// Len is how many rows the turn holds.
func (t *Turn) Len() int { return len(t.rows) }

// Row is the turn's i-th row, in event-time order. Read-only.
func (t *Turn) Row(i int) *Row { return &t.conv.rows[t.rows[i]] }

// Request is the user message, nil for a turn without one.
func (t *Turn) Request() *Row { return t.request }

// Index is the turn's place in its conversation: 0, 1, ... in emission order.
func (t *Turn) Index() int { return t.index }

// AppendID appends the turn id: the first 128 bits of SHA-256 over the
// conversation id and the item id of the turn's opening row (its user
// message; else its earliest answer; else its earliest row), in hex. The
// same rows give the same id on every run, whatever order and batches they
// came in.
func (t *Turn) AppendID(b []byte) []byte { return append(b, t.id[:]...) }

// At is the event time of the opening row, Unix nanoseconds.
func (t *Turn) At() int64 { return t.at }

// Outcome says what the turn holds.
func (t *Turn) Outcome() Outcome { return t.outcome }

// Trigger says why it is emitted.
func (t *Turn) Trigger() Trigger { return t.trigger }

// Topics appends the distinct topic names of the turn's rows, in order.
func (t *Turn) Topics(names []string) []string {
	for i := range t.rows {
		r := t.Row(i)
		if r.Topic != "" && !slices.Contains(names, r.Topic) {
			names = append(names, r.Topic)
		}
	}
	return names
}

// describe fills the derived fields of t from its rows; scratch is a
// reusable buffer.
func (t *Turn) describe(scratch *[]byte) {
	var firstAnswer, first *Row
	failed := false
	for i := range t.rows {
		r := t.Row(i)
		if first == nil {
			first = r
		}
		if firstAnswer == nil && r.Kind.in(answers) {
			firstAnswer = r
		}
		if r.Kind.in(fails) {
			failed = true
		}
	}
	opening := first
	switch {
	case t.request != nil:
		opening = t.request
	case firstAnswer != nil:
		opening = firstAnswer
	}
	t.at = opening.At
	b := opening.Item.AppendTo(append(append((*scratch)[:0], t.conv.id...), 0))
	*scratch = b
	sum := sha256.Sum256(b)
	hex.Encode(t.id[:], sum[:16])
	switch {
	case failed:
		t.outcome = OutcomeFailed
	case t.request == nil:
		t.outcome = OutcomeResponseOnly
	case firstAnswer == nil:
		t.outcome = OutcomeRequestOnly
	default:
		t.outcome = OutcomePaired
	}
}

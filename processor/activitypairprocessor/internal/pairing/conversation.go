package pairing

import (
	"math"
	"slices"
)

// Conversation holds the buffered rows of one conversation and what is
// remembered of the turns it already emitted. Outside this package it is a
// read-only view (for the encoders and the persistence).
type Conversation struct {
	id      string
	channel string
	locale  string
	rows    []Row // buffered, ordered by (event time, item id)

	// emittedAsks are hashes (askHash) of the activity ids of the asks
	// (user messages and events) of its latest emitted turns: a reply to
	// one of them that comes late becomes a turn of its own instead of
	// joining a later turn by mistake.
	emittedAsks  []uint64
	lastObserved int64 // latest ingestion time of its rows
	bytes        int64 // memory.go: the rowBytes of its rows

	idle  idleLink     // schedule.go: its place in the idle list
	sched schedule     // schedule.go: when its first open turn is complete
	sel   selectedPart // selection.go: what the current selection takes from it

	source    Source
	nextIndex int32 // {n} of its next emitted turn
	openTurns int32
	touched   bool  // core.go: rows added in the current batch
	journalIx int32 // changes.go: 1 + its place among the changes since the last save, 0 if none

	// (fields ordered so that the struct packs into 192 bytes: it is held
	// for every open conversation)
}

func newConversation(id string, src Source) *Conversation {
	return &Conversation{id: id, source: src, sched: schedule{heapIndex: -1, dueAt: math.MinInt64}}
}

// ID is the conversation id.
func (c *Conversation) ID() string { return c.id }

// Source is the handle of the source its rows came from (its first row's).
func (c *Conversation) Source() Source { return c.source }

// Channel and Locale are the first non-empty ones its rows carried.
func (c *Conversation) Channel() string { return c.channel }
func (c *Conversation) Locale() string  { return c.locale }

// NextIndex is the index its next emitted turn gets.
func (c *Conversation) NextIndex() int32 { return c.nextIndex }

// LastObserved is the latest ingestion time of its rows.
func (c *Conversation) LastObserved() int64 { return c.lastObserved }

// EmittedAsks are the hashes of the asks of its latest emitted turns.
func (c *Conversation) EmittedAsks() []uint64 { return c.emittedAsks }

// Rows are its buffered rows, in (event time, item id) order. Read-only.
func (c *Conversation) Rows() []Row { return c.rows }

// Bytes is what its rows count against max_buffered_bytes (see rowBytes).
func (c *Conversation) Bytes() int64 { return c.bytes }

// maxConversationRows bounds the rows one conversation holds: a
// conversation that never pauses (an autonomous agent talking to itself)
// has its turns emitted early past it.
const maxConversationRows = 10000

// maxEmittedAsks bounds Conversation.emittedAsks.
const maxEmittedAsks = 16

// insert adds r in order, unless the conversation holds it already. Rows
// mostly arrive in order, so the search from the end is short. It may
// change r.ReplyTo to the string of the ask it answers.
func (c *Conversation) insert(r *Row) bool {
	c.sched.invalidate()
	if r.ReplyTo != "" {
		// Hold one copy of the id the reply and its message share. Only
		// asks are answered, and the latest most often.
		for k := len(c.rows) - 1; k >= 0; k-- {
			if ask := &c.rows[k]; ask.Kind.in(asks) && ask.Activity == r.ReplyTo {
				r.ReplyTo = ask.Activity
				break
			}
		}
	}
	i := len(c.rows)
	for i > 0 && r.before(&c.rows[i-1]) {
		i--
	}
	if i > 0 && c.rows[i-1].At == r.At && c.rows[i-1].Item == r.Item {
		return false
	}
	if i == len(c.rows) {
		c.rows = append(c.rows, *r) // in order: the common case
		return true
	}
	c.rows = slices.Insert(c.rows, i, *r)
	return true
}

func (c *Conversation) emittedAsk(id string) bool {
	return slices.Contains(c.emittedAsks, askHash(id))
}

func (c *Conversation) rememberAsk(id string) {
	if id == "" {
		return
	}
	c.sched.invalidate()
	h := askHash(id)
	if slices.Contains(c.emittedAsks, h) {
		return
	}
	if len(c.emittedAsks) == maxEmittedAsks {
		copy(c.emittedAsks, c.emittedAsks[1:])
		c.emittedAsks = c.emittedAsks[:maxEmittedAsks-1]
	}
	c.emittedAsks = append(c.emittedAsks, h)
}

// askHash is a stable 64-bit FNV-1a hash of an activity id: a conversation
// remembers the asks it emitted by hash, 8 bytes each, instead of holding
// their strings. (A collision among its 16 latest would only make a late
// reply a turn of its own instead of waiting.)
func askHash(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

// removeIndices removes the rows at the sorted indices idx. An emptied
// conversation is kept for a while (its emitted asks), so it must not keep
// its row array: that held most of the processor's memory in a backlog
// replay (195 MB for 142,000 buffered rows).
func removeIndices(rows []Row, idx []int32) []Row {
	if len(idx) == len(rows) {
		return nil
	}
	w, k := 0, 0
	for i := range rows {
		if k < len(idx) && int(idx[k]) == i {
			k++
			continue
		}
		rows[w] = rows[i]
		w++
	}
	clear(rows[w:])
	// Arrays of up to 32 rows (4 KB) stay: a busy conversation keeps a few
	// rows between calls and would otherwise reallocate on every call.
	if cap(rows) > 4*w && cap(rows) > 32 {
		return slices.Clone(rows[:w])
	}
	return rows[:w]
}

package pairing

import (
	"math/bits"
	"strings"
	"unsafe"
)

// What the core holds, counted against max_open_turns and
// max_buffered_bytes, and how it is kept small. Every change to the counts
// goes through usage; what the budget gives up when it is exceeded is
// fitBudget's (and SelectEvictions') choice.
//
// max_buffered_bytes bounds everything the core holds that grows with the
// traffic: buffered rows (their slots and their strings), conversations
// (with rows or kept without for emitted_ids_ttl), the ids of emitted rows,
// the shared topic names, and the queue of emptied conversations. What is
// left uncounted is bounded by constants (the planner's and the
// selection's buffers, at most maxConversationRows long) or by a batch (the
// rows being added, the changes not yet saved).
//
// Strings: a row's strings arrive sharing memory with the caller's records
// (pdata does not copy on read, and a receiver may cut every value of a row
// out of one string), so one short id kept past the call would keep the
// whole record's text alive, unmasked values included. The strings of each
// row a call leaves buffered are copied into one allocation of its own
// (own): at EndBatch for the conversations with nothing to emit, in Commit
// for those that emitted (what stays), when their rows are in the CPU
// caches; Settle catches those whose emission failed. Rows emitted in the
// call that brought them are not copied. Conversation ids, channels,
// locales and names are copied when they are first kept.

// RowOverhead is what a buffered row costs beyond its strings, for the
// max_buffered_bytes budget: its slot in its conversation's row array.
const RowOverhead = 128

// convOverhead is what a conversation costs beyond its strings and rows:
// the struct (192 bytes), its slot in the conversation map (at most about
// 64 bytes with the map's growth) and in the deadline heap (16). Its
// entries in the queue of emptied conversations count apart (Held).
const convOverhead = 192 + 64 + 16

// nameOverhead is what a shared name costs beyond its bytes: its map entry.
const nameOverhead = 64

// allocSize is about the heap an allocation of n bytes takes: Go rounds
// sizes up to its size classes, at most an eighth more (a page beyond 32
// KiB).
func allocSize(n int) int64 {
	switch {
	case n <= 0:
		return 0
	case n <= 16:
		return int64(n+7) &^ 7
	}
	step := 1 << (bits.Len(uint(n-1)) - 3) // an eighth of the next power of two
	step = min(max(step, 16), 8192)
	return int64((n + step - 1) / step * step)
}

// rowBytes is what a buffered row counts: its slot, and the one allocation
// its strings are copied into (own). Topic names and node kinds are shared
// (usage.names) and counted there.
func rowBytes(r *Row) int64 {
	return RowOverhead + allocSize(ownedLen(r))
}

// ownedLen is the length of the strings a row owns.
func ownedLen(r *Row) int {
	n := r.Item.textLen() + len(r.Activity) + len(r.ReplyTo) + len(r.Text)
	if !r.Kind.in(namedDetail) {
		n += len(r.Detail)
	}
	return n
}

// convBytes is what a conversation costs beyond its rows.
func convBytes(c *Conversation) int64 {
	return convOverhead + allocSize(len(c.id)) + 8*int64(cap(c.emittedAsks))
}

// textLen is the length of a non-GUID id's text (a GUID costs nothing
// beyond the row).
func (i ItemID) textLen() int { return len(i.text) }

// usage is what the core holds, in total and per conversation.
type usage struct {
	rows  int
	bytes int64 // rowBytes of the buffered rows
	// slots is the row slots allocated in every conversation's row array,
	// used or not: what they take beyond RowOverhead per row is counted too.
	slots     int
	convs     int64 // convBytes of every conversation held
	nameBytes int64
	openTurns int

	maxOpenTurns int
	maxBytes     int64

	// names holds one copy of each topic name, node kind, channel and
	// locale: an agent has a few dozen, repeated on most rows.
	names map[string]string
}

// maxNames bounds usage.names.
const maxNames = 1 << 14

func newUsage(cfg Config) usage {
	return usage{maxOpenTurns: cfg.MaxOpenTurns, maxBytes: cfg.MaxBufferedBytes, names: map[string]string{}}
}

// hold counts r, buffered in c.
func (u *usage) hold(c *Conversation, r *Row) {
	n := rowBytes(r)
	u.rows++
	u.bytes += n
	c.bytes += n
}

// release counts r out of c.
func (u *usage) release(c *Conversation, r *Row) {
	n := rowBytes(r)
	u.rows--
	u.bytes -= n
	c.bytes -= n
}

// resized counts the change of c's row array from capacity before.
func (u *usage) resized(c *Conversation, before int) { u.slots += cap(c.rows) - before }

// setOpenTurns records how many turns c's rows make.
func (u *usage) setOpenTurns(c *Conversation, n int32) {
	u.openTurns += int(n - c.openTurns)
	c.openTurns = n
}

// turnsOver is how many open turns are beyond max_open_turns.
func (u *usage) turnsOver() int { return u.openTurns - u.maxOpenTurns }

// Held is everything the core counts against max_buffered_bytes.
func (c *Core) Held() int64 {
	u := &c.mem
	return u.bytes + RowOverhead*int64(u.slots-u.rows) + u.convs + u.nameBytes + c.seen.bytes +
		16*int64(c.emptied.n)
}

// bytesOver is how far what the core holds is beyond max_buffered_bytes.
func (c *Core) bytesOver() int64 { return c.Held() - c.mem.maxBytes }

// shareNames makes r hold the one kept copy of its topic name (and node
// kind).
func (u *usage) shareNames(r *Row) {
	r.Topic = u.name(r.Topic)
	if r.Kind.in(namedDetail) {
		r.Detail = u.name(r.Detail)
	}
}

// name returns the kept copy of v; when the table is full, v itself (own
// copies it with the row).
func (u *usage) name(v string) string {
	if v == "" {
		return v
	}
	if w, ok := u.names[v]; ok {
		return w
	}
	if len(u.names) < maxNames {
		w := strings.Clone(v)
		u.names[w] = w
		u.nameBytes += allocSize(len(w)) + nameOverhead
		return w
	}
	return v
}

// keep returns a copy of v that shares no memory with the caller's
// records: the kept name, or a clone. For values kept past the call
// (channel, locale).
func (u *usage) keep(v string) string {
	if w := u.name(v); v == "" || u.shared(w) {
		return w
	}
	return strings.Clone(v)
}

// shared reports whether v is the kept copy of a name.
func (u *usage) shared(v string) bool {
	w, ok := u.names[v]
	return ok && unsafe.StringData(w) == unsafe.StringData(v)
}

// own copies the strings r holds into one allocation of its own, so that
// they keep nothing else alive. A reply-to id shared with its ask (insert)
// and shared names are left as they are.
func (u *usage) own(r *Row, replyToShared bool) {
	n := r.Item.textLen() + len(r.Activity) + len(r.Text)
	if !replyToShared {
		n += len(r.ReplyTo)
	}
	// Names are kept copies (shareNames) unless the table was full.
	full := len(u.names) >= maxNames
	ownTopic := r.Topic != "" && full && !u.shared(r.Topic)
	if ownTopic {
		n += len(r.Topic)
	}
	ownDetail := r.Detail != "" && (!r.Kind.in(namedDetail) || full && !u.shared(r.Detail))
	if ownDetail {
		n += len(r.Detail)
	}
	if n == 0 {
		return
	}
	b := make([]byte, 0, n)
	take := func(s string) string {
		if s == "" {
			return ""
		}
		start := len(b)
		b = append(b, s...)
		return unsafe.String(&b[start], len(s))
	}
	r.Item.text = take(r.Item.text)
	r.Activity = take(r.Activity)
	r.Text = take(r.Text)
	if !replyToShared {
		r.ReplyTo = take(r.ReplyTo)
	}
	if ownTopic {
		r.Topic = take(r.Topic)
	}
	if ownDetail {
		r.Detail = take(r.Detail)
	}
}

// ownBatchRows gives the rows of conv that came with the current batch
// (ingested at or after its earliest row) strings of their own: asks
// first, so that the replies to them can share their ids. (A row of an
// earlier batch ingested as late may be copied again: only a cost.)
func (c *Core) ownBatchRows(conv *Conversation) {
	from, replies := c.keepFrom, false
	for i := range conv.rows {
		r := &conv.rows[i]
		switch {
		case r.Observed() < from:
		case r.Kind.in(joinsByReplyTo) && r.ReplyTo != "":
			replies = true
		default:
			c.mem.own(r, false)
		}
	}
	if !replies {
		return
	}
	for i := range conv.rows {
		if r := &conv.rows[i]; r.Observed() >= from && r.Kind.in(joinsByReplyTo) && r.ReplyTo != "" {
			c.mem.own(r, conv.shareReplyTo(r))
		}
	}
}

// Settle ends a call: once the selection is committed (emitted: all of
// it) and the changes saved (saved: or not kept). Rows of the batch that a
// failed emission left buffered get strings of their own now, and so do
// the changes a failed save keeps for the next one.
func (c *Core) Settle(emitted, saved bool) {
	if c.owning && !emitted {
		for _, conv := range c.due {
			c.ownBatchRows(conv)
		}
	}
	if j := c.journal; j != nil && !saved {
		for i := range j.added[j.owned:] {
			c.mem.own(&j.added[j.owned+i].r, false)
		}
		j.owned = len(j.added)
	}
	c.owning = false
	clear(c.due)
	c.due = c.due[:0]
}

// shareReplyTo makes r hold the reply-to id of the ask it answers as that
// ask's own string, as insert does; false when no buffered ask has it.
func (c *Conversation) shareReplyTo(r *Row) bool {
	for k := len(c.rows) - 1; k >= 0; k-- {
		if ask := &c.rows[k]; ask.Kind.in(asks) && ask.Activity == r.ReplyTo {
			r.ReplyTo = ask.Activity
			return true
		}
	}
	return false
}

// Forgotten counts what the memory budget made the core forget before
// emitted_ids_ttl: conversations without rows (their turn numbering and the
// asks of their emitted turns) and ids of emitted rows (a row with one of
// them, read again, is emitted again).
type Forgotten struct {
	Conversations int
	EmittedIDs    int
}

// Forgotten is what the memory budget made the core forget so far.
func (c *Core) Forgotten() Forgotten { return c.forgotten }

// fitBudget makes what the core holds fit max_buffered_bytes by giving up
// what costs least: conversations without rows, emptied longest ago
// first; then, if the ids of emitted rows take more than half of the
// budget (the open rows are not what fills it), the oldest of them. Open
// rows are SelectEvictions' to emit early.
func (c *Core) fitBudget() {
	for c.bytesOver() > 0 {
		e, ok := c.emptied.peek()
		if !ok {
			break
		}
		c.emptied.pop()
		if c.forget(e) {
			c.forgotten.Conversations++
		}
	}
	for c.bytesOver() > 0 && c.seen.bytes > c.mem.maxBytes/2 {
		n := c.seen.forgetOldest()
		if n == 0 {
			break
		}
		c.forgotten.EmittedIDs += n
	}
}

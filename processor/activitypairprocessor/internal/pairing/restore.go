package pairing

import "iter"

// The whole state, for a snapshot (Conversations, EmittedBuckets,
// Watermark), and the way back (Restore*). Together with Changes this is
// everything persistence reads and writes.

// Conversations yields every conversation the core holds, those without
// rows included (what they remember of their emitted turns is state too).
func (c *Core) Conversations() iter.Seq[*Conversation] {
	return func(yield func(*Conversation) bool) {
		for _, conv := range c.convs {
			if !yield(conv) {
				return
			}
		}
	}
}

// EmittedBuckets yields the remembered ids of emitted rows, by bucket of
// ingestion time (BucketOf).
func (c *Core) EmittedBuckets() iter.Seq2[int64, *IDBucket] { return c.seen.all }

// ConversationState is what a snapshot or a change holds of a conversation
// besides its rows.
type ConversationState struct {
	ID           string
	Source       Source // kept from the first state restored for the id
	Channel      string
	Locale       string
	NextIndex    int32
	LastObserved int64
	// EmittedAsks replace those remembered when AsksKnown (a change that
	// emitted nothing leaves them as they were).
	EmittedAsks []uint64
	AsksKnown   bool
}

// RestoreWatermark raises the watermark to w (a stored segment's).
func (c *Core) RestoreWatermark(w int64) { c.watermark = max(c.watermark, w) }

// RestoreConversation creates or updates a conversation from stored state
// and returns it, for RestoreRow.
func (c *Core) RestoreConversation(st *ConversationState) *Conversation {
	conv := c.convs[st.ID]
	if conv == nil {
		conv = newConversation(st.ID, st.Source)
		c.convs[st.ID] = conv
		c.mem.convs += convBytes(conv)
	}
	conv.channel, conv.locale = c.mem.keep(st.Channel), c.mem.keep(st.Locale)
	conv.nextIndex = st.NextIndex
	conv.lastObserved = max(conv.lastObserved, st.LastObserved)
	if st.AsksKnown {
		before := convBytes(conv)
		conv.emittedAsks = st.EmittedAsks
		c.mem.convs += convBytes(conv) - before
	}
	return conv
}

// RestoreRow buffers a stored row in conv, unless its id is remembered as
// emitted or conv holds it already. A row emitted in a later segment than
// the one that buffered it stays until FinishRestore.
func (c *Core) RestoreRow(conv *Conversation, r *Row) {
	c.mem.shareNames(r)
	slots := cap(conv.rows)
	if !c.seen.contains(r.Item, r.Observed()) && conv.insert(r) {
		c.mem.resized(conv, slots)
		c.mem.hold(conv, r)
	}
}

// RestoreEmitted remembers the id of a row emitted in this bucket of
// ingestion time.
func (c *Core) RestoreEmitted(id ItemID, bucket int64) {
	c.seen.emitted(id, bucket*IDBucketWidth)
}

// RestoreOrigins marks a bucket of emitted ids (restored with
// RestoreEmitted) as holding ids of rows from the origins whose bits are
// set in mask (IDBucket.Origins).
func (c *Core) RestoreOrigins(bucket int64, mask uint64) {
	if b := c.seen.buckets[bucket]; b != nil {
		b.origins |= mask &^ 1
	}
}

// FinishRestore ends a restore at wall clock now: it drops the rows
// emitted in a later segment than the one that buffered them (their ids
// are remembered), then plans every restored conversation. Their
// reply_timeout of wall clock starts again at now: the clock went on while
// the collector was down, and rows arriving late get their full time.
func (c *Core) FinishRestore(now int64) {
	for _, conv := range c.convs {
		kept := conv.rows[:0]
		for i := range conv.rows {
			if r := &conv.rows[i]; c.seen.contains(r.Item, r.Observed()) {
				c.mem.release(conv, r)
				continue
			}
			kept = append(kept, conv.rows[i])
		}
		clear(conv.rows[len(kept):])
		if len(kept) == 0 && conv.rows != nil {
			c.mem.slots -= cap(conv.rows)
			conv.rows = nil // kept without rows for a while: hold no array
			continue
		}
		conv.rows = kept
	}
	for _, conv := range c.convs {
		conv.idle.since = now
		if len(conv.rows) > 0 {
			c.idle.toBack(conv, now)
			c.refresh(conv)
		} else {
			c.emptied.push(emptiedConversation{conv, conv.lastObserved})
		}
	}
	c.Prune()
}

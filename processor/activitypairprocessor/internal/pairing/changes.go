package pairing

import "iter"

// journal collects the changes since the last save (Config.KeepChanges).
type journal struct {
	convs       []*Conversation // concerned, in the order first concerned
	asksChanged []bool          // by place in convs: some of its rows were emitted
	added       []journalRow
	emitted     []journalEmit
	owned       int // added[:owned] have strings of their own (Settle)
}

type journalRow struct {
	conv int32 // place in journal.convs
	r    Row
}

type journalEmit struct {
	item     ItemID
	observed int64
	origin   Origin
}

// touch adds c to the conversations concerned and returns its place.
func (j *journal) touch(c *Conversation) int32 {
	if c.journalIx == 0 {
		j.convs = append(j.convs, c)
		j.asksChanged = append(j.asksChanged, false)
		c.journalIx = int32(len(j.convs))
	}
	return c.journalIx - 1
}

func (j *journal) add(c *Conversation, r Row) {
	j.added = append(j.added, journalRow{j.touch(c), r})
}

func (j *journal) emit(c *Conversation, item ItemID, observed int64, o Origin) {
	j.asksChanged[j.touch(c)] = true
	j.emitted = append(j.emitted, journalEmit{item, observed, o})
}

func (j *journal) reset() {
	for _, c := range j.convs {
		c.journalIx = 0
	}
	clear(j.convs)
	clear(j.added)
	clear(j.emitted)
	j.convs, j.asksChanged, j.added, j.emitted = j.convs[:0], j.asksChanged[:0], j.added[:0], j.emitted[:0]
	j.owned = 0
}

// Changes are what changed since the last save (Saved), for a caller that
// stores them: the conversations concerned, the rows added that are still
// buffered, and the ids of the rows emitted. Valid until the core changes.
// Without Config.KeepChanges there are none.
type Changes struct{ c *Core }

// Changes returns the changes since the last save.
func (c *Core) Changes() Changes { return Changes{c} }

// Saved tells the core its changes are stored: Changes starts empty again.
func (c *Core) Saved() {
	if c.journal != nil {
		c.journal.reset()
	}
}

// Empty reports whether nothing changed.
func (ch Changes) Empty() bool {
	j := ch.c.journal
	return j == nil || len(j.convs) == 0 && len(j.emitted) == 0
}

// Conversations are the conversations concerned: rows added, emitted, or
// both.
func (ch Changes) Conversations() []*Conversation {
	if ch.c.journal == nil {
		return nil
	}
	return ch.c.journal.convs
}

// AsksChanged reports whether Conversations()[i] emitted rows, which is
// the only change to the asks it remembers (EmittedAsks).
func (ch Changes) AsksChanged(i int) bool { return ch.c.journal.asksChanged[i] }

// Added yields the rows added that were not emitted since (an emitted
// row's id is all a restore needs), each with its conversation's place in
// Conversations.
func (ch Changes) Added() iter.Seq2[int, *Row] {
	return func(yield func(int, *Row) bool) {
		j := ch.c.journal
		if j == nil {
			return
		}
		for i := range j.added {
			a := &j.added[i]
			if j.asksChanged[a.conv] && ch.c.seen.contains(a.r.Item, a.r.Observed()) {
				continue
			}
			if !yield(int(a.conv), &a.r) {
				return
			}
		}
	}
}

// NumEmitted is how many rows were emitted.
func (ch Changes) NumEmitted() int {
	if ch.c.journal == nil {
		return 0
	}
	return len(ch.c.journal.emitted)
}

// Emitted is the id of the i-th row emitted, in the order they were
// emitted, and its ingestion time.
func (ch Changes) Emitted(i int) (ItemID, int64) {
	e := &ch.c.journal.emitted[i]
	return e.item, e.observed
}

// EmittedFrom is the origin of the i-th row emitted.
func (ch Changes) EmittedFrom(i int) Origin { return ch.c.journal.emitted[i].origin }

// Size is about how many bytes the changes take encoded: 18 per emitted
// id, 128 per conversation, 48 per added row plus its strings.
func (ch Changes) Size() int {
	j := ch.c.journal
	if j == nil {
		return 0
	}
	size := 18*len(j.emitted) + 128*len(j.convs)
	for i := range j.added {
		r := &j.added[i].r
		size += 48 + len(r.Activity) + len(r.ReplyTo) + len(r.Text) + len(r.Topic) + len(r.Detail)
	}
	return size
}

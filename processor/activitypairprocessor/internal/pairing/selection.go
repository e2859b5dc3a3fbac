package pairing

import (
	"container/heap"
	"iter"
	"math"
	"slices"
)

// Selection is the set of turns the core picks for emission in one step.
// Nothing in the core changes until Commit, so a selection the next
// consumer refused is dropped (Reset) and the same turns are selected
// again next time. The zero value is an empty selection.
//
// A selection is emitted in parts of a few conversations (NextPart): the
// encoder walks a part's turns (Conversations, Turns) and the caller
// commits the part once it is accepted.
type Selection struct {
	core  *Core
	convs []*Conversation
	// trigger is that of the turns selected before they are complete: set
	// by the one of SelectEvictions, SelectIdle and SelectAll used
	trigger Trigger

	// the part being emitted: convs[from:to]
	from, to int
	// what the walk of the part found, for Commit
	spans   []removal
	indices []int32
	counts  [OutcomeCount][TriggerCount]int
	// absorbed counts the conversation-level rows the walk took: they
	// leave with their turn but are in no record
	absorbed int
	// rows is the current turn's rows without its conversation-level ones
	rows []int32

	// the walk's place: the conversation, its next plan, its selected
	// chronological turns, the turns it yielded
	cur         *Conversation
	next, take  int
	turns       int
	turn        Turn // the view handed out, reused
	scratch     []byte
	warmStrings bool // warm.go
}

// selectedPart is what the current selection takes from a conversation.
type selectedPart struct {
	take int32 // chronological turns selected (late-reply turns always are)
	due  int32 // of which complete on their own; the rest by the selection's trigger
	in   bool  // in the selection
}

// removal is what Commit removes from one conversation.
type removal struct {
	conv     *Conversation
	from, to int // in Selection.indices: rows emitted
	turns    int
}

// Reset empties the selection: turns selected and not committed stay open.
func (s *Selection) Reset() {
	for _, c := range s.convs {
		c.sel = selectedPart{}
	}
	clear(s.convs)
	s.convs = s.convs[:0]
	s.from, s.to = 0, 0
	s.clearPart()
	s.trigger = TriggerComplete
}

func (s *Selection) clearPart() {
	clear(s.spans)
	s.spans = s.spans[:0]
	s.indices = s.indices[:0]
	s.counts = [OutcomeCount][TriggerCount]int{}
	s.absorbed = 0
	s.cur = nil
	s.turn = Turn{} // hold no conversation
}

// add selects c's first take chronological turns (and any late-reply
// turns); the first due of them are complete on their own.
func (s *Selection) add(c *Conversation, due, take int) {
	if !c.sel.in {
		c.sel.in = true
		s.convs = append(s.convs, c)
	}
	c.sel.due = max(c.sel.due, int32(due))
	c.sel.take = max(c.sel.take, int32(take), int32(due))
}

// SelectComplete adds every complete turn to s. The deadline heap is
// walked, not popped: only the conversations whose deadline has passed
// are visited.
func (c *Core) SelectComplete(s *Selection) {
	s.core = c
	stack := append(c.stack[:0], 0)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(c.deadlines) || c.deadlines[i].sched.deadline > c.watermark {
			continue
		}
		conv := c.deadlines[i]
		if conv.sched.dueAt == c.watermark {
			// refresh found these turns complete at this watermark, and
			// nothing changed since
			s.add(conv, int(conv.sched.dueTurns), int(conv.sched.dueTurns))
			stack = append(stack, 2*i+1, 2*i+2)
			continue
		}
		c.planner.plan(conv)
		n, d := c.completeTurns()
		if d == math.MinInt64 {
			s.add(conv, n, n)
		} else {
			conv.sched.deadline = d // kept early by refresh: put it right below
			c.stale = append(c.stale, conv)
		}
		stack = append(stack, 2*i+1, 2*i+2)
	}
	c.stack = stack
	for _, conv := range c.stale {
		heap.Fix(&c.deadlines, int(conv.sched.heapIndex))
	}
	clear(c.stale)
	c.stale = c.stale[:0]
}

// SelectEvictions adds the oldest turns of the least recently active
// conversations until at most max_open_turns stay open, then whole least
// recently active conversations until max_buffered_bytes is met, and every
// turn of a conversation holding more than maxConversationRows rows.
func (c *Core) SelectEvictions(s *Selection) {
	s.core, s.trigger = c, TriggerEvicted
	for _, conv := range c.oversized {
		if len(conv.rows) > maxConversationRows {
			s.add(conv, int(conv.sel.due), math.MaxInt32)
		}
	}
	clear(c.oversized)
	c.oversized = c.oversized[:0]

	if excess := c.mem.turnsOver(); excess > 0 {
		for _, conv := range s.convs {
			excess -= int(min(conv.sel.take, conv.openTurns))
		}
		for conv := c.idle.head; conv != nil && excess > 0; conv = conv.idle.next {
			room := int(conv.openTurns - conv.sel.take)
			if room <= 0 {
				continue
			}
			n := min(room, excess)
			s.add(conv, int(conv.sel.due), int(conv.sel.take)+n)
			excess -= n
		}
	}

	if excess := c.bytesOver(); excess > 0 {
		for _, conv := range s.convs {
			if int(conv.sel.take) >= int(conv.openTurns) {
				excess -= conv.bytes
			}
		}
		for conv := c.idle.head; conv != nil && excess > 0; conv = conv.idle.next {
			if int(conv.sel.take) < int(conv.openTurns) {
				s.add(conv, int(conv.sel.due), math.MaxInt32)
				excess -= conv.bytes
			}
		}
	}
}

// SelectIdle adds every turn of the conversations with no new row since
// before idleSince (wall clock, Unix nanoseconds).
func (c *Core) SelectIdle(s *Selection, idleSince int64) {
	s.core, s.trigger = c, TriggerTimeout
	for conv := c.idle.head; conv != nil && conv.idle.since <= idleSince; conv = conv.idle.next {
		c.planner.plan(conv)
		n, _ := c.completeTurns()
		s.add(conv, n, len(c.planner.plans))
	}
}

// SelectAll adds every open turn, for a shutdown that cannot keep them.
func (c *Core) SelectAll(s *Selection) {
	s.core, s.trigger = c, TriggerShutdown
	for conv := c.idle.head; conv != nil; conv = conv.idle.next {
		c.planner.plan(conv)
		n, _ := c.completeTurns()
		s.add(conv, n, len(c.planner.plans))
	}
}

// NextPart moves to the next at most max conversations of the selection;
// false when none is left.
func (s *Selection) NextPart(max int) bool {
	s.clearPart()
	s.from = s.to
	s.to = min(s.from+max, len(s.convs))
	return s.from < s.to
}

// PartLen is how many conversations the current part holds.
func (s *Selection) PartLen() int { return s.to - s.from }

// Conversations walks the current part: each conversation that has turns
// to emit, with how many, in selection order. Walk each one's turns with
// Turns before moving on.
func (s *Selection) Conversations() iter.Seq2[*Conversation, int] {
	return func(yield func(*Conversation, int) bool) {
		p := &s.core.planner
		for _, c := range s.convs[s.from:s.to] {
			if s.warmStrings {
				s.core.warmth += readStrings(c)
			}
			p.plan(c)
			s.cur, s.next, s.turns = c, 0, 0
			s.take = min(int(c.sel.take), p.chronological)
			from := len(s.indices)
			n := p.emittableIn(0, s.take) + p.emittableIn(p.chronological, len(p.plans))
			stop := n > 0 && !yield(c, n)
			for s.nextTurn() { // the turns the caller did not walk
			}
			s.spans = append(s.spans, removal{conv: c, from: from, to: len(s.indices), turns: s.turns})
			if stop {
				return
			}
		}
		s.cur = nil
		s.turn = Turn{}
	}
}

// Turns walks the turns of the conversation Conversations is at: its
// selected chronological turns in order, then its turns of late replies.
// The *Turn is reused: it is valid until the next one.
func (s *Selection) Turns() iter.Seq[*Turn] {
	return func(yield func(*Turn) bool) {
		for s.nextTurn() {
			if !yield(&s.turn) {
				return
			}
		}
	}
}

// nextTurn describes the current conversation's next selected turn into
// s.turn and records it for Commit; false when none is left.
func (s *Selection) nextTurn() bool {
	c := s.cur
	if c == nil {
		return false
	}
	p := &s.core.planner
	for {
		if s.next == s.take {
			s.next = p.chronological // the late-reply turns follow
		}
		if s.next >= len(p.plans) {
			return false
		}
		k := s.next
		s.next++
		pl := &p.plans[k]
		if len(pl.rows) == 0 {
			continue
		}
		s.indices = append(s.indices, pl.rows...)
		s.absorbed += int(pl.context)
		if !pl.emittable() {
			continue // conversation-level rows alone: they leave, unwritten
		}
		rows := pl.rows
		if pl.context > 0 {
			rows = s.rows[:0]
			for _, i := range pl.rows {
				if !c.rows[i].Kind.in(conversationLevel) {
					rows = append(rows, i)
				}
			}
			s.rows = rows
		}
		trigger := TriggerComplete
		if k < p.chronological && k >= int(c.sel.due) {
			trigger = s.trigger
		}
		t := &s.turn
		*t = Turn{conv: c, rows: rows, index: int(c.nextIndex) + s.turns, trigger: trigger}
		if pl.request >= 0 {
			t.request = &c.rows[pl.request]
		}
		t.describe(&s.scratch)
		s.counts[t.outcome][trigger]++
		s.turns++
		return true
	}
}

// Absorbed is how many conversation-level rows (KindContext) the walk of
// the current part took: Commit removes them with their turns, and no
// record holds them.
func (s *Selection) Absorbed() int { return s.absorbed }

// Count is how many turns of this outcome and trigger the walk of the
// current part yielded.
func (s *Selection) Count(o Outcome, t Trigger) int { return s.counts[o][t] }

// Commit applies the current part of s, accepted by the next consumer:
// the rows of the turns its walk yielded leave the buffer and their ids
// are remembered as emitted.
func (c *Core) Commit(s *Selection) {
	for _, sp := range s.spans {
		conv := sp.conv
		idx := s.indices[sp.from:sp.to]
		slices.Sort(idx)
		origin := c.originOfSource(conv.source)
		convBefore, slots := convBytes(conv), cap(conv.rows)
		for _, i := range idx {
			r := &conv.rows[i]
			if r.Kind.in(asks) {
				conv.rememberAsk(r.Activity)
			}
			c.seen.emittedFrom(r.Item, r.Observed(), origin)
			if c.journal != nil {
				c.journal.emit(conv, r.Item, r.Observed(), origin)
			}
		}
		for _, i := range idx {
			c.mem.release(conv, &conv.rows[i])
		}
		conv.rows = removeIndices(conv.rows, idx)
		c.mem.resized(conv, slots)
		c.mem.convs += convBytes(conv) - convBefore
		if c.owning {
			c.ownBatchRows(conv) // what stays of the batch's rows; just moved: in the CPU caches
		}
		conv.nextIndex += int32(sp.turns)
		if c.journal != nil {
			c.journal.touch(conv)
		}
	}
	for _, conv := range s.convs[s.from:s.to] {
		conv.sel = selectedPart{}
		c.refresh(conv)
	}
	clear(s.spans)
	s.spans = s.spans[:0]
	s.indices = s.indices[:0]
}

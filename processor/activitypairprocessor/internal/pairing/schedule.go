package pairing

import (
	"container/heap"
	"math"
)

// When turns are due. Every conversation with rows is in a heap by the
// ingestion time at which its first open turn will be complete (so that a
// call visits only conversations with something due), and in a list by
// the wall-clock time of its latest row (for reply_timeout and eviction).

// schedule is a conversation's place in the deadline heap, and what refresh
// found at the latest watermark.
type schedule struct {
	deadline int64 // ingestion time at which its first open turn is complete
	// dueAt is the watermark at which refresh last found turns to emit now,
	// and dueTurns how many of its chronological turns were complete then:
	// selectComplete then selects them without planning the conversation
	// again. math.MinInt64 when refresh found none, or its rows or asks
	// changed since.
	dueAt     int64
	heapIndex int32 // position in Core.deadlines, -1 when absent
	dueTurns  int32
}

// invalidate forgets what refresh found: the rows or asks changed.
func (s *schedule) invalidate() { s.dueAt = math.MinInt64 }

// refresh re-plans conv after its rows changed: its open turns and the
// ingestion time at which its first open turn will be complete.
func (c *Core) refresh(conv *Conversation) {
	if len(conv.rows) == 0 {
		c.mem.setOpenTurns(conv, 0)
		if conv.sched.heapIndex >= 0 {
			heap.Remove(&c.deadlines, int(conv.sched.heapIndex))
		}
		c.idle.unlink(conv)
		c.emptied.push(emptiedConversation{conv, conv.lastObserved})
		return
	}
	p := &c.planner
	p.plan(conv)
	c.mem.setOpenTurns(conv, int32(p.nonEmpty(0, len(p.plans))))
	if len(conv.rows) > maxConversationRows {
		c.oversized = append(c.oversized, conv)
	}
	n, d := c.completeTurns()
	s := &conv.sched
	s.dueAt, s.dueTurns = math.MinInt64, int32(n)
	if d == math.MinInt64 {
		s.dueAt = c.watermark
	}
	switch {
	case s.heapIndex < 0:
		s.deadline = d
		heap.Push(&c.deadlines, conv)
	case d < s.deadline || s.deadline <= c.watermark:
		// Earlier than the heap knows, or the heap has it due: fix now.
		s.deadline = d
		heap.Fix(&c.deadlines, int(s.heapIndex))
	default:
		// Later: the heap keeps the earlier time. When the watermark passes
		// it, selectComplete finds nothing due and moves it then; most new
		// rows push a deadline later, and this saves a sift for each.
	}
}

// completeTurns says how many of the chronological turns in c.planner (just
// planned) are complete at the watermark, and when to look again.
//
// Everything is measured in ingestion time, which is the order the receiver
// reads rows in: a turn ends when its next user message has been read (and
// its own rows), and is complete once rows ingested reorder_window after
// that have been read too, so that a reply ingested after the next message
// still joins it. The last turn of a conversation ends reply_timeout after
// its latest row was ingested, and so does a turn holding a reply whose
// message has not been seen (it may still come). Whole conversations
// ingested late keep the same spacing, so they are paired as well as the
// others.
//
// Only a prefix can be complete: a turn is never emitted before an earlier
// one, so a late reply always finds its request still buffered.
func (c *Core) completeTurns() (n int, deadline int64) {
	p := &c.planner
	for ; n < p.chronological; n++ {
		pl := &p.plans[n]
		end := pl.ingested + c.replyTimeout
		if n+1 < p.chronological {
			end = max(p.plans[n+1].opened, pl.ingested)
		}
		if pl.waiting != 0 {
			end = max(end, pl.waiting+c.replyTimeout)
		}
		if c.watermark < end+c.reorder {
			deadline = end + c.reorder
			break
		}
	}
	if n > 0 || n == p.chronological || len(p.plans) > p.chronological {
		deadline = math.MinInt64 // something to emit now (late replies to emitted turns included)
	}
	return n, deadline
}

// convHeap orders conversations by deadline.
type convHeap []*Conversation

func (h convHeap) Len() int           { return len(h) }
func (h convHeap) Less(i, j int) bool { return h[i].sched.deadline < h[j].sched.deadline }
func (h convHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].sched.heapIndex, h[j].sched.heapIndex = int32(i), int32(j)
}
func (h *convHeap) Push(x any) {
	c := x.(*Conversation)
	c.sched.heapIndex = int32(len(*h))
	*h = append(*h, c)
}
func (h *convHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.sched.heapIndex = -1
	return c
}

// idleList links the conversations with rows, least recently active first.
type idleList struct{ head, tail *Conversation }

// idleLink is a conversation's place in the idle list.
type idleLink struct {
	prev, next *Conversation
	since      int64 // wall clock, Unix nanoseconds, of its latest new row
}

// toBack moves c to the back of the list: it has a new row at now.
func (l *idleList) toBack(c *Conversation, now int64) {
	c.idle.since = now
	if l.tail == c {
		return
	}
	l.unlink(c)
	c.idle.prev = l.tail
	if l.tail != nil {
		l.tail.idle.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *idleList) unlink(c *Conversation) {
	if c.idle.prev == nil && l.head != c {
		return // not linked
	}
	if c.idle.prev != nil {
		c.idle.prev.idle.next = c.idle.next
	} else {
		l.head = c.idle.next
	}
	if c.idle.next != nil {
		c.idle.next.idle.prev = c.idle.prev
	} else {
		l.tail = c.idle.prev
	}
	c.idle.prev, c.idle.next = nil, nil
}

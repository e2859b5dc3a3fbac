package activitypairprocessor

import (
	"container/heap"
	"math"
	"slices"

	"go.opentelemetry.io/collector/pdata/plog"
)

// trigger says why a turn was emitted.
type trigger uint8

const (
	triggerComplete trigger = iota // its next user message came, or reply_timeout passed, in ingestion time
	triggerTimeout                 // no new row of its conversation for reply_timeout, wall clock
	triggerEvicted                 // max_open_turns reached
	triggerShutdown                // shutdown without storage
	triggerCount
)

var triggerNames = [triggerCount]string{"complete", "timeout", "evicted", "shutdown"}

// outcome says what a turn holds.
type outcome uint8

const (
	outcomePaired outcome = iota
	outcomeRequestOnly
	outcomeResponseOnly
	outcomeFailed
	outcomeCount
)

// state is the pairing state: every buffered row, by conversation, and the
// ids of rows already emitted. It is not safe for concurrent use; the
// processor holds a lock around it.
type state struct {
	replyTimeout int64 // nanoseconds
	reorder      int64
	idsTTL       int64
	maxOpenTurns int
	maxBytes     int64

	convs     map[string]*conversation
	resources map[string]*resource
	interned  map[string]string // see intern
	// seen holds the item ids of the rows emitted within idsTTL (ingestion
	// time); a buffered row is recognised in its conversation.
	seen    idSet
	emptied fifo[emptiedConversation]

	deadlines          convHeap
	idleHead, idleTail *conversation

	// watermark is the latest ingestion time of any row read: everything
	// ingested before it has (nearly) all been read, since the receiver
	// reads in ingestion-time order.
	watermark int64
	// keepFrom is the earliest ingestion time in the latest batch read (0
	// until one is read after a start). The receiver stores its cursor only
	// after ConsumeLogs returns, so after a crash it may read that whole
	// batch again, and one batch can span more than idsTTL (a backlog):
	// the ids of its rows are kept until a later batch has come.
	keepFrom      int64
	openTurns     int
	bufferedRows  int
	bufferedBytes int64
	oversized     []*conversation // past maxConversationRows, found by refresh

	touched []*conversation
	pending []pendingRow // see addPending
	planner planner
	stack   []int
	stale   []*conversation
	scratch []byte
	warmth  byte     // see warmForInsert
	turn    turn     // the turn build is writing
	journal *journal // changes since the last save; nil without storage
}

type emptiedConversation struct {
	conv     *conversation
	observed int64
}

func newState(cfg *Config) *state {
	return &state{
		replyTimeout: int64(cfg.ReplyTimeout),
		reorder:      int64(cfg.ReorderWindow),
		idsTTL:       int64(cfg.EmittedIDsTTL),
		maxOpenTurns: cfg.MaxOpenTurns,
		maxBytes:     cfg.MaxBufferedBytes,
		convs:        map[string]*conversation{},
		resources:    map[string]*resource{},
		interned:     map[string]string{},
		seen:         newIDSet(),
		pending:      make([]pendingRow, 0, addWindow),
	}
}

// addStats counts what addLogs did not buffer.
type addStats struct {
	duplicates int
	malformed  []string // item ids (or a placeholder) of rows that cannot be paired
}

// addLogs buffers every row of ld that is neither malformed nor a duplicate,
// then re-plans the conversations it touched.
func (s *state) addLogs(ld plog.Logs, now int64) (st addStats) {
	oldest := int64(math.MaxInt64)
	defer func() {
		if oldest != math.MaxInt64 {
			s.keepFrom = oldest
		}
	}()
	for _, rl := range ld.ResourceLogs().All() {
		var res *resource
		for _, sl := range rl.ScopeLogs().All() {
			for _, rec := range sl.LogRecords().All() {
				if len(s.pending) == cap(s.pending) {
					s.addPending(now, &st)
				}
				s.pending = append(s.pending, pendingRow{})
				p := &s.pending[len(s.pending)-1]
				var item string
				p.rc, item = decodeRow(rec, &p.r)
				if item == "" || p.rc.conversation == "" {
					st.malformed = append(st.malformed, item)
					s.pending = s.pending[:len(s.pending)-1]
					continue
				}
				oldest = min(oldest, p.r.observed())
				if s.seen.contains(p.r.item, p.r.observed()) {
					st.duplicates++
					s.pending = s.pending[:len(s.pending)-1]
					continue
				}
				if res == nil {
					res = s.resourceOf(rl.Resource())
				}
				p.res = res
			}
		}
	}
	s.addPending(now, &st)
	for _, c := range s.touched {
		c.touched = false
		s.refresh(c)
	}
	s.touched = s.touched[:0]
	return st
}

// pendingRow is a decoded row waiting in state.pending.
type pendingRow struct {
	r    row
	rc   rowContext
	res  *resource
	conv *conversation // nil until looked up, or for a new conversation
}

// addWindow is how many decoded rows addLogs holds before adding them.
const addWindow = 16

// addPending adds the rows in s.pending. Their conversations were mostly
// last touched an input batch ago and have left the CPU caches: the
// conversations are looked up, and what inserting will compare is read,
// for all the rows first, so that their cache misses overlap instead of
// stalling each insert in turn.
func (s *state) addPending(now int64, st *addStats) {
	pending := s.pending
	for i := range pending {
		if c := s.convs[pending[i].rc.conversation]; c != nil {
			pending[i].conv = c
			s.warmth += warmForInsert(c)
		}
	}
	for i := range pending {
		p := &pending[i]
		if !s.addRow(&p.r, p.rc, p.res, p.conv, now) {
			st.duplicates++
		}
	}
	clear(pending)
	s.pending = pending[:0]
}

// warmForInsert reads what insertRow reads of c's latest rows (see
// readStrings).
func warmForInsert(c *conversation) (sum byte) {
	rows := c.rows[max(len(c.rows)-8, 0):]
	for i := range rows {
		sum += byte(rows[i].at)
		if a := rows[i].activity; a != "" {
			sum += a[0]
		}
	}
	return sum
}

// addRow buffers r in c (nil: looked up, or created); false when the
// conversation holds it already.
func (s *state) addRow(r *row, rc rowContext, res *resource, c *conversation, now int64) bool {
	if c == nil {
		c = s.convs[rc.conversation]
	}
	if c == nil {
		c = &conversation{id: rc.conversation, res: res, heapIndex: -1}
		s.convs[c.id] = c
	}
	if c.channel == "" {
		c.channel = rc.channel
	}
	if c.locale == "" {
		c.locale = rc.locale
	}
	r.topic = s.intern(r.topic)
	if r.kind == kindAction {
		r.detail = s.intern(r.detail)
	}
	if !c.insertRow(r) {
		return false
	}
	s.bufferedRows++
	c.bytes += rowBytes(r)
	s.bufferedBytes += rowBytes(r)
	c.lastObserved = max(c.lastObserved, r.observed())
	c.lastArrival = now
	s.watermark = max(s.watermark, r.observed())
	s.toIdleBack(c)
	if !c.touched {
		c.touched = true
		s.touched = append(s.touched, c)
	}
	if s.journal != nil {
		s.journal.add(c, *r)
	}
	return true
}

// maxInterned bounds the table of shared topic names and node kinds.
const maxInterned = 1 << 14

// intern returns the one copy kept of a topic name or node kind: an agent
// has a few dozen, repeated on most rows.
func (s *state) intern(v string) string {
	if v == "" {
		return v
	}
	if w, ok := s.interned[v]; ok {
		return w
	}
	if len(s.interned) < maxInterned {
		s.interned[v] = v
	}
	return v
}

// refresh re-plans c after its rows changed: its open turns and the
// ingestion time at which its first open turn will be complete.
func (s *state) refresh(c *conversation) {
	s.openTurns -= int(c.openTurns)
	c.openTurns = 0
	if len(c.rows) == 0 {
		if c.heapIndex >= 0 {
			heap.Remove(&s.deadlines, int(c.heapIndex))
		}
		s.unlinkIdle(c)
		s.emptied.push(emptiedConversation{c, c.lastObserved})
		return
	}
	p := &s.planner
	p.plan(c)
	for i := range p.plans {
		if len(p.plans[i].rows) > 0 {
			c.openTurns++
		}
	}
	s.openTurns += int(c.openTurns)
	if len(c.rows) > maxConversationRows {
		s.oversized = append(s.oversized, c)
	}
	n, d := s.completeTurns(c)
	c.dueAt, c.dueTurns, c.dueValid = s.watermark, int32(n), d == math.MinInt64
	switch {
	case c.heapIndex < 0:
		c.deadline = d
		heap.Push(&s.deadlines, c)
	case d < c.deadline || c.deadline <= s.watermark:
		// Earlier than the heap knows, or the heap has it due: fix now.
		c.deadline = d
		heap.Fix(&s.deadlines, int(c.heapIndex))
	default:
		// Later: the heap keeps the earlier time. When the watermark passes
		// it, selectComplete finds nothing due and moves it then; most new
		// rows push a deadline later, and this saves a sift for each.
	}
}

// completeTurns says how many of the chronological turns in s.planner (just
// planned for c) are complete at the watermark, and when to look again.
//
// Everything is measured in ingestion time, which is the order the receiver
// reads rows in: a turn ends when its next user message has been read (and
// its own rows), and is complete once rows ingested reorder_window after
// that have been read too, so that a reply ingested after the next message
// still joins it. The last turn of a conversation ends reply_timeout after
// its latest row was ingested, and so does a turn holding a reply whose
// message has not been seen (it may still come). Whole conversations ingested late keep the
// same spacing, so they are paired as well as the others.
//
// Only a prefix can be complete: a turn is never emitted before an earlier
// one, so a late reply always finds its request still buffered.
func (s *state) completeTurns(c *conversation) (n int, deadline int64) {
	p := &s.planner
	for ; n < p.chronological; n++ {
		pl := &p.plans[n]
		end := pl.ingested + s.replyTimeout
		if n+1 < p.chronological {
			end = max(p.plans[n+1].opened, pl.ingested)
		}
		if pl.waiting != 0 {
			end = max(end, pl.waiting+s.replyTimeout)
		}
		if s.watermark < end+s.reorder {
			deadline = end + s.reorder
			break
		}
	}
	if n > 0 || n == p.chronological || len(p.plans) > p.chronological {
		deadline = math.MinInt64 // something to emit now (late replies to emitted turns included)
	}
	return n, deadline
}

// batch is a set of turns selected for emission. Nothing in the state
// changes until commit, so a batch the next consumer refused is dropped
// and the same turns are selected again next time.
type batch struct {
	convs   []*conversation
	trigger trigger // of turns not complete on their own

	// filled by build
	spans   []removal
	indices []int32
	counts  [outcomeCount][triggerCount]int
}

type removal struct {
	conv       *conversation
	from, to   int // in batch.indices: rows emitted
	turns      int
	observedAt int64
}

func (b *batch) empty() bool { return len(b.convs) == 0 }

// clearOutput forgets what build wrote, keeping the selection.
func (b *batch) clearOutput() {
	b.spans = b.spans[:0]
	b.indices = b.indices[:0]
	b.counts = [outcomeCount][triggerCount]int{}
}

func (b *batch) reset(t trigger) {
	for _, c := range b.convs {
		c.take, c.due, c.inBatch = 0, 0, false
	}
	b.convs = b.convs[:0]
	b.spans = b.spans[:0]
	b.indices = b.indices[:0]
	b.trigger = t
	b.counts = [outcomeCount][triggerCount]int{}
}

// selectTurns adds c's first take chronological turns (and any late-reply
// turns) to b; the first due of them are complete on their own.
func (b *batch) selectTurns(c *conversation, due, take int) {
	if !c.inBatch {
		c.inBatch = true
		b.convs = append(b.convs, c)
	}
	c.due = max(c.due, int32(due))
	c.take = max(c.take, int32(take), int32(due))
}

// selectComplete adds every complete turn to b. The heap is walked, not
// popped: only the conversations whose deadline has passed are visited.
func (s *state) selectComplete(b *batch) {
	stack := append(s.stack[:0], 0)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(s.deadlines) || s.deadlines[i].deadline > s.watermark {
			continue
		}
		c := s.deadlines[i]
		if c.dueValid && c.dueAt == s.watermark {
			// refresh found these turns complete at this watermark, and
			// nothing changed since
			b.selectTurns(c, int(c.dueTurns), int(c.dueTurns))
			stack = append(stack, 2*i+1, 2*i+2)
			continue
		}
		s.planner.plan(c)
		n, d := s.completeTurns(c)
		if d == math.MinInt64 {
			b.selectTurns(c, n, n)
		} else {
			c.deadline = d // kept early by refresh: put it right below
			s.stale = append(s.stale, c)
		}
		stack = append(stack, 2*i+1, 2*i+2)
	}
	s.stack = stack
	for _, c := range s.stale {
		heap.Fix(&s.deadlines, int(c.heapIndex))
	}
	clear(s.stale)
	s.stale = s.stale[:0]
}

// selectEvictions adds the oldest turns of the least recently active
// conversations until at most max_open_turns stay open, then whole least
// recently active conversations until max_buffered_bytes is met, and every
// turn of a conversation holding more than maxConversationRows rows.
func (s *state) selectEvictions(b *batch) {
	for _, c := range s.oversized {
		if len(c.rows) > maxConversationRows {
			b.selectTurns(c, int(c.due), math.MaxInt32)
		}
	}
	clear(s.oversized)
	s.oversized = s.oversized[:0]

	if excess := s.openTurns - s.maxOpenTurns; excess > 0 {
		for _, c := range b.convs {
			excess -= int(min(c.take, c.openTurns))
		}
		for c := s.idleHead; c != nil && excess > 0; c = c.idleNext {
			room := int(c.openTurns - c.take)
			if room <= 0 {
				continue
			}
			n := min(room, excess)
			b.selectTurns(c, int(c.due), int(c.take)+n)
			excess -= n
		}
	}

	if excess := s.bufferedBytes - s.maxBytes; excess > 0 {
		for _, c := range b.convs {
			if int(c.take) >= int(c.openTurns) {
				excess -= c.bytes
			}
		}
		for c := s.idleHead; c != nil && excess > 0; c = c.idleNext {
			if int(c.take) < int(c.openTurns) {
				b.selectTurns(c, int(c.due), math.MaxInt32)
				excess -= c.bytes
			}
		}
	}
}

// selectIdle adds every turn of the conversations with no new row since
// before idleSince (wall clock).
func (s *state) selectIdle(b *batch, idleSince int64) {
	for c := s.idleHead; c != nil && c.lastArrival <= idleSince; c = c.idleNext {
		s.planner.plan(c)
		n, _ := s.completeTurns(c)
		b.selectTurns(c, n, len(s.planner.plans))
	}
}

// selectAll adds every open turn.
func (s *state) selectAll(b *batch) {
	for c := s.idleHead; c != nil; c = c.idleNext {
		s.planner.plan(c)
		n, _ := s.completeTurns(c)
		b.selectTurns(c, n, len(s.planner.plans))
	}
}

// commit applies a batch the next consumer accepted: its rows leave the
// buffer and their ids are remembered as emitted.
func (s *state) commit(b *batch) {
	for _, sp := range b.spans {
		c := sp.conv
		idx := b.indices[sp.from:sp.to]
		slices.Sort(idx)
		for _, i := range idx {
			r := &c.rows[i]
			if r.kind == kindRequest || r.kind == kindEvent {
				c.rememberAsk(r.activity)
			}
			s.seen.emitted(r.item, r.observed())
			if s.journal != nil {
				s.journal.emit(c, r.item, r.observed())
			}
		}
		for _, i := range idx {
			n := rowBytes(&c.rows[i])
			c.bytes -= n
			s.bufferedBytes -= n
		}
		c.rows = removeIndices(c.rows, idx)
		s.bufferedRows -= len(idx)
		c.nextIndex += int32(sp.turns)
		if s.journal != nil {
			s.journal.touch(c)
		}
	}
	for _, c := range b.convs {
		c.take, c.due, c.inBatch = 0, 0, false
		s.refresh(c)
	}
	b.convs = b.convs[:0]
}

// removeIndices removes the rows at the sorted indices idx. An emptied
// conversation is kept for a while (its emitted asks), so it must not keep
// its row array: that held most of the processor's memory in a backlog
// replay (195 MB for 142,000 buffered rows).
func removeIndices(rows []row, idx []int32) []row {
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

// prune forgets emitted ids and empty conversations older than idsTTL in
// ingestion time.
func (s *state) prune() {
	if s.keepFrom == 0 {
		return // nothing read since the start: the last batch may come again
	}
	horizon := min(s.watermark, s.keepFrom) - s.idsTTL
	s.seen.prune(horizon)
	for e, ok := s.emptied.peek(); ok && e.observed < horizon; e, ok = s.emptied.peek() {
		s.emptied.pop()
		c := e.conv
		if len(c.rows) == 0 && c.lastObserved == e.observed && s.convs[c.id] == c {
			delete(s.convs, c.id)
		}
	}
}

func (s *state) toIdleBack(c *conversation) {
	if s.idleTail == c {
		return
	}
	s.unlinkIdle(c)
	c.idlePrev = s.idleTail
	if s.idleTail != nil {
		s.idleTail.idleNext = c
	} else {
		s.idleHead = c
	}
	s.idleTail = c
}

func (s *state) unlinkIdle(c *conversation) {
	if c.idlePrev == nil && s.idleHead != c {
		return // not linked
	}
	if c.idlePrev != nil {
		c.idlePrev.idleNext = c.idleNext
	} else {
		s.idleHead = c.idleNext
	}
	if c.idleNext != nil {
		c.idleNext.idlePrev = c.idlePrev
	} else {
		s.idleTail = c.idlePrev
	}
	c.idlePrev, c.idleNext = nil, nil
}

// convHeap orders conversations by deadline.
type convHeap []*conversation

func (h convHeap) Len() int           { return len(h) }
func (h convHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h convHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = int32(i), int32(j)
}
func (h *convHeap) Push(x any) {
	c := x.(*conversation)
	c.heapIndex = int32(len(*h))
	*h = append(*h, c)
}
func (h *convHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.heapIndex = -1
	return c
}

// fifo is a queue kept in fixed-size blocks, so that a long queue neither
// copies itself when it grows nor holds a backing array larger than needed.
type fifo[T any] struct {
	blocks [][]T // the first holds the head, the last the tail
	head   int   // index in blocks[0]
	n      int
}

const fifoBlock = 4096

func (f *fifo[T]) push(v T) {
	if len(f.blocks) == 0 || len(f.blocks[len(f.blocks)-1]) == fifoBlock {
		f.blocks = append(f.blocks, make([]T, 0, fifoBlock))
	}
	last := &f.blocks[len(f.blocks)-1]
	*last = append(*last, v)
	f.n++
}

func (f *fifo[T]) peek() (T, bool) {
	if f.n == 0 {
		var zero T
		return zero, false
	}
	return f.blocks[0][f.head], true
}

func (f *fifo[T]) pop() {
	var zero T
	f.blocks[0][f.head] = zero
	f.head++
	f.n--
	if f.head == len(f.blocks[0]) {
		f.blocks[0] = nil
		f.blocks = f.blocks[1:]
		f.head = 0
	}
}

func (f *fifo[T]) len() int { return f.n }

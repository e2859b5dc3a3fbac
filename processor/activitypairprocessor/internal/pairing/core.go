package pairing

import (
	"math"
	"strings"
	"time"
)

// Config is what the core is told; the processor's configuration keys of
// the same names say what each does.
type Config struct {
	ReplyTimeout     time.Duration
	ReorderWindow    time.Duration
	EmittedIDsTTL    time.Duration
	MaxOpenTurns     int
	MaxBufferedBytes int64
	// KeepChanges collects the changes since the last save (Changes), for
	// a caller that stores them.
	KeepChanges bool
	// OriginOf says which origin (SetReplayFrom) the rows of a source come
	// from; asked once per source. Nil: none.
	OriginOf func(Source) Origin
}

// Core is the pairing state: every buffered row, by conversation, and the
// ids of rows already emitted. It is not safe for concurrent use.
type Core struct {
	replyTimeout int64 // nanoseconds
	reorder      int64
	idsTTL       int64

	convs map[string]*Conversation
	// seen holds the item ids of the rows emitted within idsTTL (ingestion
	// time); a buffered row is recognised in its conversation.
	seen    idSet
	emptied fifo[emptiedConversation] // conversations without rows, oldest first
	mem     usage                     // memory.go

	deadlines convHeap // schedule.go
	idle      idleList // schedule.go

	// watermark is the latest ingestion time of any row read: everything
	// ingested before it has (nearly) all been read, since the receiver
	// reads in ingestion-time order.
	watermark int64
	// keepFrom is the earliest ingestion time in the latest batch read (0
	// until one is read after a start). The receiver stores its cursor only
	// after the batch is accepted, so after a crash it may read that whole
	// batch again, and one batch can span more than idsTTL (a backlog):
	// the ids of its rows are kept until a later batch has come.
	keepFrom int64
	// batchOldest is the earliest ingestion time of the batch being added.
	batchOldest int64

	// replayFrom is, by origin, the latest ingestion time before which its
	// source delivers no row again (0: it never said); srcOrigin caches
	// originOf, by Source, as origin+1 (0: not asked yet).
	replayFrom [MaxOrigins]int64
	srcOrigin  []uint8
	originOf   func(Source) Origin
	// forgotten counts what the memory budget gave up (fitBudget).
	forgotten Forgotten

	// owning is set from EndBatch to Settle: the rows of the batch (ingested
	// at or after keepFrom) still get strings of their own (memory.go), and
	// due holds the conversations whose rows wait for Commit for it.
	owning bool
	due    []*Conversation

	touched   []*Conversation // rows added in the current batch
	oversized []*Conversation // past maxConversationRows, found by refresh
	planner   planner
	stack     []int           // selectComplete's walk of the heap
	stale     []*Conversation // selectComplete's deadlines to move later
	journal   *journal        // changes.go; nil without KeepChanges
	warmth    byte            // warm.go
}

type emptiedConversation struct {
	conv     *Conversation
	observed int64
}

// New returns an empty core.
func New(cfg Config) *Core {
	c := &Core{
		replyTimeout: int64(cfg.ReplyTimeout),
		reorder:      int64(cfg.ReorderWindow),
		idsTTL:       int64(cfg.EmittedIDsTTL),
		convs:        map[string]*Conversation{},
		seen:         newIDSet(),
		mem:          newUsage(cfg),
		batchOldest:  math.MaxInt64,
		originOf:     cfg.OriginOf,
	}
	c.seen.replayFrom = &c.replayFrom
	if cfg.KeepChanges {
		c.journal = &journal{}
	}
	return c
}

// Add buffers the rows of in, part of the current batch (see EndBatch),
// and returns how many it dropped as duplicates: emitted before, or
// buffered already. now is the wall clock, Unix nanoseconds. Rows are best
// given a few at a time (see warm.go); Add may change them.
func (c *Core) Add(in []Input, now int64) (duplicates int) {
	for i := range in {
		if o := in[i].Row.Observed(); o < c.batchOldest {
			c.batchOldest = o
		}
	}
	c.lookUp(in)
	for i := range in {
		p := &in[i]
		if c.seen.contains(p.Row.Item, p.Row.Observed()) || !c.addRow(&p.Row, &p.Context, p.Source, p.conv, now) {
			duplicates++
		}
		p.conv = nil
	}
	return duplicates
}

// addRow buffers r in conv (nil: looked up, or created); false when the
// conversation holds it already.
func (c *Core) addRow(r *Row, rc *Context, src Source, conv *Conversation, now int64) bool {
	if conv == nil {
		conv = c.convs[rc.Conversation]
	}
	if conv == nil {
		conv = newConversation(strings.Clone(rc.Conversation), src)
		c.convs[conv.id] = conv
		c.mem.convs += convBytes(conv)
	}
	if conv.channel == "" && rc.Channel != "" {
		conv.channel = c.mem.keep(rc.Channel)
	}
	if conv.locale == "" && rc.Locale != "" {
		conv.locale = c.mem.keep(rc.Locale)
	}
	c.mem.shareNames(r)
	slots := cap(conv.rows)
	if !conv.insert(r) {
		return false
	}
	c.mem.resized(conv, slots)
	c.mem.hold(conv, r)
	conv.lastObserved = max(conv.lastObserved, r.Observed())
	c.watermark = max(c.watermark, r.Observed())
	c.idle.toBack(conv, now)
	if !conv.touched {
		conv.touched = true
		c.touched = append(c.touched, conv)
	}
	if c.journal != nil {
		c.journal.add(conv, *r)
	}
	return true
}

// EndBatch ends the batch Add was given: the conversations it added rows
// to are planned again, and ids of its rows are kept (see keepFrom).
func (c *Core) EndBatch() {
	if c.batchOldest != math.MaxInt64 {
		c.keepFrom = c.batchOldest
		c.batchOldest = math.MaxInt64
	}
	clear(c.due)
	c.due = c.due[:0]
	c.owning = len(c.touched) > 0
	for _, conv := range c.touched {
		conv.touched = false
		c.refresh(conv)
		if conv.sched.dueAt == c.watermark {
			c.due = append(c.due, conv) // Commit gives what stays strings of its own
		} else {
			c.ownBatchRows(conv) // just planned: its rows are in the CPU caches
		}
	}
	clear(c.touched)
	c.touched = c.touched[:0]
	c.fitBudget() // before evictions are selected: forgetting costs less
}

// Prune forgets emitted ids and empty conversations older than
// emitted_ids_ttl in ingestion time (ids only once their origin's
// replay_from has passed them too), then what the memory budget cannot
// hold (fitBudget). Call it after each batch and sweep, once the selection
// is committed.
func (c *Core) Prune() {
	if c.keepFrom != 0 { // else nothing was read since the start: the last batch may come again
		horizon := min(c.watermark, c.keepFrom) - c.idsTTL
		c.seen.prune(horizon)
		for e, ok := c.emptied.peek(); ok && e.observed < horizon; e, ok = c.emptied.peek() {
			c.emptied.pop()
			c.forget(e)
		}
	}
	c.fitBudget()
}

// forget drops the conversation of an entry of the emptied queue, unless
// it has rows again or was emptied again since.
func (c *Core) forget(e emptiedConversation) bool {
	conv := e.conv
	if len(conv.rows) != 0 || conv.lastObserved != e.observed || c.convs[conv.id] != conv {
		return false
	}
	delete(c.convs, conv.id)
	c.mem.convs -= convBytes(conv)
	return true
}

// OpenTurns is how many turns the buffered rows make.
func (c *Core) OpenTurns() int { return c.mem.openTurns }

// BufferedRows is how many rows are buffered.
func (c *Core) BufferedRows() int { return c.mem.rows }

// BufferedBytes is what the buffered rows count against max_buffered_bytes.
func (c *Core) BufferedBytes() int64 { return c.mem.bytes }

// EmittedIDs is how many ids of emitted rows are remembered.
func (c *Core) EmittedIDs() int { return c.seen.n }

// Watermark is the latest ingestion time read.
func (c *Core) Watermark() int64 { return c.watermark }

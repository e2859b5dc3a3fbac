package activitypairprocessor

import "slices"

// conversation holds the buffered rows of one conversation and what is
// remembered of the turns it already emitted.
type conversation struct {
	id      string
	res     *resource
	channel string
	locale  string
	rows    []row // buffered, ordered by (event time, item id)

	// emittedAsks are hashes (askHash) of the activity ids of the requests
	// (and events) of its latest emitted turns: a reply to one of them that
	// comes late becomes a turn of its own instead of joining a later turn
	// by mistake.
	emittedAsks  []uint64
	lastObserved int64 // latest ingestion time of its rows
	lastArrival  int64 // wall clock, Unix nanoseconds, of its latest new row

	deadline int64 // ingestion time at which its first open turn is complete
	bytes    int64 // rowBytes of its rows

	// idle list, least recently active first; only conversations with rows
	idlePrev, idleNext *conversation

	// dueAt is the watermark at which refresh last found turns to emit now,
	// dueTurns how many of its chronological turns were complete then, and
	// dueValid that its rows and asks have not changed since: selectComplete
	// then selects them without planning the conversation again.
	dueAt    int64
	dueTurns int32

	nextIndex int32 // {n} of its next emitted turn
	openTurns int32
	heapIndex int32 // position in state.deadlines, -1 when absent
	take      int32 // turns selected for emission in the current call
	due       int32 // of which complete on their own; the rest by the batch's trigger

	// (the small fields last, so that the struct packs into 192 bytes)
	dueValid  bool
	touched   bool // rows added in the current call
	inBatch   bool // selected for emission in the current call
	journaled bool // in state.journal.convs
}

// maxConversationRows bounds the rows one conversation holds: a
// conversation that never pauses (an autonomous agent talking to itself)
// has its turns emitted early past it.
const maxConversationRows = 10000

// rowOverhead is what a buffered row costs beyond its strings, for the
// max_buffered_bytes budget.
const rowOverhead = 128

// rowBytes is the memory a buffered row holds.
func rowBytes(r *row) int64 {
	return rowOverhead + int64(len(r.item.text)+len(r.activity)+len(r.replyTo)+len(r.text)+len(r.detail))
}

// maxEmittedAsks bounds conversation.emittedAsks.
const maxEmittedAsks = 16

// insert adds r in order, unless the conversation holds it already. Rows
// mostly arrive in order, so the search from the end is short.
func (c *conversation) insert(r row) bool { return c.insertRow(&r) }

// insertRow is insert without copying r (128 bytes) on the way in; it may
// change r.replyTo to the shared string.
func (c *conversation) insertRow(r *row) bool {
	c.dueValid = false
	if r.replyTo != "" {
		// Hold one copy of the id the reply and its message share. Only
		// asks are answered, and the latest most often.
		for k := len(c.rows) - 1; k >= 0; k-- {
			if ask := &c.rows[k]; (ask.kind == kindRequest || ask.kind == kindEvent) && ask.activity == r.replyTo {
				r.replyTo = ask.activity
				break
			}
		}
	}
	i := len(c.rows)
	for i > 0 && r.before(&c.rows[i-1]) {
		i--
	}
	if i > 0 && c.rows[i-1].at == r.at && c.rows[i-1].item == r.item {
		return false
	}
	if i == len(c.rows) {
		c.rows = append(c.rows, *r) // in order: the common case
		return true
	}
	c.rows = slices.Insert(c.rows, i, *r)
	return true
}

func (c *conversation) emittedAsk(id string) bool {
	return slices.Contains(c.emittedAsks, askHash(id))
}

func (c *conversation) rememberAsk(id string) {
	if id == "" {
		return
	}
	c.dueValid = false
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

// askIndexMin is how many asks a conversation has before the planner looks
// reply-to ids up in a map rather than scanning.
const askIndexMin = 32

// turnPlan is one turn the buffered rows of a conversation make.
type turnPlan struct {
	rows    []int32 // indices into conversation.rows, in order
	request int32   // index of the user message, -1 for none
	start   int64   // event time of its first chronological row
	// opened is the ingestion time of its user message (of its first row
	// when it has none); ingested the latest ingestion time of its rows.
	opened   int64
	ingested int64
	// waiting is the latest ingestion time of a reply in it whose reply-to
	// id names no activity seen yet: its message may still come, so the
	// turn waits reply_timeout for it before the reply stays where time puts it.
	waiting int64
	// orphanOf is set on a turn of late replies to an ask emitted earlier:
	// nothing more can join that turn, so it is complete at once.
	orphanOf string
}

// planner splits a conversation's rows into turns. It is a pure function of
// the buffered rows (and the asks already emitted), so the result does not
// depend on the order the rows arrived in. Its buffers are reused.
type planner struct {
	turnOf []int32
	asks   []int32 // indices of request and event rows
	flat   []int32
	counts []int32
	// askIndex maps activity ids to turns when a conversation has more than
	// askIndexMin asks; built on first use in each plan.
	askIndex map[string]int32
	plans    []turnPlan
	// chronological is how many plans are chronological; orphans follow.
	chronological int
}

// plan fills p.plans for c. Rows are cut into turns at each user message;
// rows before the first one make a turn without a request (a greeting, or
// rows of a turn emitted earlier that came late). A reply with a reply-to
// id joins the turn holding that activity; without one, or when the id is
// not known, it joins by time like any other row.
func (p *planner) plan(c *conversation) {
	n := len(c.rows)
	p.turnOf = p.turnOf[:0]
	p.asks = p.asks[:0]
	p.plans = p.plans[:0]
	p.askIndex = nil
	cur := int32(-1)
	for i := range c.rows {
		r := &c.rows[i]
		if r.kind == kindRequest || cur < 0 {
			req := int32(-1)
			if r.kind == kindRequest {
				req = int32(i)
			}
			p.plans = append(p.plans, turnPlan{request: req, start: r.at, opened: r.observed()})
			cur = int32(len(p.plans) - 1)
		}
		if r.kind == kindRequest || r.kind == kindEvent {
			p.asks = append(p.asks, int32(i))
		}
		p.turnOf = append(p.turnOf, cur)
	}
	p.chronological = len(p.plans)

	for i := range c.rows {
		r := &c.rows[i]
		if r.kind != kindReply || r.replyTo == "" {
			continue
		}
		if t := p.turnOfAsk(c, r.replyTo); t >= 0 {
			p.turnOf[i] = t
		} else if c.emittedAsk(r.replyTo) {
			p.turnOf[i] = p.orphanTurn(c, r.replyTo)
		} else {
			pl := &p.plans[p.turnOf[i]]
			pl.waiting = max(pl.waiting, r.observed())
		}
	}

	// Counting sort of row indices by turn: each plan's rows are a slice of flat.
	counts := slices.Grow(p.counts[:0], len(p.plans)+1)[:len(p.plans)+1]
	clear(counts)
	p.counts = counts
	for _, t := range p.turnOf {
		counts[t+1]++
	}
	for t := 1; t < len(counts); t++ {
		counts[t] += counts[t-1]
	}
	p.flat = slices.Grow(p.flat[:0], n)[:n]
	for t := range p.plans {
		p.plans[t].rows = p.flat[counts[t]:counts[t]:counts[t+1]]
	}
	for i, t := range p.turnOf {
		pl := &p.plans[t]
		if len(pl.rows) == 0 && pl.orphanOf != "" {
			pl.start, pl.opened = c.rows[i].at, c.rows[i].observed()
		}
		pl.rows = append(pl.rows, int32(i))
		pl.ingested = max(pl.ingested, c.rows[i].observed())
	}
}

func (p *planner) turnOfAsk(c *conversation, activity string) int32 {
	if len(p.asks) > askIndexMin {
		// A long conversation: look the id up instead of scanning.
		if p.askIndex == nil {
			p.askIndex = make(map[string]int32, len(p.asks))
			for _, i := range p.asks {
				if _, dup := p.askIndex[c.rows[i].activity]; !dup {
					p.askIndex[c.rows[i].activity] = p.turnOf[i]
				}
			}
		}
		if t, ok := p.askIndex[activity]; ok {
			return t
		}
		return -1
	}
	for _, i := range p.asks {
		if c.rows[i].activity == activity {
			return p.turnOf[i]
		}
	}
	return -1
}

// orphanTurn returns the turn collecting the late replies to activity, an
// ask emitted before, creating it at the first.
func (p *planner) orphanTurn(c *conversation, activity string) int32 {
	for t := p.chronological; t < len(p.plans); t++ {
		if p.plans[t].orphanOf == activity {
			return int32(t)
		}
	}
	p.plans = append(p.plans, turnPlan{request: -1, orphanOf: activity})
	return int32(len(p.plans) - 1)
}

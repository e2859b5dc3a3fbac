package pairing

import "slices"

// askIndexMin is how many asks a conversation has before the planner looks
// reply-to ids up in a map rather than scanning.
const askIndexMin = 32

// turnPlan is one turn the buffered rows of a conversation make.
type turnPlan struct {
	rows    []int32 // indices into Conversation.rows, in order
	request int32   // index of the user message, -1 for none
	start   int64   // event time of its first chronological row
	// opened is the ingestion time of its user message (of its first row
	// when it has none); ingested the latest ingestion time of its rows.
	opened   int64
	ingested int64
	// waiting is the latest ingestion time of a row in it placed by a
	// reply-to id that names no activity seen yet: its message may still
	// come, so the turn waits reply_timeout for it before the row stays
	// where time puts it.
	waiting int64
	// orphanOf is set on a turn of late replies to an ask emitted earlier:
	// nothing more can join that turn, so it is complete at once.
	orphanOf string
	// context is how many of its rows are conversation-level (KindContext):
	// held with it, in none of its output.
	context int32
}

// emittable reports whether the turn has rows to write: a turn of only
// conversation-level rows leaves without a record.
func (pl *turnPlan) emittable() bool { return len(pl.rows) > int(pl.context) }

// planner splits a conversation's rows into turns. It is a pure function of
// the buffered rows (and the asks already emitted), so the result does not
// depend on the order the rows arrived in. Its buffers are reused.
type planner struct {
	turnOf []int32
	asks   []int32 // indices of the rows a reply-to id can name
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
// rows of a turn emitted earlier that came late). A row that joins by
// reply-to id (a reply, a step) joins the turn holding that activity;
// without one, or when the id is not known, it joins by time like any
// other row. Conversation-level rows open no turn: those before the first
// turn join it (or, when there is none, make a turn of their own, which is
// never written).
func (p *planner) plan(c *Conversation) {
	n := len(c.rows)
	p.turnOf = p.turnOf[:0]
	p.asks = p.asks[:0]
	p.plans = p.plans[:0]
	p.askIndex = nil
	cur := int32(-1)
	deferred := 0 // conversation-level rows before the first turn: a prefix
	for i := range c.rows {
		r := &c.rows[i]
		if cur < 0 && r.Kind.in(conversationLevel) {
			p.turnOf = append(p.turnOf, 0)
			deferred++
			continue
		}
		if opens := r.Kind.in(opensTurn); opens || cur < 0 {
			req := int32(-1)
			if opens {
				req = int32(i)
			}
			p.plans = append(p.plans, turnPlan{request: req, start: r.At, opened: r.Observed()})
			cur = int32(len(p.plans) - 1)
		}
		if r.Kind.in(asks) {
			p.asks = append(p.asks, int32(i))
		}
		p.turnOf = append(p.turnOf, cur)
	}
	if deferred > 0 && len(p.plans) == 0 {
		p.plans = append(p.plans, turnPlan{request: -1, start: c.rows[0].At, opened: c.rows[0].Observed()})
	}
	p.chronological = len(p.plans)

	for i := range c.rows {
		r := &c.rows[i]
		if !r.Kind.in(joinsByReplyTo) || r.ReplyTo == "" {
			continue
		}
		if t := p.turnOfAsk(c, r.ReplyTo); t >= 0 {
			p.turnOf[i] = t
		} else if c.emittedAsk(r.ReplyTo) {
			p.turnOf[i] = p.orphanTurn(r.ReplyTo)
		} else {
			pl := &p.plans[p.turnOf[i]]
			pl.waiting = max(pl.waiting, r.Observed())
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
			pl.start, pl.opened = c.rows[i].At, c.rows[i].Observed()
		}
		pl.rows = append(pl.rows, int32(i))
		pl.ingested = max(pl.ingested, c.rows[i].Observed())
		if c.rows[i].Kind.in(conversationLevel) {
			pl.context++
		}
	}
}

func (p *planner) turnOfAsk(c *Conversation, activity string) int32 {
	if len(p.asks) > askIndexMin {
		// A long conversation: look the id up instead of scanning.
		if p.askIndex == nil {
			p.askIndex = make(map[string]int32, len(p.asks))
			for _, i := range p.asks {
				if _, dup := p.askIndex[c.rows[i].Activity]; !dup {
					p.askIndex[c.rows[i].Activity] = p.turnOf[i]
				}
			}
		}
		if t, ok := p.askIndex[activity]; ok {
			return t
		}
		return -1
	}
	for _, i := range p.asks {
		if c.rows[i].Activity == activity {
			return p.turnOf[i]
		}
	}
	return -1
}

// orphanTurn returns the turn collecting the late replies to activity, an
// ask emitted before, creating it at the first.
func (p *planner) orphanTurn(activity string) int32 {
	for t := p.chronological; t < len(p.plans); t++ {
		if p.plans[t].orphanOf == activity {
			return int32(t)
		}
	}
	p.plans = append(p.plans, turnPlan{request: -1, orphanOf: activity})
	return int32(len(p.plans) - 1)
}

// emittableIn counts the plans in [from, to) that have rows to write.
func (p *planner) emittableIn(from, to int) int {
	n := 0
	for k := from; k < to; k++ {
		if p.plans[k].emittable() {
			n++
		}
	}
	return n
}

// nonEmpty counts the plans in [from, to) that hold rows.
func (p *planner) nonEmpty(from, to int) int {
	n := 0
	for k := from; k < to; k++ {
		if len(p.plans[k].rows) > 0 {
			n++
		}
	}
	return n
}

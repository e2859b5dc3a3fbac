package pairing

// What the core holds, counted against max_open_turns and
// max_buffered_bytes, and how it is kept small. Every change to the counts
// goes through usage.

// RowOverhead is what a buffered row costs beyond its strings, for the
// max_buffered_bytes budget.
const RowOverhead = 128

// rowBytes is the memory a buffered row holds.
func rowBytes(r *Row) int64 {
	return RowOverhead + int64(r.Item.textLen()+len(r.Activity)+len(r.ReplyTo)+len(r.Text)+len(r.Detail))
}

// textLen is the length of a non-GUID id's text (a GUID costs nothing
// beyond the row).
func (i ItemID) textLen() int { return len(i.text) }

// usage is what the core holds, in total and per conversation.
type usage struct {
	rows      int
	bytes     int64 // rowBytes of the buffered rows
	openTurns int

	maxOpenTurns int
	maxBytes     int64

	// names holds one copy of each topic name and node kind: an agent has
	// a few dozen, repeated on most rows.
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

// setOpenTurns records how many turns c's rows make.
func (u *usage) setOpenTurns(c *Conversation, n int32) {
	u.openTurns += int(n - c.openTurns)
	c.openTurns = n
}

// turnsOver is how many open turns are beyond max_open_turns.
func (u *usage) turnsOver() int { return u.openTurns - u.maxOpenTurns }

// bytesOver is how many buffered bytes are beyond max_buffered_bytes.
func (u *usage) bytesOver() int64 { return u.bytes - u.maxBytes }

// shareNames makes r hold the one kept copy of its topic name (and node
// kind).
func (u *usage) shareNames(r *Row) {
	r.Topic = u.name(r.Topic)
	if r.Kind.in(namedDetail) {
		r.Detail = u.name(r.Detail)
	}
}

func (u *usage) name(v string) string {
	if v == "" {
		return v
	}
	if w, ok := u.names[v]; ok {
		return w
	}
	if len(u.names) < maxNames {
		u.names[v] = v
	}
	return v
}

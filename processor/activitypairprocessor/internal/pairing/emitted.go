package pairing

import (
	"encoding/binary"
	"iter"
	"math/bits"
	"strings"
	"time"
)

// idSet holds the item ids of the rows emitted within emitted_ids_ttl, so
// that a row fetched again is dropped. A row fetched again carries the same
// ingestion time as the first time, so ids are kept in buckets by ingestion
// time: a lookup touches one small table, not one holding an hour of ids,
// and expiry drops whole buckets. GUIDs are kept in tables without pointers,
// which the garbage collector does not scan.
//
// An id is kept for emitted_ids_ttl, and also until the replay_from of the
// origin its row came from has passed it: a receiver that had a later
// batch of a window refused, or crashed, reads the whole window again from
// there, however long ago that is.
type idSet struct {
	buckets map[int64]*IDBucket // by BucketOf(observed)
	n       int
	bytes   int64 // what the tables take (memory.go)
	// replayFrom is the core's, by origin (nil: ttl only).
	replayFrom *[MaxOrigins]int64
	// last is the bucket found last, at key lastKey: consecutive rows
	// mostly fall in the same bucket, and this saves a map lookup per row.
	last    *IDBucket
	lastKey int64
}

// IDBucketWidth is the span of ingestion time one bucket of emitted ids
// covers. Stored state names buckets (BucketOf), not times.
const IDBucketWidth = int64(10 * time.Second)

// IDBucket is the emitted ids of one IDBucketWidth of ingestion time.
type IDBucket struct {
	guids  guidSet
	others map[string]struct{}
	// origins has bit o set when it holds ids of rows from Origin o > 0.
	origins     uint64
	othersBytes int64 // what others takes (memory.go)
}

// Origins has bit o set when the bucket holds ids of rows from Origin o
// (o > 0).
func (b *IDBucket) Origins() uint64 { return b.origins }

// Origin is a handle the caller gives each source of rows that says how
// far back it may deliver rows again (Core.SetReplayFrom): the Application
// Insights application or the Dataverse environment a receiver reads. 0 is
// no such source: its ids are kept for emitted_ids_ttl only.
type Origin uint8

// MaxOrigins bounds the origins: one bit each in a bucket.
const MaxOrigins = 64

// SetReplayFrom records the latest replay_from of an origin: ingestion time
// before which it delivers no row again (Unix nanoseconds). Ids of its rows
// ingested later are kept, whatever emitted_ids_ttl.
func (c *Core) SetReplayFrom(o Origin, replayFrom int64) {
	if o > 0 && o < MaxOrigins {
		c.replayFrom[o] = replayFrom
	}
}

// ReplayFrom is the latest replay_from of an origin, 0 if it never said.
func (c *Core) ReplayFrom(o Origin) int64 {
	if o >= MaxOrigins {
		return 0
	}
	return c.replayFrom[o]
}

// originOfSource is the origin of a source's rows (Config.OriginOf), asked
// once per source.
func (c *Core) originOfSource(src Source) Origin {
	if int(src) < len(c.srcOrigin) && c.srcOrigin[src] != 0 {
		return Origin(c.srcOrigin[src] - 1)
	}
	var o Origin
	if c.originOf != nil {
		o = c.originOf(src)
	}
	if o >= MaxOrigins {
		o = 0
	}
	if int(src) >= len(c.srcOrigin) {
		c.srcOrigin = append(c.srcOrigin, make([]uint8, int(src)+1-len(c.srcOrigin))...)
	}
	c.srcOrigin[src] = uint8(o) + 1
	return o
}

// bucketOverhead is what a bucket takes beyond its tables: the struct, its
// map of other ids, its entry in the buckets map.
const bucketOverhead = 48 + 48 + 64

// otherIDOverhead is what a non-GUID id takes beyond its text in a map.
const otherIDOverhead = 48

// Len is how many ids the bucket holds.
func (b *IDBucket) Len() int { return b.guids.len() + len(b.others) }

// All yields every id in the bucket: GUIDs first.
func (b *IDBucket) All() iter.Seq[ItemID] {
	return func(yield func(ItemID) bool) {
		if b.guids.hasZero && !yield(ItemID{}) {
			return
		}
		for _, g := range b.guids.slots { // the zero GUID marks an empty slot
			if g != (GUID{}) && !yield(ItemID{guid: g}) {
				return
			}
		}
		for t := range b.others {
			if !yield(ItemID{text: t}) {
				return
			}
		}
	}
}

func newIDSet() idSet {
	return idSet{buckets: map[int64]*IDBucket{}}
}

// BucketOf is the bucket of emitted ids a row ingested at observed falls in.
func BucketOf(observed int64) int64 {
	k := observed / IDBucketWidth
	if observed < 0 && observed%IDBucketWidth != 0 {
		k--
	}
	return k
}

// contains reports whether the row with this id, ingested at observed, was
// emitted.
func (s *idSet) contains(id ItemID, observed int64) bool {
	b := s.bucket(BucketOf(observed))
	if b == nil {
		return false
	}
	if id.text == "" {
		return b.guids.contains(id.guid)
	}
	_, found := b.others[id.text]
	return found
}

// emitted adds the id of an emitted row ingested at observed.
func (s *idSet) emitted(id ItemID, observed int64) { s.emittedFrom(id, observed, 0) }

// emittedFrom adds the id of an emitted row ingested at observed, from
// origin o.
func (s *idSet) emittedFrom(id ItemID, observed int64, o Origin) {
	k := BucketOf(observed)
	b := s.bucket(k)
	if b == nil {
		// A new bucket starts as large as the average one, instead of
		// growing (and rehashing) its way there from nothing. (Not as the
		// last one: emission fills several buckets at once, so the last
		// is rarely full yet; not as the largest: one burst would size
		// every later bucket for an hour.)
		hint := 0
		if len(s.buckets) > 0 {
			hint = s.n / len(s.buckets)
		}
		b = &IDBucket{guids: newGUIDSet(hint), others: map[string]struct{}{}}
		s.buckets[k] = b
		s.last, s.lastKey = b, k
		s.bytes += bucketBytes(b)
	}
	if o > 0 {
		b.origins |= 1 << o
	}
	before, size := b.Len(), bucketBytes(b)
	if id.text == "" {
		b.guids.add(id.guid)
	} else if _, ok := b.others[id.text]; !ok {
		// a copy: the row's text shares an allocation with its other strings
		b.others[strings.Clone(id.text)] = struct{}{}
		b.othersBytes += allocSize(len(id.text)) + otherIDOverhead
	}
	s.n += b.Len() - before
	s.bytes += bucketBytes(b) - size
}

// bucketBytes is what a bucket takes.
func bucketBytes(b *IDBucket) int64 {
	return bucketOverhead + 16*int64(len(b.guids.slots)) + b.othersBytes
}

// bucket returns the bucket at key k, nil if there is none.
func (s *idSet) bucket(k int64) *IDBucket {
	if s.last != nil && s.lastKey == k {
		return s.last
	}
	b := s.buckets[k]
	if b != nil {
		s.last, s.lastKey = b, k
	}
	return b
}

// prune forgets the ids of rows ingested before horizon (whole buckets),
// except those their origin's replay_from has not passed yet.
func (s *idSet) prune(horizon int64) {
	s.last = nil
	for k, b := range s.buckets {
		end := (k + 1) * IDBucketWidth
		if end <= horizon && (s.replayFrom == nil || b.passed(end, s.replayFrom)) {
			s.drop(k, b)
		}
	}
}

// passed reports whether every origin of the bucket's ids, ending at end,
// will not deliver them again.
func (b *IDBucket) passed(end int64, replayFrom *[MaxOrigins]int64) bool {
	for o := b.origins; o != 0; o &= o - 1 {
		if rf := replayFrom[bits.TrailingZeros64(o)]; rf != 0 && end > rf {
			return false
		}
	}
	return true
}

func (s *idSet) drop(k int64, b *IDBucket) {
	s.n -= b.Len()
	s.bytes -= bucketBytes(b)
	delete(s.buckets, k)
	if s.last == b {
		s.last = nil
	}
}

// forgetOldest forgets the oldest bucket, for the memory budget, and
// returns how many ids it held.
func (s *idSet) forgetOldest() int {
	oldest, found := int64(0), false
	for k := range s.buckets {
		if !found || k < oldest {
			oldest, found = k, true
		}
	}
	if !found {
		return 0
	}
	b := s.buckets[oldest]
	n := b.Len()
	s.drop(oldest, b)
	return n
}

// all yields every non-empty bucket with its key.
func (s *idSet) all(yield func(int64, *IDBucket) bool) {
	for k, b := range s.buckets {
		if b.Len() > 0 && !yield(k, b) {
			return
		}
	}
}

// guidSet is a set of GUIDs in an open-addressing table (linear probing).
// A Go map with a 16-byte key has no fast path: it hashes through a function
// call, and filling one measured about 15 times slower (every emitted row
// is added, every incoming row looked up). Item ids are random GUIDs that
// Application Insights makes, not users, so two multiplications mix them
// enough. The zero GUID marks an empty slot, so it is kept aside.
type guidSet struct {
	slots   []GUID // a power of two long, or empty
	n       int    // slots in use
	hasZero bool
}

func newGUIDSet(hint int) guidSet {
	size := 8
	for size*3 < hint*4 {
		size *= 2
	}
	return guidSet{slots: make([]GUID, size)}
}

func (s *guidSet) len() int {
	if s.hasZero {
		return s.n + 1
	}
	return s.n
}

// find returns the slot holding g, or the empty slot where it would go.
func (s *guidSet) find(g GUID) int {
	lo := binary.LittleEndian.Uint64(g[:8])
	hi := binary.LittleEndian.Uint64(g[8:])
	h := lo ^ hi*0x9E3779B97F4A7C15
	h = (h ^ h>>32) * 0xBF58476D1CE4E5B9
	mask := len(s.slots) - 1
	i := int(h>>32) & mask
	for s.slots[i] != g && s.slots[i] != (GUID{}) {
		i = (i + 1) & mask
	}
	return i
}

func (s *guidSet) contains(g GUID) bool {
	if g == (GUID{}) {
		return s.hasZero
	}
	return len(s.slots) > 0 && s.slots[s.find(g)] == g
}

func (s *guidSet) add(g GUID) {
	if g == (GUID{}) {
		s.hasZero = true
		return
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	if i := s.find(g); s.slots[i] != g {
		s.slots[i] = g
		s.n++
	}
}

// grow doubles the table, keeping at most three quarters of it in use.
func (s *guidSet) grow() {
	old := s.slots
	s.slots = make([]GUID, max(2*len(old), 8))
	for _, g := range old {
		if g != (GUID{}) {
			s.slots[s.find(g)] = g
		}
	}
}

package activitypairprocessor

import (
	"bytes"
	"encoding/binary"
	"strings"
	"time"
)

type guid [16]byte

// itemID is a row's item id. Application Insights item ids are GUIDs:
// those are kept as 16 bytes, which a row holds without a string of 36
// (48 with its allocation); any other id is kept as text.
type itemID struct {
	guid guid
	text string // "" for a GUID
}

func newItemID(s string) itemID {
	if g, ok := parseGUID(s); ok {
		return itemID{guid: g}
	}
	return itemID{text: s}
}

func (i itemID) appendTo(b []byte) []byte {
	if i.text != "" {
		return append(b, i.text...)
	}
	return formatGUID(b, i.guid)
}

func (i itemID) String() string {
	if i.text != "" {
		return i.text
	}
	var b [36]byte
	return string(formatGUID(b[:0], i.guid))
}

// compare orders GUIDs before other ids; GUIDs as their lower-case text.
func (i itemID) compare(o itemID) int {
	switch {
	case i.text == "" && o.text == "":
		return bytes.Compare(i.guid[:], o.guid[:])
	case i.text == "":
		return -1
	case o.text == "":
		return 1
	}
	return strings.Compare(i.text, o.text)
}

// idSet holds the item ids of the rows emitted within emitted_ids_ttl, so
// that a row fetched again is dropped. A row fetched again carries the same
// ingestion time as the first time, so ids are kept in buckets by ingestion
// time: a lookup touches one small table, not one holding an hour of ids,
// and expiry drops whole buckets. GUIDs are kept in tables without pointers,
// which the garbage collector does not scan.
type idSet struct {
	buckets map[int64]*idBucket // by observed / idBucketWidth
	n       int
	// last is the bucket found last, at key lastKey: consecutive rows
	// mostly fall in the same bucket, and this saves a map lookup per row.
	last    *idBucket
	lastKey int64
}

// idBucketWidth is the span of ingestion time one bucket covers.
const idBucketWidth = int64(10 * time.Second)

type idBucket struct {
	guids  guidSet
	others map[string]struct{}
}

func (b *idBucket) len() int { return b.guids.len() + len(b.others) }

func newIDSet() idSet {
	return idSet{buckets: map[int64]*idBucket{}}
}

func bucketOf(observed int64) int64 {
	k := observed / idBucketWidth
	if observed < 0 && observed%idBucketWidth != 0 {
		k--
	}
	return k
}

// contains reports whether the row with this id, ingested at observed, was
// emitted.
func (s *idSet) contains(id itemID, observed int64) bool {
	b := s.bucket(bucketOf(observed))
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
func (s *idSet) emitted(id itemID, observed int64) {
	k := bucketOf(observed)
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
		b = &idBucket{guids: newGUIDSet(hint), others: map[string]struct{}{}}
		s.buckets[k] = b
		s.last, s.lastKey = b, k
	}
	before := b.len()
	if id.text == "" {
		b.guids.add(id.guid)
	} else {
		b.others[id.text] = struct{}{}
	}
	s.n += b.len() - before
}

// bucket returns the bucket at key k, nil if there is none.
func (s *idSet) bucket(k int64) *idBucket {
	if s.last != nil && s.lastKey == k {
		return s.last
	}
	b := s.buckets[k]
	if b != nil {
		s.last, s.lastKey = b, k
	}
	return b
}

// prune forgets the ids of rows ingested before horizon (whole buckets).
func (s *idSet) prune(horizon int64) {
	s.last = nil
	for k, b := range s.buckets {
		if (k+1)*idBucketWidth <= horizon {
			s.n -= b.len()
			delete(s.buckets, k)
		}
	}
}

func (s *idSet) emittedLen() int { return s.n }

// eachEmitted calls fn for every remembered id, with a time in its bucket.
func (s *idSet) eachEmitted(fn func(id itemID, observed int64)) {
	for k, b := range s.buckets {
		for g := range b.guids.all {
			fn(itemID{guid: g}, k*idBucketWidth)
		}
		for t := range b.others {
			fn(itemID{text: t}, k*idBucketWidth)
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
	slots   []guid // a power of two long, or empty
	n       int    // slots in use
	hasZero bool
}

func newGUIDSet(hint int) guidSet {
	size := 8
	for size*3 < hint*4 {
		size *= 2
	}
	return guidSet{slots: make([]guid, size)}
}

func (s *guidSet) len() int {
	if s.hasZero {
		return s.n + 1
	}
	return s.n
}

// find returns the slot holding g, or the empty slot where it would go.
func (s *guidSet) find(g guid) int {
	lo := binary.LittleEndian.Uint64(g[:8])
	hi := binary.LittleEndian.Uint64(g[8:])
	h := lo ^ hi*0x9E3779B97F4A7C15
	h = (h ^ h>>32) * 0xBF58476D1CE4E5B9
	mask := len(s.slots) - 1
	i := int(h>>32) & mask
	for s.slots[i] != g && s.slots[i] != (guid{}) {
		i = (i + 1) & mask
	}
	return i
}

func (s *guidSet) contains(g guid) bool {
	if g == (guid{}) {
		return s.hasZero
	}
	return len(s.slots) > 0 && s.slots[s.find(g)] == g
}

func (s *guidSet) add(g guid) {
	if g == (guid{}) {
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
	s.slots = make([]guid, max(2*len(old), 8))
	for _, g := range old {
		if g != (guid{}) {
			s.slots[s.find(g)] = g
		}
	}
}

// all yields every GUID in the set (a range-over-func iterator).
func (s *guidSet) all(yield func(guid) bool) {
	if s.hasZero && !yield(guid{}) {
		return
	}
	for _, g := range s.slots {
		if g != (guid{}) && !yield(g) {
			return
		}
	}
}

// parseGUID reads the canonical 8-4-4-4-12 form, either case.
func parseGUID(s string) (g guid, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, false
	}
	var bad byte
	for j, i := range guidDigitAt {
		hi, lo := hexValue[s[i]], hexValue[s[i+1]]
		bad |= hi | lo
		g[j] = hi<<4 | lo
	}
	return g, bad <= 0xf
}

// guidDigitAt is where each byte's two hex digits start in a GUID's text.
var guidDigitAt = [16]uint8{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// hexValue is the value of a hex digit, 0xff for any other byte: a table
// (parseGUID runs for every row) instead of a switch per digit.
var hexValue = func() (t [256]byte) {
	for c := range t {
		t[c] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c] = c - 'a' + 10
		t[c-'a'+'A'] = c - 'a' + 10
	}
	return t
}()

// formatGUID appends g in the canonical lower-case 8-4-4-4-12 form. Each
// byte's two digits come from one table entry (every emitted row's id is
// formatted, twice for the row that opens a turn).
func formatGUID(b []byte, g guid) []byte {
	var t [36]byte
	for j, i := range guidDigitAt {
		d := hexPairs[g[j]]
		t[i], t[i+1] = d[0], d[1]
	}
	t[8], t[13], t[18], t[23] = '-', '-', '-', '-'
	return append(b, t[:]...)
}

// hexPairs is the lower-case hex text of every byte.
var hexPairs = func() (t [256][2]byte) {
	for c := range t {
		t[c] = [2]byte{hexDigits[c>>4], hexDigits[c&0xf]}
	}
	return t
}()

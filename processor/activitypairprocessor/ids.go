package activitypairprocessor

import (
	"bytes"
	"strings"
)

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
// that a row fetched again is dropped. GUIDs are kept in a map and a queue
// without pointers, which the garbage collector does not scan however many
// ids a busy hour leaves.
type idSet struct {
	guids  map[guid]struct{}
	others map[string]struct{}
	// Expiry queues, in emission order.
	guidQueue  fifo[emittedGUID]
	otherQueue fifo[emittedID]
}

type guid [16]byte

type emittedGUID struct {
	id       guid
	observed int64
}

type emittedID struct {
	item     string
	observed int64
}

func newIDSet() idSet {
	return idSet{guids: map[guid]struct{}{}, others: map[string]struct{}{}}
}

func (s *idSet) contains(id itemID) bool {
	if id.text == "" {
		_, found := s.guids[id.guid]
		return found
	}
	_, found := s.others[id.text]
	return found
}

// emitted adds the id of an emitted row, to be forgotten once ingestion
// time passes observed + ttl.
func (s *idSet) emitted(id itemID, observed int64) {
	if id.text == "" {
		s.guids[id.guid] = struct{}{}
		s.guidQueue.push(emittedGUID{id.guid, observed})
	} else {
		s.others[id.text] = struct{}{}
		s.otherQueue.push(emittedID{id.text, observed})
	}
}

// prune forgets the emitted ids ingested before horizon.
func (s *idSet) prune(horizon int64) {
	for e, ok := s.guidQueue.peek(); ok && e.observed < horizon; e, ok = s.guidQueue.peek() {
		delete(s.guids, e.id)
		s.guidQueue.pop()
	}
	for e, ok := s.otherQueue.peek(); ok && e.observed < horizon; e, ok = s.otherQueue.peek() {
		delete(s.others, e.item)
		s.otherQueue.pop()
	}
}

func (s *idSet) emittedLen() int { return s.guidQueue.len() + s.otherQueue.len() }

// eachEmitted calls fn for every remembered emitted id.
func (s *idSet) eachEmitted(fn func(id itemID, observed int64)) {
	s.guidQueue.each(func(e emittedGUID) { fn(itemID{guid: e.id}, e.observed) })
	s.otherQueue.each(func(e emittedID) { fn(itemID{text: e.item}, e.observed) })
}

// parseGUID reads the canonical 8-4-4-4-12 form, either case.
func parseGUID(s string) (g guid, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i-- // skip the dash: the loop adds 2
			continue
		}
		hi, lo := unhex(s[i]), unhex(s[i+1])
		if hi > 15 || lo > 15 {
			return g, false
		}
		g[j] = hi<<4 | lo
		j++
	}
	return g, true
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

func formatGUID(b []byte, g guid) []byte {
	for i, x := range g {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[x>>4], hexDigits[x&0xf])
	}
	return b
}

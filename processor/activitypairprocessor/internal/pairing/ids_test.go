package pairing

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestItemIDs(t *testing.T) {
	const g = "5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a69"
	id := NewItemID(g)
	_, isGUID := id.GUID()
	assert.True(t, isGUID, "a GUID is held as 16 bytes")
	assert.Equal(t, g, id.String())
	assert.Equal(t, id, NewItemID(strings.ToUpper(g)), "either case is the same id")
	for _, notGUID := range []string{"i1", "5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a6", "5f1c0a2e_7c1e-4a0e-9f7e-1f2d3c4b5a69", "5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a6z"} {
		assert.Equal(t, ItemID{text: notGUID}, NewItemID(notGUID))
		assert.Equal(t, notGUID, NewItemID(notGUID).String())
	}
	// GUIDs order as their lower-case text, before any other id.
	a, b := NewItemID("0a000000-0000-0000-0000-000000000000"), NewItemID("a0000000-0000-0000-0000-000000000000")
	assert.Equal(t, -1, a.compare(b))
	assert.Equal(t, 1, b.compare(a))
	assert.Equal(t, -1, b.compare(NewItemID("0")))
	assert.Equal(t, 0, a.compare(a))
}

func TestIDSetForgetsWholeBucketsPastTheHorizon(t *testing.T) {
	s := newIDSet()
	at := func(d time.Duration) int64 { return base.Add(d).UnixNano() }
	old, recent := NewItemID("5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a69"), NewItemID("other")
	s.emitted(old, at(0))
	s.emitted(recent, at(time.Hour))
	assert.True(t, s.contains(old, at(0)))
	assert.False(t, s.contains(old, at(time.Hour)), "looked up by the ingestion time it was emitted with")
	assert.Equal(t, 2, s.n)
	s.prune(at(30 * time.Minute))
	assert.False(t, s.contains(old, at(0)))
	assert.True(t, s.contains(recent, at(time.Hour)))
	assert.Equal(t, 1, s.n)
}

// Any byte but a hex digit, at any digit position, makes an id text, not a
// GUID; every hex digit in either case reads back.
func TestParseGUIDEveryByteAtEveryPosition(t *testing.T) {
	const g = "0123abcd-ef01-4567-89ab-CDEF01234567"
	for pos := range len(g) {
		if g[pos] == '-' {
			continue
		}
		for c := range 256 {
			s := g[:pos] + string([]byte{byte(c)}) + g[pos+1:]
			_, ok := parseGUID(s)
			isHex := strings.ContainsRune("0123456789abcdefABCDEF", rune(c)) && c < 128
			assert.Equal(t, isHex, ok, "%q", s)
			if ok {
				assert.Equal(t, strings.ToLower(s), NewItemID(s).String())
			}
		}
	}
}

// The open-addressing set agrees with a Go map as it grows: sequential ids
// (which cluster without mixing), random ones, the zero GUID (an empty
// slot's value) and every id added twice.
func TestGUIDSetAgreesWithAMap(t *testing.T) {
	set, want := newGUIDSet(0), map[GUID]struct{}{}
	rng := rand.New(rand.NewPCG(1, 2))
	add := func(g GUID) {
		set.add(g)
		want[g] = struct{}{}
	}
	for i := range 5000 {
		var sequential, random GUID
		binary.BigEndian.PutUint64(sequential[8:], uint64(i))
		binary.LittleEndian.PutUint64(random[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(random[8:], rng.Uint64())
		add(sequential)
		add(random)
		add(random)
		require.Equal(t, len(want), set.len())
	}
	for g := range want {
		require.True(t, set.contains(g))
	}
	var absent GUID
	absent[0] = 0xff
	assert.False(t, set.contains(absent))
	got := map[GUID]int{}
	for g := range set.all {
		got[g]++
	}
	assert.Len(t, got, len(want))
	for g, n := range got {
		_, member := want[g]
		require.True(t, member && n == 1, "each member once, nothing else: %x %d times", g, n)
	}
	assert.Equal(t, 1, got[GUID{}], "the zero GUID is a member like any other")
}

// all yields every GUID in the set.
func (s *guidSet) all(yield func(GUID) bool) {
	if s.hasZero && !yield(GUID{}) {
		return
	}
	for _, g := range s.slots {
		if g != (GUID{}) && !yield(g) {
			return
		}
	}
}

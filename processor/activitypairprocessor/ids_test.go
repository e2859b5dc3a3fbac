package activitypairprocessor

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
	id := newItemID(g)
	assert.Empty(t, id.text, "a GUID is held as 16 bytes")
	assert.Equal(t, g, id.String())
	assert.Equal(t, id, newItemID(strings.ToUpper(g)), "either case is the same id")
	for _, notGUID := range []string{"i1", "5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a6", "5f1c0a2e_7c1e-4a0e-9f7e-1f2d3c4b5a69", "5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a6z"} {
		assert.Equal(t, itemID{text: notGUID}, newItemID(notGUID))
		assert.Equal(t, notGUID, newItemID(notGUID).String())
	}
	// GUIDs order as their lower-case text, before any other id.
	a, b := newItemID("0a000000-0000-0000-0000-000000000000"), newItemID("a0000000-0000-0000-0000-000000000000")
	assert.Equal(t, -1, a.compare(b))
	assert.Equal(t, 1, b.compare(a))
	assert.Equal(t, -1, b.compare(newItemID("0")))
	assert.Equal(t, 0, a.compare(a))
}

func TestIDSetForgetsWholeBucketsPastTheHorizon(t *testing.T) {
	s := newIDSet()
	at := func(d time.Duration) int64 { return base.Add(d).UnixNano() }
	old, recent := newItemID("5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a69"), newItemID("other")
	s.emitted(old, at(0))
	s.emitted(recent, at(time.Hour))
	assert.True(t, s.contains(old, at(0)))
	assert.False(t, s.contains(old, at(time.Hour)), "looked up by the ingestion time it was emitted with")
	assert.Equal(t, 2, s.emittedLen())
	s.prune(at(30 * time.Minute))
	assert.False(t, s.contains(old, at(0)))
	assert.True(t, s.contains(recent, at(time.Hour)))
	assert.Equal(t, 1, s.emittedLen())
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
				assert.Equal(t, strings.ToLower(s), newItemID(s).String())
			}
		}
	}
}

// The open-addressing set agrees with a Go map as it grows: sequential ids
// (which cluster without mixing), random ones, the zero GUID (an empty
// slot's value) and every id added twice.
func TestGUIDSetAgreesWithAMap(t *testing.T) {
	set, want := newGUIDSet(0), map[guid]struct{}{}
	rng := rand.New(rand.NewPCG(1, 2))
	add := func(g guid) {
		set.add(g)
		want[g] = struct{}{}
	}
	for i := range 5000 {
		var sequential, random guid
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
	var absent guid
	absent[0] = 0xff
	assert.False(t, set.contains(absent))
	got := map[guid]int{}
	for g := range set.all {
		got[g]++
	}
	assert.Len(t, got, len(want))
	for g, n := range got {
		_, member := want[g]
		require.True(t, member && n == 1, "each member once, nothing else: %x %d times", g, n)
	}
	assert.Equal(t, 1, got[guid{}], "the zero GUID is a member like any other")
}

package cursor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// memClient is a storage client over a map.
type memClient struct {
	storage.Client
	m map[string][]byte
}

func (c memClient) Get(_ context.Context, k string) ([]byte, error) { return c.m[k], nil }
func (c memClient) Set(_ context.Context, k string, v []byte) error {
	c.m[k] = v
	return nil
}

func TestAdvanceKeepsTheOverlapsIDsAndNeverMovesBack(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cp := New()
	cp.Advance(t0.Add(10*time.Minute), map[string]time.Time{"old": t0, "late": t0.Add(9 * time.Minute)}, 2*time.Minute)
	assert.Equal(t, t0.Add(10*time.Minute), cp.Cursor)
	assert.Equal(t, map[string]time.Time{"late": t0.Add(9 * time.Minute)}, cp.Seen)

	// Rows that say how far they reach (no upper bound), and a window cut
	// before the cursor: the cursor stays.
	cp.Advance(time.Time{}, map[string]time.Time{"next": t0.Add(11 * time.Minute)}, 2*time.Minute)
	assert.Equal(t, t0.Add(11*time.Minute), cp.Cursor)
	cp.Advance(t0.Add(5*time.Minute), nil, 2*time.Minute)
	assert.Equal(t, t0.Add(11*time.Minute), cp.Cursor)
	assert.Equal(t, []string{"late", "next"}, keys(cp.Seen))
}

func TestLoadRefusesWhatItCannotRead(t *testing.T) {
	ctx := context.Background()
	c := memClient{m: map[string][]byte{}}
	cp, err := Load(ctx, c, "k")
	require.NoError(t, err)
	assert.Nil(t, cp, "nothing stored")

	want := New()
	want.Advance(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), map[string]time.Time{"a": time.Date(2026, 12, 1, 9, 59, 0, 0, time.UTC)}, time.Minute)
	require.NoError(t, Save(ctx, c, "k", want))
	got, err := Load(ctx, c, "k")
	require.NoError(t, err)
	assert.True(t, got.Cursor.Equal(want.Cursor))
	assert.Len(t, got.Seen, 1)

	for name, raw := range map[string]string{
		"not JSON":    "{",
		"newer":       `{"version":2,"cursor":"2026-12-01T10:00:00Z"}`,
		"no version":  `{"cursor":"2026-12-01T10:00:00Z"}`,
		"no position": `{"version":1}`,
	} {
		c.m["k"] = []byte(raw)
		_, err := Load(ctx, c, "k")
		assert.Error(t, err, name)
	}
}

func keys(m map[string]time.Time) []string {
	var out []string
	for _, k := range []string{"late", "next", "old"} {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

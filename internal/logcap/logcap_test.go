package logcap

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestCapPerRound(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	l := New(zap.New(core), 2)
	for i := range 5 {
		l.Warn("bad row", zap.Int("i", i))
	}
	l.EndRound("more bad rows")
	got := logs.TakeAll()
	assert.Len(t, got, 3)
	assert.Equal(t, "more bad rows", got[2].Message)
	assert.Equal(t, int64(3), got[2].ContextMap()["not_logged"])

	// A new round starts with the full cap, and a round under it writes no summary.
	l.Warn("bad row")
	l.EndRound("more bad rows")
	assert.Len(t, logs.TakeAll(), 1)
}

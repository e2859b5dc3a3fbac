package copilotstudiowebhookreceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRecordID(t *testing.T) {
	base := recordID("conv", "plan", "step", "corr-1", []byte("a"))
	assert.Len(t, base, 32)
	assert.Equal(t, base, recordID("conv", "plan", "step", "corr-2", []byte("b")), "the step ids decide, not the correlation id or body")
	assert.NotEqual(t, base, recordID("conv", "plan", "step2", "corr-1", nil))
	assert.NotEqual(t, recordID("ab", "c", "step", "", nil), recordID("a", "bc", "step", "", nil), "ids run together")

	byCorrelation := recordID("conv", "plan", "", "corr-1", []byte("a"))
	assert.Equal(t, byCorrelation, recordID("", "", "", "corr-1", []byte("b")))
	assert.NotEqual(t, byCorrelation, recordID("", "", "", "corr-2", []byte("a")))

	byBody := recordID("", "", "", "", []byte(`{"x":1}`))
	assert.Equal(t, byBody, recordID("", "", "", "", []byte(`{"x":1}`)))
	assert.NotEqual(t, byBody, recordID("", "", "", "", []byte(`{"x":2}`)))
}

func TestClientAddress(t *testing.T) {
	for in, want := range map[string]string{
		"::ffff:203.0.113.24": "203.0.113.24",
		"::ffff:cb00:7118":    "203.0.113.24",
		"203.0.113.24":        "203.0.113.24",
		"2001:db8::42":        "2001:db8::42",
		"not an ip":           "not an ip",
		"":                    "",
	} {
		assert.Equal(t, want, clientAddress(in), in)
	}
}

func TestTooDeep(t *testing.T) {
	assert.False(t, tooDeep([]byte(`{"a":[[[1]]]}`), 4))
	assert.True(t, tooDeep([]byte(`{"a":[[[[1]]]]}`), 4))
	// Brackets inside strings, escaped quotes included, do not count.
	assert.False(t, tooDeep([]byte(`{"a":"[[[[[\"[[[["}`), 1))
}

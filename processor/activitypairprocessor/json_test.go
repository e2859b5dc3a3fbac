package activitypairprocessor

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var jsonSamples = []string{
	"", "plain", `quote " and \ backslash`, "new\nline\r\ttab", "\x00\x01\x1f\x7f",
	"émoji 👋 日本", "bad \xff\xfe bytes", "line\u2028sep\u2029", "</script>&",
}

func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonSamples {
		var back string
		require.NoError(t, json.Unmarshal(appendJSONString(nil, s), &back), s)
		want, _ := json.Marshal(s) // replaces invalid UTF-8 the same way
		var wantBack string
		require.NoError(t, json.Unmarshal(want, &wantBack))
		assert.Equal(t, wantBack, back, "%q", s)
	}
}

// Nested escaping is escaping twice.
func TestNestedContentIsEscapingTwice(t *testing.T) {
	for _, s := range jsonSamples {
		want := appendJSONContent(nil, string(appendJSONContent(nil, s)))
		assert.Equal(t, string(want), string(appendNestedContent(nil, s)), "%q", s)
	}
}

// Every byte value at every offset of a text longer than the eight bytes
// appendEscaped skips at a time is escaped as encoding/json does.
func TestJSONStringEveryByteAtEveryOffset(t *testing.T) {
	plain := []byte("abcdefghijklmnopqrstuvwx")
	for c := range 256 {
		for pos := range plain {
			s := make([]byte, len(plain))
			copy(s, plain)
			s[pos] = byte(c)
			var back, wantBack string
			require.NoError(t, json.Unmarshal(appendJSONString(nil, string(s)), &back), "%q", s)
			want, _ := json.Marshal(string(s))
			require.NoError(t, json.Unmarshal(want, &wantBack))
			require.Equal(t, wantBack, back, "%q", s)
			nested := appendJSONContent(nil, string(appendJSONContent(nil, string(s))))
			require.Equal(t, string(nested), string(appendNestedContent(nil, string(s))), "%q", s)
		}
	}
}

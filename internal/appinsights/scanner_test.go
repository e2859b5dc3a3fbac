package appinsights

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzScannerString checks string unescaping against encoding/json.
func FuzzScannerString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote`, "back\\slash", "nl\n\t", "é😀", "\u2028", "\x01ctl", "\xff\xfe"} {
		b, _ := json.Marshal(s)
		f.Add(string(b))
	}
	f.Add(`"\ud83d\ude00 \u00e9 \/"`)
	f.Add(`"\ud83d x"`)
	f.Fuzz(func(t *testing.T, lit string) {
		var want string
		if json.Unmarshal([]byte(lit), &want) != nil {
			return
		}
		var s Scanner
		s.ResetBytes([]byte(lit), false)
		got, err := s.AppendString(nil)
		if err != nil {
			t.Fatalf("%q: %v", lit, err)
		}
		if string(got) != want {
			t.Fatalf("%q: got %q, want %q", lit, got, want)
		}
	})
}

func TestIndexQuoteOrEscape(t *testing.T) {
	long := strings.Repeat("a", 40)
	for in, want := range map[string]int{
		"": -1, "abc": -1, `ab"c`: 2, `a\"`: 1, long: -1,
		long + `"`: 40, long + `\`: 40, long + `x"y\`: 41, long + `x\y"`: 41,
		long[:15] + `"`: 15, long[:16] + `"`: 16, long[:17] + `\"`: 17,
	} {
		if got := indexQuoteOrEscape([]byte(in)); got != want {
			t.Errorf("indexQuoteOrEscape(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestOnlySpaceLeft(t *testing.T) {
	for in, want := range map[string]int64{`{} `: -1, "{}\n\t\r ": -1, `{}`: -1, `{} x`: 3, `{}}`: 2} {
		var s Scanner
		s.ResetBytes([]byte(in), true)
		if _, err := s.AppendRaw(nil); err != nil {
			t.Fatal(err)
		}
		offset, ok := s.OnlySpaceLeft()
		if ok != (want < 0) || (!ok && offset != want) {
			t.Errorf("OnlySpaceLeft after %q = %d, %v; want offset %d", in, offset, ok, want)
		}
	}
}

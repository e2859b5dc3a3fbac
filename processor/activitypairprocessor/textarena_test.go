package activitypairprocessor

import (
	"strconv"
	"strings"
	"testing"
)

// Strings handed out by the arena share blocks: each must keep its text
// while later strings are written after it and blocks fill up, including a
// string larger than a block.
func TestTextArenaStringsStayIntact(t *testing.T) {
	var a textArena
	var got, want []string
	for i := range 2000 {
		text := strings.Repeat(strconv.Itoa(i), 1+i%50)
		if i == 1000 {
			text = strings.Repeat("x", 3*textArenaBlock)
		}
		want = append(want, text)
		got = append(got, a.string(append(a.next(), text...)))
	}
	if a.string(a.next()) != "" {
		t.Error("empty bytes did not give an empty string")
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("string %d changed: got %.40q, want %.40q", i, got[i], want[i])
		}
	}
}

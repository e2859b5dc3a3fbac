package pairing

import (
	"testing"
	"unsafe"
)

// A row is two cache lines and a conversation fits the 192-byte size
// class: memory per open turn (BenchmarkOpenTurnMemory) depends on both.
func TestLayout(t *testing.T) {
	if n := unsafe.Sizeof(Row{}); n != 128 {
		t.Errorf("Row is %d bytes, want 128", n)
	}
	if n := unsafe.Sizeof(Row{}.Activity) + unsafe.Offsetof(Row{}.Activity); n != 64 {
		t.Errorf("what ordering and planning read ends at byte %d, want 64", n)
	}
	if n := unsafe.Sizeof(Conversation{}); n > 192 {
		t.Errorf("Conversation is %d bytes, want at most 192", n)
	}
}

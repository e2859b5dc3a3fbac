package pairing

import (
	"bytes"
	"strings"
)

// GUID is the 16 bytes of a GUID.
type GUID [16]byte

// ItemID is a row's item id. Application Insights item ids are GUIDs:
// those are kept as 16 bytes, which a row holds without a string of 36
// (48 with its allocation); any other id is kept as text.
type ItemID struct {
	guid GUID
	text string // "" for a GUID
}

// NewItemID reads an id; a GUID in canonical form, either case, is kept as
// its 16 bytes.
func NewItemID(s string) ItemID {
	if g, ok := parseGUID(s); ok {
		return ItemID{guid: g}
	}
	return ItemID{text: s}
}

// ItemIDFromGUID is the id of a GUID.
func ItemIDFromGUID(g GUID) ItemID { return ItemID{guid: g} }

// GUID returns the id's 16 bytes, if it is a GUID.
func (i ItemID) GUID() (GUID, bool) { return i.guid, i.text == "" }

// AppendTo appends the id's text: a GUID in lower case.
func (i ItemID) AppendTo(b []byte) []byte {
	if i.text != "" {
		return append(b, i.text...)
	}
	return formatGUID(b, i.guid)
}

// Len is the length of the id's text.
func (i ItemID) Len() int {
	if i.text != "" {
		return len(i.text)
	}
	return 36
}

func (i ItemID) String() string {
	if i.text != "" {
		return i.text
	}
	var b [36]byte
	return string(formatGUID(b[:0], i.guid))
}

// compare orders GUIDs before other ids; GUIDs as their lower-case text.
func (i ItemID) compare(o ItemID) int {
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

// parseGUID reads the canonical 8-4-4-4-12 form, either case.
func parseGUID(s string) (g GUID, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, false
	}
	var bad byte
	for j, i := range guidDigitAt {
		hi, lo := hexValue[s[i]], hexValue[s[i+1]]
		bad |= hi | lo
		g[j] = hi<<4 | lo
	}
	return g, bad <= 0xf
}

// guidDigitAt is where each byte's two hex digits start in a GUID's text.
var guidDigitAt = [16]uint8{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// hexValue is the value of a hex digit, 0xff for any other byte: a table
// (parseGUID runs for every row) instead of a switch per digit.
var hexValue = func() (t [256]byte) {
	for c := range t {
		t[c] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c] = c - 'a' + 10
		t[c-'a'+'A'] = c - 'a' + 10
	}
	return t
}()

// formatGUID appends g in the canonical lower-case 8-4-4-4-12 form. Each
// byte's two digits come from one table entry (every emitted row's id is
// formatted, twice for the row that opens a turn).
func formatGUID(b []byte, g GUID) []byte {
	var t [36]byte
	for j, i := range guidDigitAt {
		d := hexPairs[g[j]]
		t[i], t[i+1] = d[0], d[1]
	}
	t[8], t[13], t[18], t[23] = '-', '-', '-', '-'
	return append(b, t[:]...)
}

const hexDigits = "0123456789abcdef"

// hexPairs is the lower-case hex text of every byte.
var hexPairs = func() (t [256][2]byte) {
	for c := range t {
		t[c] = [2]byte{hexDigits[c>>4], hexDigits[c&0xf]}
	}
	return t
}()

package activitypairprocessor

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// safeASCII marks the bytes a JSON string holds as they are.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does; it is hand-written because it runs for
// every text of every turn.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s, false)
	return append(b, '"')
}

// appendJSONContent appends s escaped for a JSON string, without quotes.
func appendJSONContent(b []byte, s string) []byte { return appendEscaped(b, s, false) }

// appendNestedContent appends s escaped for a JSON string inside a JSON
// document that is itself a JSON string (Akto's payloads and tag): escaped
// twice, in one pass.
func appendNestedContent(b []byte, s string) []byte { return appendEscaped(b, s, true) }

func appendEscaped(b []byte, s string, nested bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		// Skip plain ASCII eight bytes at a time, then look at the next
		// eight bytes (or the tail) one character at a time.
		i += plainASCIIPrefix(s[i:])
		for end := min(i+8, len(s)); i < end; {
			c := s[i]
			if c < utf8.RuneSelf {
				if !safeASCII[c] {
					b = append(b, s[start:i]...)
					b = appendEscape(b, c, nested)
					start = i + 1
				}
				i++
				continue
			}
			r, size := utf8.DecodeRuneInString(s[i:])
			if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
				// Invalid bytes become U+FFFD; U+2028 and U+2029 are valid
				// JSON but break JavaScript readers.
				if r == utf8.RuneError {
					r = '\uFFFD'
				}
				b = append(b, s[start:i]...)
				if nested {
					b = append(b, '\\')
				}
				b = append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
				start = i + size
			}
			i += size
		}
	}
	return append(b, s[start:]...)
}

// appendEscape writes the escape of an ASCII byte that needs one; nested
// escapes the escape again.
func appendEscape(b []byte, c byte, nested bool) []byte {
	if nested {
		switch c {
		case '"':
			return append(b, `\\\"`...)
		case '\\':
			return append(b, `\\\\`...)
		}
		b = append(b, '\\') // the backslash of the inner escape, escaped
	}
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// plainASCIIPrefix returns how many leading bytes of s, in blocks of 8,
// are ASCII a JSON string holds as they are: none below 0x20, none '"' or
// '\\', none from 0x80. Most text is, and testing 8 bytes at once in one
// 64-bit word is several times faster than a byte at a time. (A byte below
// n sets its top bit in (x - n*lsb) &^ x; a byte equal to c is a zero byte
// of x ^ c*lsb.)
func plainASCIIPrefix(s string) int {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; len(s)-i >= 8; i += 8 {
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		quote, backslash := x^(lsb*'"'), x^(lsb*'\\')
		special := (x-lsb*0x20)&^x | (quote-lsb)&^quote | (backslash-lsb)&^backslash | x
		if special&msb != 0 {
			break
		}
	}
	return i
}

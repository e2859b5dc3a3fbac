package appinsights

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// Scanner is a small JSON tokenizer that reads either a stream (the query
// response, which can be ~100 MB and is never held whole) or a byte slice
// (a customDimensions value, which is JSON inside a JSON string). It only
// does what the response shape needs: strings are unescaped straight into a
// caller's buffer and other values are copied raw, so decoding a row costs a
// few memcpys rather than a tree of interface{} values.
type Scanner struct {
	r        io.Reader
	buf      []byte
	pos, end int
	eof      bool
	err      error // read error other than EOF
	offset   int64 // bytes consumed before buf[0], for error messages
	// validUTF8 says the input is known to be valid UTF-8 (a string this
	// scanner already checked, such as customDimensions), so the strings
	// unescaped from it need no second check: escapes decode to valid runes.
	validUTF8 bool
	// maxValue bounds one value read (AppendString, AppendRaw); 0: none.
	maxValue int
}

var errUnexpectedEnd = errors.New("unexpected end of JSON input")

// ErrValueTooLarge is returned (wrapped) for a JSON value over the scanner's limit.
var ErrValueTooLarge = errors.New("JSON value over its size limit")

// tooLarge reports whether the value appended to dst from start is over
// the limit. It is checked as the input is refilled and when the value
// ends, so a value is never held much past the limit (one read buffer).
func (s *Scanner) tooLarge(dst []byte, start int) error {
	if s.maxValue > 0 && len(dst)-start > s.maxValue {
		return fmt.Errorf("%w: a value at byte %d is over %d bytes", ErrValueTooLarge, s.offset+int64(s.pos), s.maxValue)
	}
	return nil
}

// NewStreamScanner reads r through a buffer that grows only as far as the
// longest value needs.
func NewStreamScanner(r io.Reader) *Scanner {
	return &Scanner{r: r, buf: make([]byte, 256<<10)}
}

// ResetBytes makes s scan data. validUTF8 says data is known to be valid
// UTF-8 (a string this scanner already checked), so the strings unescaped
// from it are not checked again.
func (s *Scanner) ResetBytes(data []byte, validUTF8 bool) {
	*s = Scanner{buf: data, end: len(data), eof: true, validUTF8: validUTF8}
}

// more reads at least one byte more into the buffer; false at end of input.
func (s *Scanner) more() bool {
	if s.eof || s.err != nil {
		return false
	}
	if s.pos > 0 {
		s.offset += int64(s.pos)
		s.end = copy(s.buf, s.buf[s.pos:s.end])
		s.pos = 0
	}
	if s.end == len(s.buf) {
		s.buf = append(s.buf, make([]byte, len(s.buf))...)
	}
	for {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err == io.EOF {
			s.eof = true
			return n > 0
		}
		if err != nil {
			s.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
}

// ensure makes n unread bytes available if the input has them.
func (s *Scanner) ensure(n int) bool {
	for s.end-s.pos < n {
		if !s.more() {
			return false
		}
	}
	return true
}

func (s *Scanner) fail(format string, args ...any) error {
	if s.err != nil {
		return fmt.Errorf("reading response: %w", s.err)
	}
	return fmt.Errorf("invalid JSON at byte %d: %s", s.offset+int64(s.pos), fmt.Sprintf(format, args...))
}

// Next skips white space and returns the next byte without consuming it.
func (s *Scanner) Next() (byte, error) {
	for {
		for s.pos < s.end {
			switch c := s.buf[s.pos]; c {
			case ' ', '\t', '\n', '\r':
				s.pos++
			default:
				return c, nil
			}
		}
		if !s.more() {
			return 0, s.fail("%v", errUnexpectedEnd)
		}
	}
}

// Skip consumes the byte Next returned.
func (s *Scanner) Skip() { s.pos++ }

// OnlySpaceLeft reports whether nothing but white space is left; if not,
// offset is where the rest starts.
func (s *Scanner) OnlySpaceLeft() (offset int64, ok bool) {
	for {
		for ; s.pos < s.end; s.pos++ {
			switch s.buf[s.pos] {
			case ' ', '\t', '\n', '\r':
			default:
				return s.offset + int64(s.pos), false
			}
		}
		if !s.more() {
			return s.offset + int64(s.pos), s.err == nil
		}
	}
}

// Expect consumes the byte c after optional white space.
func (s *Scanner) Expect(c byte) error {
	got, err := s.Next()
	if err != nil {
		return err
	}
	if got != c {
		return s.fail("want %q, found %q", c, got)
	}
	s.pos++
	return nil
}

// EndOf consumes ',' (more to come: true) or the closing byte (false).
func (s *Scanner) EndOf(closing byte) (bool, error) {
	c, err := s.Next()
	if err != nil {
		return false, err
	}
	s.pos++
	switch c {
	case ',':
		return true, nil
	case closing:
		return false, nil
	}
	return false, s.fail("want ',' or %q, found %q", closing, c)
}

// AppendString consumes a JSON string and appends its unescaped value to dst.
func (s *Scanner) AppendString(dst []byte) ([]byte, error) {
	if err := s.Expect('"'); err != nil {
		return dst, err
	}
	start := len(dst)
	for {
		chunk := s.buf[s.pos:s.end]
		i := indexQuoteOrEscape(chunk)
		if i < 0 {
			dst = append(dst, chunk...)
			s.pos = s.end
			if err := s.tooLarge(dst, start); err != nil {
				return dst, err
			}
			if !s.more() {
				return dst, s.fail("unterminated string")
			}
			continue
		}
		dst = append(dst, chunk[:i]...)
		s.pos += i
		if chunk[i] == '\\' {
			// \" and \\ (nearly every escape of customDimensions) in line.
			if i+1 < len(chunk) && (chunk[i+1] == '"' || chunk[i+1] == '\\') {
				dst = append(dst, chunk[i+1])
				s.pos += 2
				continue
			}
			var err error
			if dst, err = s.appendEscape(dst); err != nil {
				return dst, err
			}
			continue
		}
		s.pos++ // closing quote
		if err := s.tooLarge(dst, start); err != nil {
			return dst, err
		}
		if !s.validUTF8 && !utf8.Valid(dst[start:]) {
			// As encoding/json does: pdata strings must be valid UTF-8.
			dst = appendValidUTF8(dst[:start], append([]byte(nil), dst[start:]...))
		}
		return dst, nil
	}
}

// indexQuoteOrEscape is the index of the first '"' or '\\' in b, or -1.
// customDimensions arrives as a JSON string of JSON, an escape every few
// bytes: a plain loop finds those nearby, where two vectorised searches per
// escape cost more; long runs without one still get bytes.IndexByte.
func indexQuoteOrEscape(b []byte) int {
	const near = 16
	for i, c := range b[:min(len(b), near)] {
		if c == '"' || c == '\\' {
			return i
		}
	}
	if len(b) <= near {
		return -1
	}
	rest := b[near:]
	if q := bytes.IndexByte(rest, '"'); q >= 0 {
		rest = rest[:q]
	}
	if e := bytes.IndexByte(rest, '\\'); e >= 0 {
		return near + e
	}
	if len(rest) < len(b)-near {
		return near + len(rest) // the quote
	}
	return -1
}

// appendEscape decodes the escape sequence at s.pos (a backslash).
func (s *Scanner) appendEscape(dst []byte) ([]byte, error) {
	if !s.ensure(2) {
		return dst, s.fail("unterminated escape")
	}
	c := s.buf[s.pos+1]
	s.pos += 2
	switch c {
	case '"', '\\', '/':
		return append(dst, c), nil
	case 'n':
		return append(dst, '\n'), nil
	case 't':
		return append(dst, '\t'), nil
	case 'r':
		return append(dst, '\r'), nil
	case 'b':
		return append(dst, '\b'), nil
	case 'f':
		return append(dst, '\f'), nil
	case 'u':
		r, ok := s.hex4()
		if !ok {
			return dst, s.fail("bad \\u escape")
		}
		if utf16.IsSurrogate(r) {
			// A high surrogate should be followed by \uDC00-\uDFFF.
			if s.ensure(6) && s.buf[s.pos] == '\\' && s.buf[s.pos+1] == 'u' {
				save := s.pos
				s.pos += 2
				if r2, ok := s.hex4(); ok {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						return utf8.AppendRune(dst, dec), nil
					}
				}
				s.pos = save
			}
			r = utf8.RuneError
		}
		return utf8.AppendRune(dst, r), nil
	}
	return dst, s.fail("bad escape \\%c", c)
}

func (s *Scanner) hex4() (rune, bool) {
	if !s.ensure(4) {
		return 0, false
	}
	var r rune
	for _, c := range s.buf[s.pos : s.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.pos += 4
	return r, true
}

// AppendRaw consumes any JSON value and appends its text unchanged.
func (s *Scanner) AppendRaw(dst []byte) ([]byte, error) {
	c, err := s.Next()
	if err != nil {
		return dst, err
	}
	switch c {
	case '"':
		return s.appendRawString(dst, len(dst))
	case '{', '[':
		return s.appendRawComposite(dst)
	}
	// number, true, false, null: up to the next delimiter.
	start := len(dst)
	for {
		for s.pos < s.end {
			switch c := s.buf[s.pos]; c {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				if len(dst) == start {
					return dst, s.fail("want a value, found %q", c)
				}
				return dst, nil
			default:
				if c == ':' || c == '[' || c == '{' || c == '"' {
					return dst, s.fail("want a value, found %q", c)
				}
				dst = append(dst, c)
				s.pos++
			}
		}
		if err := s.tooLarge(dst, start); err != nil {
			return dst, err
		}
		if !s.more() {
			if len(dst) == start {
				return dst, s.fail("%v", errUnexpectedEnd)
			}
			return dst, nil
		}
	}
}

// appendRawString copies a string literal, quotes and escapes included;
// start is where the value being copied began in dst (for its limit).
func (s *Scanner) appendRawString(dst []byte, start int) ([]byte, error) {
	dst = append(dst, '"')
	s.pos++
	for {
		for s.pos < s.end {
			c := s.buf[s.pos]
			switch c {
			case '\\':
				if !s.ensure(2) {
					return dst, s.fail("unterminated string")
				}
				dst = append(dst, s.buf[s.pos], s.buf[s.pos+1])
				s.pos += 2
				continue
			case '"':
				s.pos++
				dst = append(dst, '"')
				return dst, s.tooLarge(dst, start)
			}
			dst = append(dst, c)
			s.pos++
		}
		if err := s.tooLarge(dst, start); err != nil {
			return dst, err
		}
		if !s.more() {
			return dst, s.fail("unterminated string")
		}
	}
}

// appendRawComposite copies an object or array, tracking nesting and strings.
func (s *Scanner) appendRawComposite(dst []byte) ([]byte, error) {
	start := len(dst)
	depth := 0
	for {
		for s.pos < s.end {
			c := s.buf[s.pos]
			switch c {
			case '"':
				var err error
				if dst, err = s.appendRawString(dst, start); err != nil {
					return dst, err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			dst = append(dst, c)
			s.pos++
			if depth == 0 {
				return dst, s.tooLarge(dst, start)
			}
		}
		if err := s.tooLarge(dst, start); err != nil {
			return dst, err
		}
		if !s.more() {
			return dst, s.fail("unterminated object or array")
		}
	}
}

// appendValidUTF8 appends src with each invalid byte replaced by U+FFFD.
func appendValidUTF8(dst, src []byte) []byte {
	for len(src) > 0 {
		r, size := utf8.DecodeRune(src)
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, src[:size]...)
		}
		src = src[size:]
	}
	return dst
}

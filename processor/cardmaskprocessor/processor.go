package cardmaskprocessor

import (
	"context"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

type masker struct {
	marker  string
	ignored map[string]struct{}
}

func newMasker(cfg *Config) *masker {
	m := &masker{marker: cfg.Marker, ignored: make(map[string]struct{}, len(cfg.IgnoredKeys))}
	for _, k := range cfg.IgnoredKeys {
		m.ignored[k] = struct{}{}
	}
	return m
}

func (m *masker) processLogs(_ context.Context, ld plog.Logs) (plog.Logs, error) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				m.maskValue(lr.Body())
				for k, v := range lr.Attributes().All() {
					if _, skip := m.ignored[k]; !skip {
						m.maskValue(v)
					}
				}
			}
		}
	}
	return ld, nil
}

// maskValue masks the strings in v, inside maps and slices too.
func (m *masker) maskValue(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if masked, changed := maskCardNumbers(v.Str(), m.marker); changed {
			v.SetStr(masked)
		}
	case pcommon.ValueTypeMap:
		for _, e := range v.Map().All() {
			m.maskValue(e)
		}
	case pcommon.ValueTypeSlice:
		for _, e := range v.Slice().All() {
			m.maskValue(e)
		}
	}
}

const (
	minCardDigits = 13
	maxCardDigits = 19
)

// group is one run of digits in a text, s[start:end].
type group struct{ start, end int }

// maskCardNumbers returns s with every card number replaced by marker. A
// card number is a run of digit groups joined by single spaces or dashes
// (or one group), standing alone (no letter, digit or decimal point right
// before or after it), whose digits have a card network's prefix and
// length and pass the Luhn check. A longer run of groups (a card and its
// security code, two cards) is searched for card numbers starting at each
// group, longest first.
func maskCardNumbers(s, marker string) (string, bool) {
	var out strings.Builder
	copied := 0 // s[:copied] is in out
	groups := make([]group, 0, 8)
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		groups = groups[:0]
		end := i
		for {
			start := end
			for end < len(s) && isDigit(s[end]) {
				end++
			}
			groups = append(groups, group{start, end})
			if end+1 < len(s) && (s[end] == ' ' || s[end] == '-') && isDigit(s[end+1]) {
				end++
				continue
			}
			break
		}
		runStart := i
		i = end
		if !standsAlone(s, runStart, end) {
			continue
		}
		for g := 0; g < len(groups); {
			k := cardAt(s, groups, g)
			if k == 0 {
				g++
				continue
			}
			if out.Len() == 0 {
				out.Grow(len(s))
			}
			out.WriteString(s[copied:groups[g].start])
			out.WriteString(marker)
			copied = groups[k-1].end
			g = k
		}
	}
	if copied == 0 {
		return s, false
	}
	out.WriteString(s[copied:])
	return out.String(), true
}

// cardAt is the end (exclusive) of the longest series of groups from g on
// whose digits are a card number, or 0 if there is none. A card number
// written in groups has groups of 3 to 8 digits (4-4-4-4, 4-6-5, 4-4-4-4-3),
// so a list of small numbers ("55 12 34 56 ...") is not read as one.
func cardAt(s string, groups []group, g int) int {
	var digits [maxCardDigits]byte
	n := 0
	best := 0
	cardSizedGroups := true
	for k := g; k < len(groups); k++ {
		width := groups[k].end - groups[k].start
		if n+width > maxCardDigits {
			break
		}
		cardSizedGroups = cardSizedGroups && width >= 3 && width <= 8
		n += copy(digits[n:], s[groups[k].start:groups[k].end])
		if n >= minCardDigits && (k == g || cardSizedGroups) && isCardNumber(digits[:n]) {
			best = k + 1
		}
	}
	return best
}

// standsAlone: s[start:end] is not part of a word or of a longer number
// such as a decimal.
func standsAlone(s string, start, end int) bool {
	if start > 0 {
		before := s[start-1]
		if isWordByte(before) || (isDecimalPoint(before) && start > 1 && isDigit(s[start-2])) {
			return false
		}
	}
	if end < len(s) {
		after := s[end]
		if isWordByte(after) || (isDecimalPoint(after) && end+1 < len(s) && isDigit(s[end+1])) {
			return false
		}
	}
	return true
}

// isCardNumber: a card network's prefix and length (Visa, Mastercard,
// American Express, Diners Club, JCB, Discover, UnionPay, Maestro, RuPay),
// and the Luhn check.
func isCardNumber(d []byte) bool {
	n := len(d)
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p3 := p2*10 + int(d[2]-'0')
	p4 := p3*10 + int(d[3]-'0')
	var lengthOK bool
	switch {
	case d[0] == '4': // Visa
		lengthOK = n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		lengthOK = n == 16
	case p2 == 34, p2 == 37: // American Express
		lengthOK = n == 15
	case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		lengthOK = n >= 14
	case p4 >= 3528 && p4 <= 3589: // JCB
		lengthOK = n >= 16
	case p2 == 50, p2 >= 56 && p2 <= 58, d[0] == '6': // Maestro, Discover, UnionPay, RuPay
		lengthOK = true
	}
	return lengthOK && luhnValid(d)
}

// luhnValid: from the rightmost digit, every second digit is doubled (9
// subtracted when over 9) and the sum is a multiple of 10.
func luhnValid(d []byte) bool {
	sum := 0
	for i := range d {
		digit := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			digit *= 2
			if digit > 9 {
				digit -= 9
			}
		}
		sum += digit
	}
	return sum%10 == 0
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isWordByte(b byte) bool {
	return isDigit(b) || b == '_' || (b|0x20 >= 'a' && b|0x20 <= 'z')
}

func isDecimalPoint(b byte) bool { return b == '.' || b == ',' }

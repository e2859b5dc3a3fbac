package appinsights

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// timespanMargin widens the request's timespan (which filters on the event
// timestamp) beyond the ingestion-time range: a row is ingested after its
// event time, and Application Insights accepts telemetry up to 48 h old.
const timespanMargin = 48 * time.Hour

// futureSkew lets through rows whose event time is ahead of the range (a
// client clock running fast).
const futureSkew = time.Hour

// Query is one request: the rows of the given events (and agents) ingested
// in [Lower, Upper), ordered by ingestion time then item id, at most Limit
// of them plus one, so that an over-full result is recognised.
type Query struct {
	EventNames []string
	// Agents, when set, keeps only these cloud_RoleInstance values.
	Agents       []string
	Lower, Upper time.Time
	Limit        int
}

// KQL is the query text. internal/testing/fakeappinsights parses exactly this
// shape; change both together.
func (q Query) KQL() string {
	var b strings.Builder
	b.WriteString(Table + "\n")
	b.WriteString("| where " + ColName + " in " + kqlList(q.EventNames) + "\n")
	if len(q.Agents) > 0 {
		b.WriteString("| where " + ColRoleInstance + " in " + kqlList(q.Agents) + "\n")
	}
	b.WriteString("| " + ExtendIngest + "\n")
	b.WriteString("| where " + ColIngest + " >= " + KQLTime(q.Lower) + " and " + ColIngest + " < " + KQLTime(q.Upper) + "\n")
	b.WriteString("| project " + strings.Join(Columns[:], ", ") + "\n")
	b.WriteString("| " + OrderByIngest + "\n")
	b.WriteString("| take " + strconv.Itoa(q.Limit+1))
	return b.String()
}

// Timespan is the ISO 8601 interval on event time that surely holds every
// row ingested in [Lower, Upper).
func (q Query) Timespan() string {
	const layout = "2006-01-02T15:04:05.0000000Z"
	return q.Lower.Add(-timespanMargin).UTC().Format(layout) + "/" + q.Upper.Add(futureSkew).UTC().Format(layout)
}

// KQLTime formats t as a Kusto datetime literal with all seven fraction digits.
func KQLTime(t time.Time) string {
	return "datetime(" + t.UTC().Format("2006-01-02T15:04:05.0000000Z") + ")"
}

// kqlString quotes s as a Kusto string literal.
func kqlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func kqlList(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = kqlString(v)
	}
	return "(" + strings.Join(quoted, ", ") + ")"
}

// CheckLiteral reports a value that is not safe inside a KQL string literal
// even escaped: invalid UTF-8, control characters (line breaks included),
// line and paragraph separators, and bidirectional controls (which show text
// in another order than Kusto reads it). key names the setting, for the
// message.
func CheckLiteral(key, value string) error {
	for i := 0; i < len(value); {
		r, size := utf8.DecodeRuneInString(value[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Errorf("%s %q has an invalid UTF-8 byte at byte %d: remove it", key, value, i)
		case unicode.IsControl(r), r == '\u2028', r == '\u2029', unicode.Is(unicode.Bidi_Control, r):
			return fmt.Errorf("%s %q has the control character %U at byte %d: remove it (it could end the query's string literal or hide what the value says)", key, value, r, i)
		}
		i += size
	}
	return nil
}

package copilotstudioreceiver

import (
	"strconv"
	"strings"
	"time"
)

// tick is the resolution of Kusto datetimes (100 ns). Window bounds are
// whole ticks so that what the receiver sends is exactly what Kusto compares.
const tick = 100 * time.Nanosecond

// timespanMargin widens the query's timespan (which filters on the event
// timestamp) beyond the ingestion window: a row is ingested after its event
// time, and Application Insights accepts telemetry up to 48 h old.
const timespanMargin = 48 * time.Hour

// futureSkew lets through rows whose event time is ahead of the window (a
// client clock running fast).
const futureSkew = time.Hour

// window is a half-open range of ingestion times [lower, upper).
type window struct {
	lower, upper time.Time
}

// kqlTime formats t as a Kusto datetime literal with all seven fraction digits.
func kqlTime(t time.Time) string {
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

// buildQuery is the KQL for one window: rows ordered by ingestion time, one
// more than limit so an over-full window is recognised. internal/testing/fakeappinsights
// parses exactly this shape; change both together.
func buildQuery(eventNames, agents []string, w window, limit int) string {
	var b strings.Builder
	b.WriteString("customEvents\n")
	b.WriteString("| where name in " + kqlList(eventNames) + "\n")
	if len(agents) > 0 {
		b.WriteString("| where cloud_RoleInstance in " + kqlList(agents) + "\n")
	}
	b.WriteString("| extend " + colIngest + " = ingestion_time()\n")
	b.WriteString("| where " + colIngest + " >= " + kqlTime(w.lower) + " and " + colIngest + " < " + kqlTime(w.upper) + "\n")
	b.WriteString("| project " + strings.Join(projectedColumns, ", ") + "\n")
	b.WriteString("| order by " + colIngest + " asc, " + colItemID + " asc\n")
	b.WriteString("| take " + strconv.Itoa(limit+1))
	return b.String()
}

// buildTimespan is the ISO 8601 interval on event time that surely holds
// every row ingested in w.
func buildTimespan(w window) string {
	const layout = "2006-01-02T15:04:05.0000000Z"
	return w.lower.Add(-timespanMargin).UTC().Format(layout) + "/" + w.upper.Add(futureSkew).UTC().Format(layout)
}

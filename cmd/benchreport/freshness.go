package main

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Freshness results are benchmarks named Freshness/<path>/<profile>, from
// any package; they make one table of their own, above the packages'
// tables, with a row for each path in freshnessPaths, measured or not.
// Their metrics, by unit (a missing one leaves its cell empty):
//
//	p50-s p90-s p99-s max-s                 freshness, in seconds
//	turns exact-turns split-turns merged-turns lost-turns own-records
//	                                        pairing against the ground truth
//	queries/h reads/row                     requests to the source per hour,
//	                                        times each row is read (overlap)
//	poll-s delay-s overlap-s reply-timeout-s reorder-s   the timings used
//	deadline-s flush-s calls/s              the webhook's timings and load
const freshnessPrefix = "Freshness/"

// freshnessPaths are the ways turns reach Kafka, in the table's order.
var freshnessPaths = []struct{ key, name string }{
	{"appinsights", "Application Insights (`copilotstudio` receiver)"},
	{"webhook", "Threat detection webhook (`copilotstudiowebhook` receiver)"},
	{"transcripts", "Dataverse transcripts (`copilotstudio_transcripts` receiver)"},
}

const freshnessCaption = `The Application Insights and transcripts rows are in simulated time: the
collector's own components run on one simulated clock, so these figures
are the same on any machine and at any load. **Freshness** of a turn
record is the time from the moment the last of its data could first be
read at the source to the moment the pipeline hands the record to the
Kafka exporter, whose batching (` + "`flush_timeout`" + ` 1 s) and Kafka's own
latency come on top. At the source means: for Application Insights, the
latest of its rows becoming queryable (at its ` + "`ingestion_time()`" + `); for
transcripts, the latest ` + "`createdon`" + ` (or later commit) of its transcript
rows, which Dataverse writes about 30 minutes after the conversation goes
quiet: add those 30 minutes for the time from the conversation itself.
The webhook row is real time on this machine: from the moment Copilot
Studio's call was due (an open-loop load at the rate shown) to its record
read back from Kafka, the exporter's batching included; a tool call is a
record of its own, never paired.
Pairing is checked row by row against the generated workload's ground
truth: **exact** turns arrive as one record holding exactly their rows,
**split** ones in several (**own records**: the late rows that became
records of their own), **merged** ones share a record with another turn's
rows, **lost** ones miss a row. How it is measured: Notes, "Freshness".
`

var gomaxprocsSuffix = regexp.MustCompile(`-\d+$`)

func isFreshness(r result) bool { return strings.HasPrefix(r.name, freshnessPrefix) }

func renderFreshness(b *strings.Builder, pkgs []pkgResults) {
	byPath := map[string][]result{}
	var paths []string
	for _, p := range pkgs {
		for _, r := range p.results {
			if !isFreshness(r) {
				continue
			}
			r = p.merged(r)
			path, _, _ := strings.Cut(strings.TrimPrefix(r.name, freshnessPrefix), "/")
			if _, seen := byPath[path]; !seen {
				paths = append(paths, path)
			}
			byPath[path] = append(byPath[path], r)
		}
	}
	if len(paths) == 0 {
		return
	}
	fmt.Fprintf(b, "## Freshness: how soon a turn reaches Kafka\n\n%s\n", freshnessCaption)
	b.WriteString("| path | profile | timings | p50 | p90 | p99 | max | turns: exact / split / merged / lost | own records | queries per hour |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	names := map[string]string{}
	order := []string{}
	for _, p := range freshnessPaths {
		names[p.key] = p.name
		order = append(order, p.key)
	}
	for _, p := range paths {
		if _, known := names[p]; !known {
			names[p] = p
			order = append(order, p)
		}
	}
	for _, path := range order {
		results := byPath[path]
		if len(results) == 0 {
			fmt.Fprintf(b, "| %s | | not measured yet | | | | | | | |\n", names[path])
			continue
		}
		for _, r := range results {
			m := map[string]float64{}
			for _, metric := range r.metrics {
				if v, err := strconv.ParseFloat(metric[0], 64); err == nil {
					m[metric[1]] = v
				}
			}
			name := gomaxprocsSuffix.ReplaceAllString(strings.TrimPrefix(r.name, freshnessPrefix+path+"/"), "")
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				names[path], strings.ReplaceAll(name, "+", " + "), timings(m),
				seconds(m, "p50-s"), seconds(m, "p90-s"), seconds(m, "p99-s"), seconds(m, "max-s"),
				pairing(m), count(m, "own-records"), queries(m))
		}
	}
	b.WriteString("\n")
}

func timings(m map[string]float64) string {
	var parts []string
	for _, t := range []struct{ unit, name string }{
		{"poll-s", "poll"}, {"delay-s", "ingestion_delay"}, {"overlap-s", "overlap"},
		{"reorder-s", "reorder_window"}, {"reply-timeout-s", "reply_timeout"},
		{"deadline-s", "answer_deadline"}, {"flush-s", "Kafka flush_timeout"},
	} {
		if v, ok := m[t.unit]; ok {
			parts = append(parts, t.name+" "+duration(v))
		}
	}
	if v, ok := m["calls/s"]; ok {
		parts = append(parts, thousands(v)+" calls/s, real time")
	}
	return strings.Join(parts, ", ")
}

func seconds(m map[string]float64, unit string) string {
	if v, ok := m[unit]; ok {
		return duration(v)
	}
	return ""
}

// duration writes seconds as 250ms, 1.5s, 30s, 4m43s, 28m or 1h02m.
func duration(s float64) string {
	switch {
	case s < 1:
		return fmt.Sprintf("%.0fms", s*1000)
	case s < 60:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", s), ".0") + "s"
	}
	d := time.Duration(math.Round(s)) * time.Second
	h, min, sec := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm", h, min)
	case sec == 0:
		return fmt.Sprintf("%dm", min)
	}
	return fmt.Sprintf("%dm%02ds", min, sec)
}

func pairing(m map[string]float64) string {
	turns, ok := m["turns"]
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s / %s / %s / %s of %s", count(m, "exact-turns"), count(m, "split-turns"),
		count(m, "merged-turns"), count(m, "lost-turns"), thousands(turns))
}

func queries(m map[string]float64) string {
	q := count(m, "queries/h")
	if reads, ok := m["reads/row"]; ok && q != "" {
		q += fmt.Sprintf(" (each row read %.1fx)", reads)
	}
	return q
}

func count(m map[string]float64, unit string) string {
	if v, ok := m[unit]; ok {
		return thousands(v)
	}
	return ""
}

// thousands writes a count with thousands separators, as the notes do.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: example.com/a
cpu: Test CPU @ 2.0GHz
BenchmarkDecode-2   	      10	 500000000 ns/op	 210.50 MB/s	 1000 rows/s	 1024 B/op	 3 allocs/op
some log line from a benchmark
PASS
ok  	example.com/a	3.1s
pkg: example.com/b
BenchmarkPair/open=1k-2   	 100	 900 ns/op	 1200 cpu-ns/row
ok  	example.com/b	1.0s
pkg: example.com/b
BenchmarkPersist-2   	 20	 1743 cpu-ns/row
pkg: example.com/b
BenchmarkPair/open=1k-2   	 120	 950 ns/op	 1300 cpu-ns/row
pkg: example.com/b
BenchmarkPair/open=1k-2   	 110	 700 ns/op	 1100 cpu-ns/row
pkg: example.com/c
BenchmarkExport-2   	 40	 15000 cpu-ns/record
BenchmarkExport-2   	 40	 12000 cpu-ns/record
`

func TestParseAndRenderKeepsNotes(t *testing.T) {
	pkgs, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	// example.com/b ran twice (as make bench runs a package with two
	// -benchtime settings): one table.
	if len(pkgs) != 3 || len(pkgs[0].results) != 1 || len(pkgs[1].results) != 2 {
		t.Fatalf("parsed %+v", pkgs)
	}
	got := pkgs[0].results[0]
	if got.name != "Decode-2" || got.runs != "10" || len(got.metrics) != 5 || got.metrics[1] != [2]string{"210.50", "MB/s"} {
		t.Fatalf("result = %+v", got)
	}

	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(out, []byte("# old\n| stale | numbers |\n"+notesHeading+"\n\nhand-written analysis\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	render(&b, pkgs, keptNotes(out))
	s := b.String()
	for _, want := range []string{"Test CPU @ 2.0GHz", "| Decode-2 | 10 | 500000000 ns/op, 210.50 MB/s", "## example.com/b", "hand-written analysis",
		// three rounds of one benchmark: one row of medians, the CPU time's range
		"| Pair/open=1k-2 | median of 3 rounds | 900 ns/op, 1200 cpu-ns/row (1100-1300) |",
		"| Export-2 | median of 2 rounds | 12000 cpu-ns/record (12000-15000) |"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "stale") {
		t.Error("old numbers survived")
	}
}

const freshnessSample = `pkg: example.com/freshness
BenchmarkFreshness/appinsights/shipped-2         	       1	2739614261 ns/op	       180.0 delay-s	     16335 exact-turns	         0 lost-turns	      1680 max-s	         0 merged-turns	        60.00 overlap-s	         0 own-records	      1091 p50-s	      1556 p90-s	      1669 p99-s	       600.0 poll-s	         6.078 queries/h	         1.098 reads/row	     12143 records	       300.0 reorder-s	       900.0 reply-timeout-s	         0 split-turns	     16335 turns
BenchmarkFreshness/appinsights/low-latency+REORDER_WINDOW=1m-2         	       1	4029526113 ns/op	        30.00 delay-s	     16120 exact-turns	         0 lost-turns	       314.7 max-s	        10.00 merged-turns	       210.0 overlap-s	       209.0 own-records	       159.3 p50-s	       184.6 p90-s	       236.3 p99-s	        30.00 poll-s	       120.1 queries/h	       60.00 reorder-s	       120.0 reply-timeout-s	       205.0 split-turns	     16335 turns
BenchmarkLateIngestion/shipped-2   	       1	2827427121 ns/op	         0 lost-within-coverage
pkg: example.com/webhook
BenchmarkFreshness/webhook/shipped-2   	       1	100 ns/op	       0.2500 p50-s	       1.500 p99-s	       200.0 calls/s	         0.3000 deadline-s	         1.000 flush-s
pkg: example.com/freshness
BenchmarkFreshness/transcripts/shipped-2         	       1	5455955377 ns/op	      6360 exact-turns	         0 lost-turns	      1412 max-s	         0 merged-turns	       600.0 overlap-s	         0 own-records	       530.0 p50-s	      1112 p90-s	      1189 p99-s	       300.0 poll-s	        32.11 queries/h	         3.011 reads/row	      3925 records	       300.0 reorder-s	       900.0 reply-timeout-s	         0 split-turns	      6360 turns
`

// TestFreshnessTable: Freshness/<path>/<profile> results of any package make
// one table, with timings and durations written for people, a row for each
// known path not measured, and nothing of theirs in the packages' tables.
func TestFreshnessTable(t *testing.T) {
	pkgs, err := parse(strings.NewReader(freshnessSample))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	render(&b, pkgs, "")
	s := b.String()
	for _, want := range []string{
		"## Freshness: how soon a turn reaches Kafka",
		"| Application Insights (`copilotstudio` receiver) | shipped | poll 10m, ingestion_delay 3m, overlap 1m, reorder_window 5m, reply_timeout 15m | 18m11s | 25m56s | 27m49s | 28m | 16,335 / 0 / 0 / 0 of 16,335 | 0 | 6 (each row read 1.1x) |",
		"| Application Insights (`copilotstudio` receiver) | low-latency + REORDER_WINDOW=1m | poll 30s, ingestion_delay 30s, overlap 3m30s, reorder_window 1m, reply_timeout 2m | 2m39s | 3m05s | 3m56s | 5m15s | 16,120 / 205 / 10 / 0 of 16,335 | 209 | 120 |",
		"| Threat detection webhook (`copilotstudiowebhook` receiver) | shipped | answer_deadline 300ms, Kafka flush_timeout 1s, 200 calls/s, real time | 250ms |  | 1.5s |  |  |  |  |",
		"| Dataverse transcripts (`copilotstudio_transcripts` receiver) | shipped | poll 5m, overlap 10m, reorder_window 5m, reply_timeout 15m | 8m50s | 18m32s | 19m49s | 23m32s | 6,360 / 0 / 0 / 0 of 6,360 | 0 | 32 (each row read 3.0x) |",
		"| LateIngestion/shipped-2 | 1 |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "| Freshness/") || strings.Contains(s, "## example.com/webhook") {
		t.Errorf("freshness results also in a package table:\n%s", s)
	}
	if i, j := strings.Index(s, "## Freshness"), strings.Index(s, "## example.com/freshness"); i < 0 || j < i {
		t.Errorf("the freshness table should come before the packages' tables:\n%s", s)
	}
}

// TestFreshnessTableNamesPathsNotMeasured: a known path without results
// still has its row, saying so.
func TestFreshnessTableNamesPathsNotMeasured(t *testing.T) {
	pkgs, err := parse(strings.NewReader("pkg: example.com/freshness\nBenchmarkFreshness/appinsights/shipped-2 \t 1\t 100 ns/op\t 1091 p50-s\n"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	render(&b, pkgs, "")
	for _, want := range []string{
		"| Threat detection webhook (`copilotstudiowebhook` receiver) | | not measured yet |",
		"| Dataverse transcripts (`copilotstudio_transcripts` receiver) | | not measured yet |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

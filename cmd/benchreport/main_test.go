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

// Command benchreport turns `go test -bench` output into BENCHMARKS.md: the
// machine, Go version and date first, then one table per package. The
// hand-written part of the existing file (from the notesHeading on: what the
// profiles showed, what changed) is kept, so `make bench` refreshes the numbers
// without losing the analysis.
//
//	go test -run '^$' -bench . -benchmem ./... | go run ./cmd/benchreport -out BENCHMARKS.md
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

const notesHeading = "## Notes"

type result struct {
	name    string
	runs    string
	metrics [][2]string // value, unit
}

type pkgResults struct {
	pkg     string
	cpu     string
	results []result
	// rounds holds every run of a benchmark that ran more than once
	// (make bench runs the ones it compares in interleaved rounds), by name.
	rounds map[string][]result
}

// add records res; a benchmark seen before keeps its first place in the table.
func (p *pkgResults) add(res result) {
	if p.rounds == nil {
		p.rounds = map[string][]result{}
	}
	if _, seen := p.rounds[res.name]; !seen {
		p.results = append(p.results, res)
	}
	p.rounds[res.name] = append(p.rounds[res.name], res)
}

// merged is r, or for a benchmark run in several rounds, the median of each
// metric over the rounds (a value one round measured) with the range of the
// CPU-time ones, which is what the notes compare.
func (p *pkgResults) merged(r result) result {
	rounds := p.rounds[r.name]
	if len(rounds) < 2 {
		return r
	}
	out := result{name: r.name, runs: fmt.Sprintf("median of %d rounds", len(rounds))}
	for _, m := range r.metrics {
		unit := m[1]
		var values []float64
		text := map[float64]string{}
		for _, round := range rounds {
			for _, rm := range round.metrics {
				if v, err := strconv.ParseFloat(rm[0], 64); rm[1] == unit && err == nil {
					values = append(values, v)
					text[v] = rm[0]
				}
			}
		}
		if len(values) == 0 {
			continue
		}
		slices.Sort(values)
		value := text[values[(len(values)-1)/2]]
		if isCPUPerItem(unit) && values[0] != values[len(values)-1] {
			unit += fmt.Sprintf(" (%s-%s)", text[values[0]], text[values[len(values)-1]])
		}
		out.metrics = append(out.metrics, [2]string{value, unit})
	}
	return out
}

// isCPUPerItem is a CPU-time-per-item unit: per row (the receiver and
// processor) or per record (the akto exporter).
func isCPUPerItem(unit string) bool {
	return strings.HasSuffix(unit, "cpu-ns/row") || strings.HasSuffix(unit, "cpu-ns/record")
}

func main() {
	out := flag.String("out", "BENCHMARKS.md", "file to write")
	flag.Parse()
	pkgs, err := parse(os.Stdin)
	if err != nil {
		fatal(err)
	}
	if len(pkgs) == 0 {
		fatal(fmt.Errorf("no benchmark results on stdin"))
	}
	notes := keptNotes(*out)
	var b strings.Builder
	render(&b, pkgs, notes)
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchreport:", err)
	os.Exit(1)
}

// parse reads the standard benchmark format: "pkg:" and "cpu:" headers, then
// lines of name, iterations and value/unit pairs.
func parse(r io.Reader) ([]pkgResults, error) {
	var pkgs []pkgResults
	var cpu string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "cpu: "):
			// go test prints cpu after pkg: it belongs to the package above.
			cpu = strings.TrimPrefix(line, "cpu: ")
			if len(pkgs) > 0 {
				pkgs[len(pkgs)-1].cpu = cpu
			}
		case strings.HasPrefix(line, "pkg: "):
			// make bench runs some packages twice (different -benchtime):
			// one table per package.
			name := strings.TrimPrefix(line, "pkg: ")
			if len(pkgs) == 0 || pkgs[len(pkgs)-1].pkg != name {
				pkgs = append(pkgs, pkgResults{pkg: name, cpu: cpu})
			}
		case strings.HasPrefix(line, "Benchmark") && len(pkgs) > 0:
			f := strings.Fields(line)
			if len(f) < 4 || len(f)%2 != 0 {
				continue // a benchmark's own log line
			}
			res := result{name: strings.TrimPrefix(f[0], "Benchmark"), runs: f[1]}
			for i := 2; i+1 < len(f); i += 2 {
				res.metrics = append(res.metrics, [2]string{f[i], f[i+1]})
			}
			pkgs[len(pkgs)-1].add(res)
		}
	}
	return pkgs, sc.Err()
}

func keptNotes(path string) string {
	old, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if i := strings.Index(string(old), notesHeading); i >= 0 {
		return string(old[i:])
	}
	return ""
}

func render(b *strings.Builder, pkgs []pkgResults, notes string) {
	fmt.Fprintf(b, "# Benchmarks\n\nWritten by `make bench` on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "| machine | |\n|---|---|\n")
	fmt.Fprintf(b, "| cpu | %s |\n", firstNonEmpty(pkgs[0].cpu, cpuModel()))
	fmt.Fprintf(b, "| cores | %d |\n", runtime.NumCPU())
	fmt.Fprintf(b, "| memory | %s |\n", memTotal())
	fmt.Fprintf(b, "| go | %s %s/%s |\n\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	renderFreshness(b, pkgs)
	for _, p := range pkgs {
		var results []result
		for _, r := range p.results {
			if !isFreshness(r) {
				results = append(results, r)
			}
		}
		if len(results) == 0 {
			continue
		}
		fmt.Fprintf(b, "## %s\n\n| benchmark | runs | results |\n|---|---|---|\n", p.pkg)
		for _, r := range results {
			r = p.merged(r)
			parts := make([]string, len(r.metrics))
			for i, m := range r.metrics {
				parts[i] = m[0] + " " + m[1]
			}
			fmt.Fprintf(b, "| %s | %s | %s |\n", r.name, r.runs, strings.Join(parts, ", "))
		}
		b.WriteString("\n")
	}
	if notes == "" {
		notes = notesHeading + "\n\nWhat the profiles showed and what changed goes here; `make bench` keeps this section.\n"
	}
	b.WriteString(notes)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func cpuModel() string {
	return procField("/proc/cpuinfo", "model name")
}

func memTotal() string {
	return procField("/proc/meminfo", "MemTotal")
}

func procField(path, key string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

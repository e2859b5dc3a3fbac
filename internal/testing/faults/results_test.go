package faults

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// result is one scenario's line in RESULTS.md.
type result struct {
	scenario, what              string
	conversations, rows, turns  int
	delivered, lost, duplicated int
	wrong, unexpected, restarts int
	seconds                     float64
	failed                      bool
	notes                       []string
}

// writeResults writes the summary the top-level README's "Guarantees"
// section quotes.
func writeResults(path string, sz size, seed uint64, source string, results []result) error {
	var b strings.Builder
	var rows, turns, lost, dup, wrong, unexpected, failed int
	for _, r := range results {
		rows += r.rows
		turns += r.turns
		lost += r.lost
		dup += r.duplicated
		wrong += r.wrong
		unexpected += r.unexpected
		if r.failed {
			failed++
		}
	}
	fmt.Fprintf(&b, "# Fault-injection results\n\n")
	fmt.Fprintf(&b, "Written by `make faults` (internal/testing/faults, %s size, seed %d) on %s, commit %s, %s/%s, %d CPUs.\n",
		sz.name, seed, time.Now().UTC().Format("2006-01-02 15:04 MST"), source, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintf(&b, "Each scenario runs the real `otelcol-copilotstudio` binary with `collector-config.yaml` against the\n")
	fmt.Fprintf(&b, "Application Insights and Entra ID stand-ins and a kfake broker, on a fresh generated workload, and\n")
	fmt.Fprintf(&b, "checks every record on the topic against the workload's ground truth. The `transcripts:` scenarios add\n")
	fmt.Fprintf(&b, "`collector-config.transcripts.yaml` and the Dataverse stand-in (rows are transcript rows; a turn's tool\n")
	fmt.Fprintf(&b, "calls count in wrong too); the `webhook:` scenarios add `collector-config.webhook.yaml` and callers\n")
	fmt.Fprintf(&b, "playing Copilot Studio: there each call is its own conversation, rows are the calls sent and turns the\n")
	fmt.Fprintf(&b, "calls answered `Otelcol-Record: accepted`, the only ones that must arrive (the others are counted in\n")
	fmt.Fprintf(&b, "the notes below).\n\n")
	fmt.Fprintf(&b, "**%d scenarios, %d rows or calls sent, %d turns or accepted calls: %d lost, %d duplicated, %d wrong, %d unexpected; %d scenarios failed.**\n\n",
		len(results), rows, turns, lost, dup, wrong, unexpected, failed)
	b.WriteString("| scenario | conversations | rows / calls sent | turns / calls accepted | delivered | lost | duplicated | wrong | unexpected | SIGKILLs | seconds | result |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		verdict := "pass"
		if r.failed {
			verdict = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %.0f | %s |\n",
			r.scenario, r.conversations, r.rows, r.turns, r.delivered, r.lost, r.duplicated, r.wrong, r.unexpected, r.restarts, r.seconds, verdict)
	}
	b.WriteString("\n## What each scenario does, and what it saw\n\n")
	for _, r := range results {
		fmt.Fprintf(&b, "- **%s**: %s.", r.scenario, r.what)
		for _, n := range r.notes {
			fmt.Fprintf(&b, " %s.", strings.TrimSuffix(n, "."))
		}
		b.WriteString("\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// commit names the source the binary was built from, as far as git knows;
// "-dirty" when the tree had uncommitted changes, which TestResultsFresh
// refuses.
func commit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=12").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

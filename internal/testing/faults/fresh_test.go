package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// measuredPaths are what the figures in RESULTS.md depend on, as git
// pathspecs from the top of the repository: the sources of the components
// and of the shipped internal packages they compile in, the distribution's
// build and its config. Tests, documentation and test data do not change
// what the binary does, nor does the suite's own code under
// internal/testing.
var measuredPaths = []string{
	":(top)receiver", ":(top)processor", ":(top)exporter", ":(top)extension", ":(top)internal",
	":(top)collector-config.yaml", ":(top)builder-config.yaml",
	// the overlays the transcripts and webhook scenarios run with
	":(top)collector-config.transcripts.yaml", ":(top)collector-config.webhook.yaml",
	":(top,exclude)internal/testing",
	":(top,exclude,glob)**/*_test.go",
	":(top,exclude,glob)**/*.md",
	":(top,exclude,glob)**/testdata/**",
}

const rerun = "rerun `make faults` on a clean tree (`git status` shows nothing to commit) and commit the RESULTS.md it writes"

var (
	// The header line writeResults writes.
	headerRE = regexp.MustCompile("Written by `make faults` \\(internal/testing/faults, (\\w+) size, seed \\d+\\) on [^,]+, commit (\\S+), ")
	// git describe's "<tag>-<n>-g<hash>".
	describedRE = regexp.MustCompile(`-g([0-9a-f]{7,40})$`)
)

// TestResultsFresh fails when RESULTS.md no longer measures the code: it
// was written on a tree with uncommitted changes, in the short form or for
// some scenarios only, or a component, a shipped package or the config has
// changed since the commit it names. It skips outside a git checkout.
func TestResultsFresh(t *testing.T) {
	data, err := os.ReadFile("RESULTS.md")
	if err != nil {
		t.Fatalf("RESULTS.md: %v; %s", err, rerun)
	}
	var names []string
	for _, sc := range scenarios() {
		names = append(names, sc.name)
	}
	problems, skip := freshness(".", string(data), names)
	if skip != "" {
		t.Skip(skip)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// freshness judges results, the text of RESULTS.md, against the git
// checkout dir is in and the suite's scenario names. It returns what is
// wrong, or why it cannot tell (not a git checkout, a shallow clone without
// the commit).
func freshness(dir, results string, scenarios []string) (problems []string, skip string) {
	git := func(args ...string) (string, error) { return runGit(dir, args...) }
	if _, err := git("rev-parse", "--is-inside-work-tree"); err != nil {
		return nil, fmt.Sprintf("not in a git checkout, so RESULTS.md's commit cannot be compared with the code: %v", err)
	}
	m := headerRE.FindStringSubmatch(results)
	if m == nil {
		return []string{"RESULTS.md does not say which commit it measured (no \"Written by `make faults` ... commit ...\" line); " + rerun}, ""
	}
	sz, described := m[1], m[2]
	if sz != fullSize.name {
		problems = append(problems, fmt.Sprintf("RESULTS.md was written by the %s form, not by `make faults` (full size); %s", sz, rerun))
	}
	for _, name := range scenarios {
		if !strings.Contains(results, "| "+name+" |") {
			problems = append(problems, fmt.Sprintf("RESULTS.md has no line for the scenario %q; %s", name, rerun))
		}
	}
	measured, dirty := strings.CutSuffix(described, "-dirty")
	if dirty {
		return append(problems, fmt.Sprintf("RESULTS.md was measured on a tree with uncommitted changes (commit %s): no commit holds the code it measured; %s", described, rerun)), ""
	}
	if h := describedRE.FindStringSubmatch(measured); h != nil {
		measured = h[1]
	}
	if _, err := git("rev-parse", "--verify", "--quiet", measured+"^{commit}"); err != nil {
		if shallow, _ := git("rev-parse", "--is-shallow-repository"); shallow == "true" {
			return problems, fmt.Sprintf("RESULTS.md measured commit %s, which this shallow clone does not have (git fetch --unshallow to check it)", measured)
		}
		return append(problems, fmt.Sprintf("RESULTS.md measured commit %s, which is not in this repository's history (rebased away, or never pushed); %s", measured, rerun)), ""
	}
	changed, err := git(append([]string{"diff", "--name-only", measured, "HEAD", "--"}, measuredPaths...)...)
	if err != nil {
		return append(problems, err.Error()), ""
	}
	if changed != "" {
		problems = append(problems, fmt.Sprintf("RESULTS.md measured commit %s; these files it depends on have changed since:\n%s\n%s", measured, changed, rerun))
	}
	return problems, ""
}

// runGit runs git in dir and returns its trimmed output.
func runGit(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && len(exit.Stderr) > 0 {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(exit.Stderr)))
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

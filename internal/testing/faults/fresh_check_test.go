package faults

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repo is a throwaway git repository shaped like this one.
type repo struct {
	t   *testing.T
	dir string
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	r := &repo{t: t, dir: t.TempDir()}
	r.git("init", "-q")
	r.git("config", "user.email", "suite@example.invalid")
	r.git("config", "user.name", "suite")
	r.git("config", "commit.gpgsign", "false")
	return r
}

func (r *repo) git(args ...string) string {
	r.t.Helper()
	out, err := runGit(r.dir, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// commit writes the files and commits them; it returns the commit's hash.
func (r *repo) commit(files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		path := filepath.Join(r.dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "change")
	return r.git("rev-parse", "HEAD")
}

func resultsAt(size, commit string, scenarios ...string) string {
	s := "# Fault-injection results\n\nWritten by `make faults` (internal/testing/faults, " + size +
		" size, seed 20260218) on 2026-12-06 07:00 UTC, commit " + commit + ", linux/amd64, 2 CPUs.\n\n| scenario | result |\n|---|---|\n"
	for _, name := range scenarios {
		s += "| " + name + " | pass |\n"
	}
	return s
}

func TestFreshness(t *testing.T) {
	r := newRepo(t)
	measured := r.commit(map[string]string{
		"receiver/copilotstudioreceiver/receiver.go":    "package r\n",
		"processor/activitypairprocessor/state.go":      "package p\n",
		"internal/schema/schema.go":                     "package schema\n",
		"internal/testing/faults/scenarios_test.go":     "package faults\n",
		"collector-config.yaml":                         "receivers: {}\n",
		"collector-config.webhook.yaml":                 "receivers: {}\n",
		"README.md":                                     "# readme\n",
		"extension/storagecheckextension/check.go":      "package s\n",
		"extension/storagecheckextension/README.md":     "# s\n",
		"extension/storagecheckextension/testdata/x":    "x\n",
		"receiver/copilotstudioreceiver/decode_test.go": "package r\n",
	})
	short := measured[:12]
	names := []string{"baseline", "broker down, then back"}
	fresh := resultsAt("full", short, names...)

	expectFresh := func(t *testing.T, results string) {
		t.Helper()
		problems, skip := freshness(r.dir, results, names)
		if skip != "" || len(problems) > 0 {
			t.Fatalf("want fresh, got skip %q, problems %q", skip, problems)
		}
	}
	expectStale := func(t *testing.T, results string, want ...string) {
		t.Helper()
		problems, skip := freshness(r.dir, results, names)
		if skip != "" {
			t.Fatalf("skipped: %s", skip)
		}
		all := strings.Join(problems, "\n")
		for _, w := range append(want, "rerun `make faults` on a clean tree") {
			if !strings.Contains(all, w) {
				t.Errorf("problems %q lack %q", all, w)
			}
		}
	}

	t.Run("nothing changed: a fresh clone passes", func(t *testing.T) { expectFresh(t, fresh) })
	t.Run("git describe with a tag", func(t *testing.T) { expectFresh(t, resultsAt("full", "v0.1.0-3-g"+short, names...)) })

	// Tests, docs, test data and the suite itself do not change what is measured.
	r.commit(map[string]string{
		"README.md": "# readme, edited\n",
		"extension/storagecheckextension/README.md":     "# s, edited\n",
		"extension/storagecheckextension/testdata/x":    "y\n",
		"receiver/copilotstudioreceiver/decode_test.go": "package r // more tests\n",
		"internal/testing/faults/scenarios_test.go":     "package faults // a new scenario\n",
		"internal/testing/faults/RESULTS.md":            fresh,
	})
	t.Run("tests and docs changed", func(t *testing.T) { expectFresh(t, fresh) })

	t.Run("measured on a dirty tree", func(t *testing.T) {
		expectStale(t, resultsAt("full", short+"-dirty", names...), "uncommitted changes")
	})
	t.Run("the short form", func(t *testing.T) {
		expectStale(t, resultsAt("short", short, names...), "written by the short form")
	})
	t.Run("a scenario missing", func(t *testing.T) {
		expectStale(t, resultsAt("full", short, names[0]), `no line for the scenario "broker down, then back"`)
	})
	t.Run("a commit not in the history", func(t *testing.T) {
		expectStale(t, resultsAt("full", "0123456789ab", names...), "not in this repository's history")
	})
	t.Run("no header", func(t *testing.T) { expectStale(t, "# Fault-injection results\n", "does not say which commit") })

	for _, changed := range []string{
		"processor/activitypairprocessor/state.go", "internal/schema/schema.go", "collector-config.yaml",
		"collector-config.webhook.yaml", "exporter/aktoexporter/exporter.go", "extension/storagecheckextension/check.go",
	} {
		t.Run("changed "+changed, func(t *testing.T) {
			head := r.git("rev-parse", "HEAD")
			defer r.git("reset", "-q", "--hard", head)
			r.commit(map[string]string{changed: "// changed\n"})
			expectStale(t, fresh, "changed since", changed)
		})
	}

	t.Run("outside a git checkout", func(t *testing.T) {
		problems, skip := freshness(t.TempDir(), fresh, names)
		if skip == "" || len(problems) > 0 {
			t.Fatalf("want a skip, got skip %q, problems %q", skip, problems)
		}
	})
}

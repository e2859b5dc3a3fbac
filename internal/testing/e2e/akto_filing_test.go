package e2e

import (
	"slices"
	"testing"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/aktocheck"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// checkAktoFiling applies Akto's filing rules (aktocheck) to every record
// values holds.
func checkAktoFiling(t *testing.T, values [][]byte, opts aktocheck.Options) {
	t.Helper()
	if len(values) == 0 {
		t.Fatal("no records to check")
	}
	if err := aktocheck.Records(values, opts); err != nil {
		t.Fatal(err)
	}
}

// agentsOf are the agents the turns talk to, none published or known to
// Dataverse (the base configuration reads no Dataverse).
func agentsOf(turns ...[]workload.Turn) []aktocheck.Agent {
	var names []string
	for _, ts := range turns {
		for _, t := range ts {
			if !slices.Contains(names, t.Agent) {
				names = append(names, t.Agent)
			}
		}
	}
	agents := make([]aktocheck.Agent, len(names))
	for i, n := range names {
		agents[i] = aktocheck.Agent{Name: n}
	}
	return agents
}

package dataverse

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
)

// newAgents is an agent list of srv that is never Run: the tests read it
// themselves, so no time passes.
func newAgents(t *testing.T, srv *fakedataverse.Server) (*Agents, *[]error) {
	t.Helper()
	c, _, _ := newClient(t, srv, "tok")
	var reads []error
	return NewAgents(c, AgentsSettings{RefreshInterval: 1e12, Clock: clock.System, Logger: zap.NewNop(),
		OnRead: func(_ context.Context, err error) { reads = append(reads, err) }}), &reads
}

// asked reports (and takes back) a request for an early read.
func asked(a *Agents) bool {
	select {
	case <-a.wake:
		return true
	default:
		return false
	}
}

func TestUnknownAgentAsksForOneEarlyReadUntilTheNextRegularOne(t *testing.T) {
	srv := newServer("tok", "env")
	defer srv.Close()
	a, reads := newAgents(t, srv)
	a.Refresh(context.Background())
	if _, ok := a.Lookup("HR Agent", ""); !ok || len(*reads) != 1 || (*reads)[0] != nil {
		t.Fatalf("after a read: HR Agent found %v, reads %v", ok, *reads)
	}

	a.Unknown("Shadow Agent")
	a.Unknown("Shadow Agent")
	if !asked(a) || asked(a) {
		t.Fatal("an unknown agent should ask for exactly one early read")
	}
	a.read(context.Background(), false)
	a.Unknown("Shadow Agent")
	if asked(a) {
		t.Fatal("an agent an early read did not find asked again before the next regular read")
	}

	// It is added to Dataverse: the next regular read finds it, and until
	// then one early read may still be asked for by a name never seen.
	srv.SetBots(append(sampleBots, fakedataverse.Bot{BotID: "b9", Name: "Shadow Agent", SchemaName: "cr44e_shadow"})...)
	a.Unknown("Another Agent")
	if !asked(a) {
		t.Fatal("a name never asked for did not ask")
	}
	a.Refresh(context.Background())
	if got, ok := a.Lookup("Shadow Agent", ""); !ok || got.ID != "b9" {
		t.Fatalf("after the regular read Shadow Agent = %+v, %v", got, ok)
	}
	a.Unknown("Another Agent")
	if asked(a) {
		t.Fatal("an agent the read it asked for did not find asked again at once")
	}
	a.Refresh(context.Background())
	a.Unknown("Another Agent")
	if !asked(a) {
		t.Fatal("after the next regular read, an agent still unknown may ask again")
	}
}

func TestUnknownAgentKeepsAskingWhileDataverseIsDown(t *testing.T) {
	srv := newServer("tok", "env")
	defer srv.Close()
	srv.SetUnavailable(true)
	a, reads := newAgents(t, srv)
	if err := a.WaitFirst(context.Background(), 0); err == nil || !strings.Contains(err.Error(), "not read within") {
		t.Fatalf("before any read: %v", err)
	}
	a.Refresh(context.Background())
	if err := a.WaitFirst(context.Background(), 0); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("after a failed read WaitFirst = %v, want the read's error", err)
	}
	if len(*reads) != 1 || (*reads)[0] == nil {
		t.Fatalf("reads reported %v, want one failure", *reads)
	}
	a.Unknown("HR Agent")
	if !asked(a) {
		t.Fatal("no early read asked for")
	}
	a.read(context.Background(), false)
	a.Unknown("HR Agent")
	if !asked(a) {
		t.Fatal("after a failed read the agent's rows no longer ask: recovery would wait for the regular read")
	}
	srv.SetUnavailable(false)
	a.read(context.Background(), false)
	if err := a.WaitFirst(context.Background(), 0); err != nil {
		t.Fatalf("after a successful read WaitFirst = %v", err)
	}
	if _, ok := a.Lookup("HR Agent", ""); !ok {
		t.Fatal("HR Agent not found once Dataverse is back")
	}
}

package activitypairprocessor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
)

// State stored by an earlier build restores in this one: testdata/state-v2
// is the file_storage file the processor of the commit before the pairing
// core moved into internal/pairing left after compatBatches (a snapshot and
// two segments after it), and testdata/state-v2.golden what that build
// emitted when restarted on it and given compatAfter. This build must
// restore the same state and emit the same records, and so must a state
// this build stores after the same rows.
func TestStateOfAnEarlierBuildRestores(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "state-v2.golden"))
	require.NoError(t, err)
	for _, stored := range []string{"by the earlier build", "by this build"} {
		t.Run(stored, func(t *testing.T) {
			dir := t.TempDir()
			var host *testenv.StorageHost
			if stored == "by the earlier build" {
				data, err := os.ReadFile(filepath.Join("testdata", "state-v2", "processor_activitypair_"))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(dir, "processor_activitypair_"), data, 0o600))
				host = testenv.StartFileStorage(t, dir)
			} else {
				host = testenv.StartFileStorage(t, dir)
				h := newHarness(t, storageConfig(), host)
				h.p.store.minSnapshot = 0
				for _, b := range compatBatches {
					h.consume(b...)
				}
				require.Len(t, h.turns(), 4)
				h.kill()
			}
			var counts string
			records := compatOutput(t, host, func(h *harness) {
				c := h.p.core
				counts = fmt.Sprintf("restored: rows_buffered=%d open_turns=%d emitted_ids=%d", c.BufferedRows(), c.OpenTurns(), c.EmittedIDs())
			})
			got := counts + "\n" + strings.Join(records, "\n") + "\n"
			assert.Equal(t, string(want), got)
			assert.Contains(t, got, `\"text\":\"A1, late\"`, "a late reply to a turn emitted before the restart is a turn of its own")
		})
	}
}

// compatBatches is the stored-state compatibility scenario: rows of two
// agents, GUID and text item ids, turns
// emitted (with their asks and indices), turns open, a greeting, a failed
// turn, rows buffered in one save and emitted in a later one. The state a
// processor leaves after them is in testdata/state-v2; compatAfter is
// what comes after the restart.
var (
	compatGUID = func(n int) string { return fmt.Sprintf("5f1c0a2e-7c1e-4a0e-9f7e-%012x", n) }

	compatBatches = [][]testRow{
		{
			msg("c1", compatGUID(1), 0, "a1", "How do I reset my password?"),
			topicStart("c1", compatGUID(2), 1*s, "cr44e_hr.topic.ResetPassword"),
			action("c1", compatGUID(3), 2*s, "cr44e_hr.topic.ResetPassword", "SendActivity"),
			event("g", "g-0", 0, "conversationUpdate", "ev1"),
			reply("g", "g-1", 2*s, "ev1", "Hello, I'm HR Agent."),
			withAgent(msg("d", compatGUID(20), 5*s, "d1", "Who can see my salary?"), "Payroll Bot"),
		},
		{
			reply("c1", compatGUID(4), 3*s, "a1", "Go to aka.ms/sspr."),
			msg("c1", compatGUID(5), 30*s, "a2", "Thanks"),
			msg("l", "l-1", 0, "la1", "Q1"),
			msg("l", "l-2", 10*s, "la2", "Q2"),
			withAgent(reply("d", compatGUID(21), 6*s, "d1", "Only HR."), "Payroll Bot"),
		},
		{
			withAgent(msg("d", compatGUID(22), 40*s, "d2", "And my manager?"), "Payroll Bot"),
			msg("f", "f-1", 50*s, "fa1", "Book a room"),
			failure("f", "f-2", 51*s, "FlowActionException"),
		},
		{
			reply("c1", compatGUID(6), 31*s, "a2", "You're welcome."),
			msg("c1", compatGUID(7), 70*s, "a3", "One more thing"),
		},
	}

	compatAfter = [][]testRow{
		// the receiver sends the last window again: duplicates
		{reply("c1", compatGUID(6), 31*s, "a2", "You're welcome."), msg("c1", compatGUID(7), 70*s, "a3", "One more thing")},
		{
			reply("l", "l-3", 12*s, "la1", "A1, late"),
			reply("c1", compatGUID(8), 71*s, "a3", "Sure."),
			withAgent(reply("d", compatGUID(23), 41*s, "d2", "Your manager too."), "Payroll Bot"),
			msg("c1", compatGUID(9), 100*s, "a4", "Bye"),
		},
	}
)

func withAgent(r testRow, agent string) testRow { r.agent = agent; return r }

// compatOutput runs compatAfter on a processor started on the state in
// host, then a sweep an hour later and a shutdown (which saves), and
// returns every emitted record (resource, attributes and body), sorted
// (the order of conversations within a call is not fixed). restored is
// called right after the start.
func compatOutput(t *testing.T, host *testenv.StorageHost, restored func(*harness)) (records []string) {
	h := newHarness(t, storageConfig(), host)
	restored(h)
	for _, b := range compatAfter {
		h.consume(b...)
	}
	h.clock.Advance(time.Hour)
	require.NoError(t, h.p.sweep(context.Background()))
	h.shutdown()
	for _, ld := range h.sink.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			res, err := json.Marshal(rl.Resource().Attributes().AsRaw())
			require.NoError(t, err)
			for _, rec := range rl.ScopeLogs().At(0).LogRecords().All() {
				attrs, err := json.Marshal(rec.Attributes().AsRaw())
				require.NoError(t, err)
				records = append(records, string(res)+" "+string(attrs)+" "+string(rec.Body().Bytes().AsRaw()))
			}
		}
	}
	slices.Sort(records)
	return records
}

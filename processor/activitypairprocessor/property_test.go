package activitypairprocessor

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// workloadLogs maps generated rows to log records the way the receiver
// does (one record per row, a resource per agent run).
func workloadLogs(t testing.TB, rows []workload.Row) plog.Logs {
	ld := plog.NewLogs()
	var sl plog.ScopeLogs
	agent := ""
	for i, r := range rows {
		if i == 0 || r.RoleInstance != agent {
			agent = r.RoleInstance
			rl := ld.ResourceLogs().AppendEmpty()
			rl.Resource().Attributes().PutStr(schema.AppInsightsAppID, "00000000-app")
			rl.Resource().Attributes().PutStr(schema.AgentName, agent)
			sl = rl.ScopeLogs().AppendEmpty()
		}
		var dims map[string]string
		require.NoError(t, json.Unmarshal([]byte(r.CustomDimensions), &dims))
		rec := sl.LogRecords().AppendEmpty()
		rec.SetTimestamp(pcommon.NewTimestampFromTime(r.Timestamp))
		rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(r.IngestionTime))
		a := rec.Attributes()
		a.PutStr(schema.EventName, r.Name)
		a.PutStr(schema.ItemID, r.ItemID)
		a.PutStr(schema.AgentName, agent)
		for k, key := range map[string]string{
			"conversationId": schema.ConversationID, "activityId": schema.ActivityID,
			"replyActivityId": schema.ReplyToActivityID, "type": schema.ActivityType,
			"channelId": schema.ChannelID, "locale": schema.Locale, "fromId": schema.UserID,
			"TopicName": schema.TopicName, "Kind": schema.TopicKind,
			"ErrorCode": schema.ErrorCode, "ErrorMessage": schema.ErrorMessage,
		} {
			if v, ok := dims[k]; ok {
				a.PutStr(key, v)
			}
		}
		if text, ok := dims["text"]; ok {
			rec.Body().SetStr(text)
		}
	}
	return ld
}

// splits cuts rows into batches of random sizes.
func splits(rng *rand.Rand, rows []workload.Row, maxBatch int) [][]workload.Row {
	var out [][]workload.Row
	for len(rows) > 0 {
		n := min(len(rows), 1+rng.IntN(maxBatch))
		out = append(out, rows[:n:n])
		rows = rows[n:]
	}
	return out
}

func aktoValues(h *harness) [][]byte {
	var vals [][]byte
	for _, e := range h.turns() {
		vals = append(vals, e.Body)
	}
	return vals
}

var propertySeeds = []uint64{1, 2, 3, 5, 8, 13, 21, 34}

// Whatever the arrival order and batch split, the turns made from the same
// rows are the ground truth's, each once.
func TestPropertyAnyOrderGivesTheGroundTruth(t *testing.T) {
	for _, seed := range propertySeeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := workload.Generate(workload.DefaultConfig(seed, 150))
			rng := rand.New(rand.NewPCG(seed, 99))
			rows := append([]workload.Row(nil), w.Rows...)
			rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
			cfg := testConfig()
			cfg.ReorderWindow = 10000 * time.Hour // nothing completes before shutdown
			h := newHarness(t, cfg, nil)
			for _, b := range splits(rng, rows, 200) {
				require.NoError(t, h.p.ConsumeLogs(context.Background(), workloadLogs(t, b)))
			}
			h.shutdown()
			rep := workload.Verify(w.Turns, aktoValues(h))
			require.NoError(t, rep.Err(false))
			assert.Equal(t, len(w.Turns), rep.Records)
		})
	}
}

// In ingestion order, as the receiver reads, with the default windows,
// turns go out as they complete and every one is right.
func TestPropertyIngestionOrderGivesTheGroundTruth(t *testing.T) {
	for _, seed := range propertySeeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := workload.Generate(workload.DefaultConfig(seed, 300))
			rng := rand.New(rand.NewPCG(seed, 7))
			h := newHarness(t, createDefaultConfig().(*Config), nil)
			for _, b := range splits(rng, w.Rows, 500) {
				require.NoError(t, h.p.ConsumeLogs(context.Background(), workloadLogs(t, b)))
			}
			before := len(h.turns())
			h.shutdown()
			rep := workload.Verify(w.Turns, aktoValues(h))
			require.NoError(t, rep.Err(false))
			assert.Greater(t, before, len(w.Turns)/2, "most turns complete before shutdown")
		})
	}
}

// With no reorder window and rows ingested in random order (so arriving
// in that order), turns may be split by late rows, but every row is in
// exactly one turn and no reply with a reply-to id is ever attached to a
// message it does not answer.
func TestPropertyAnyOrderLosesNothingAndNeverMisattaches(t *testing.T) {
	for _, seed := range propertySeeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := workload.Generate(workload.DefaultConfig(seed, 150))
			rng := rand.New(rand.NewPCG(seed, 11))
			rows := append([]workload.Row(nil), w.Rows...)
			rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
			for i := range rows {
				rows[i].IngestionTime = workload.DefaultStart.Add(3*time.Hour + time.Duration(i)*time.Millisecond)
			}
			h := newHarness(t, testConfig(), nil)
			for _, b := range splits(rng, rows, 50) {
				// and some rows twice, as a re-sent window brings them
				b = append(b, b[:rng.IntN(len(b))]...)
				require.NoError(t, h.p.ConsumeLogs(context.Background(), workloadLogs(t, b)))
			}
			h.shutdown()
			checkEveryRowOnceNeverMisattached(t, w.Rows, h.turns())
		})
	}
}

func checkEveryRowOnceNeverMisattached(t *testing.T, rows []workload.Row, turns []emitted) {
	t.Helper()
	type info struct{ name, activity, replyTo string }
	byItem := map[string]info{}
	for _, r := range rows {
		var dims map[string]string
		require.NoError(t, json.Unmarshal([]byte(r.CustomDimensions), &dims))
		byItem[r.ItemID] = info{r.Name, dims["activityId"], dims["replyActivityId"]}
	}
	seen := map[string]int{}
	for _, e := range turns {
		asks := map[string]bool{}
		for _, it := range e.Items {
			seen[it]++
			if in := byItem[it]; in.name == schema.EventMessageReceived {
				asks[in.activity] = true
			}
		}
		if e.RequestActivityID != "" {
			require.True(t, asks[e.RequestActivityID], "the request row is in its own turn")
		}
		for _, it := range e.Items {
			if in := byItem[it]; in.name == schema.EventMessageSend && in.replyTo != "" && len(asks) > 0 {
				assert.True(t, asks[in.replyTo], "reply %s answers %s, but is in the turn of %v", it, in.replyTo, asks)
			}
		}
	}
	for item := range byItem {
		assert.Equal(t, 1, seen[item], "row %s is in %d turns", item, seen[item])
	}
	assert.Len(t, seen, len(byItem))
}

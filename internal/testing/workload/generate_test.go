package workload

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

func TestSameSeedSameWorkload(t *testing.T) {
	a := Generate(DefaultConfig(7, 300))
	b := Generate(DefaultConfig(7, 300))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs with seed 7 differ")
	}
	c := Generate(DefaultConfig(8, 300))
	if reflect.DeepEqual(a.Rows, c.Rows) {
		t.Fatal("seeds 7 and 8 gave the same rows")
	}
}

func TestRowsHaveTheQueryAPIShape(t *testing.T) {
	w := Generate(DefaultConfig(1, 2000))
	known := map[string]bool{}
	for _, n := range append(slices.Clone(schema.MessageEvents), schema.FlowEvents...) {
		known[n] = true
	}
	items := map[string]bool{}
	for i, r := range w.Rows {
		var dims map[string]string
		if err := json.Unmarshal([]byte(r.CustomDimensions), &dims); err != nil {
			t.Fatalf("row %s: customDimensions is not a JSON object of strings: %v", r.ItemID, err)
		}
		if dims["conversationId"] == "" || dims["channelId"] == "" {
			t.Fatalf("row %s has no conversationId or channelId: %s", r.ItemID, r.CustomDimensions)
		}
		if dims["designMode"] == "" && dims["DesignMode"] == "" {
			t.Fatalf("row %s has no design mode flag", r.ItemID)
		}
		if !known[r.Name] {
			t.Fatalf("row %s has event name %q outside the receiver's default set", r.ItemID, r.Name)
		}
		if items[r.ItemID] {
			t.Fatalf("item id %s used twice", r.ItemID)
		}
		items[r.ItemID] = true
		if r.IngestionTime.Before(r.Timestamp.Add(20*time.Second)) || r.RoleInstance == "" {
			t.Fatalf("row %s: ingested %v after its event, role %q", r.ItemID, r.IngestionTime.Sub(r.Timestamp), r.RoleInstance)
		}
		if i > 0 && r.IngestionTime.Before(w.Rows[i-1].IngestionTime) {
			t.Fatalf("rows not in ingestion order at %d", i)
		}
	}
	held := 0
	for _, turn := range w.Turns {
		for _, id := range turn.ItemIDs {
			if !items[id] {
				t.Fatalf("turn %d of %s holds unknown item %s", turn.Index, turn.ConversationID, id)
			}
			delete(items, id)
			held++
		}
	}
	if len(items) != 0 || held != len(w.Rows) {
		t.Fatalf("%d rows belong to no turn; turns hold %d of %d rows", len(items), held, len(w.Rows))
	}
}

// The mix must contain every case the pipeline has to get right; with 2,000
// conversations each shows up many times.
func TestMixCoversTheHardCases(t *testing.T) {
	w := Generate(DefaultConfig(1, 2000))
	s := Summarize(w)
	t.Logf("%+v", s)
	for name, n := range map[string]int{
		"greetings": s.Greetings, "unanswered": s.Unanswered, "failed": s.Failed,
		"multi-reply": s.MultiReply, "replies without replyActivityId": s.RepliesWithoutReplyTo,
		"late rows": s.LateRows, "greetings answering an event": s.EventRows, "Teams ids over 130 chars": s.LongConversationIDs,
	} {
		if n < 20 {
			t.Errorf("only %d %s in 2,000 conversations", n, name)
		}
	}
	if len(s.Agents) < 4 || len(s.Channels) < 5 {
		t.Errorf("agents %v, channels %v: want several of each", s.Agents, s.Channels)
	}
}

// The minimum size must be cheap: 10,000 conversations give at least
// 100,000 rows.
func TestTenThousandConversationsGiveAHundredThousandRows(t *testing.T) {
	w := Generate(DefaultConfig(3, 10000))
	if len(w.Rows) < 100000 {
		t.Fatalf("10,000 conversations gave %d rows", len(w.Rows))
	}
	t.Logf("%d rows, %d turns", len(w.Rows), len(w.Turns))
}

func TestForEachConversationMatchesGenerate(t *testing.T) {
	cfg := DefaultConfig(5, 50)
	var turns []Turn
	rows := 0
	ForEachConversation(cfg, func(c Conversation) {
		turns = append(turns, c.Turns...)
		rows += len(c.Rows)
	})
	w := Generate(cfg)
	if !reflect.DeepEqual(turns, w.Turns) || rows != len(w.Rows) {
		t.Fatal("streaming and in-memory generation differ")
	}
}

// TestGroundTruthFollowsPairingRules re-derives the turns from the rows alone
// with the documented pairing rules and checks they are the ground truth.
// If this fails, the generator, not the processor, is wrong.
func TestGroundTruthFollowsPairingRules(t *testing.T) {
	w := Generate(DefaultConfig(11, 1500))
	var order []string
	for _, turn := range w.Turns {
		if len(order) == 0 || order[len(order)-1] != turn.ConversationID {
			order = append(order, turn.ConversationID)
		}
	}
	got := pairByRules(t, w.Rows, order)
	if len(got) != len(w.Turns) {
		t.Fatalf("rules give %d turns, ground truth has %d", len(got), len(w.Turns))
	}
	for i := range got {
		g, want := got[i], w.Turns[i]
		if !reflect.DeepEqual(g, want) {
			t.Fatalf("turn %d of %s:\n rules: %+v\n truth: %+v", want.Index, want.ConversationID, g, want)
		}
	}
}

// pairByRules: a user message opens a turn; a reply joins the message its
// replyActivityId names, else the latest turn of its conversation; flow rows
// (and non-message activities) join the latest turn; anything before the first
// user message is the greeting.
func pairByRules(t *testing.T, rows []Row, convOrder []string) []Turn {
	type parsed struct {
		Row
		dims map[string]string
	}
	byConv := map[string][]parsed{}
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, func(a, b Row) int { return a.Timestamp.Compare(b.Timestamp) })
	for _, r := range sorted {
		var dims map[string]string
		if err := json.Unmarshal([]byte(r.CustomDimensions), &dims); err != nil {
			t.Fatal(err)
		}
		c := dims["conversationId"]
		byConv[c] = append(byConv[c], parsed{r, dims})
	}
	var out []Turn
	for _, c := range convOrder {
		var turns []Turn
		byActivity := map[string]int{}
		latest := func(p parsed) *Turn {
			if len(turns) == 0 {
				turns = append(turns, Turn{ConversationID: c, Agent: p.RoleInstance, Channel: p.dims["channelId"]})
			}
			return &turns[len(turns)-1]
		}
		for _, p := range byConv[c] {
			var turn *Turn
			switch {
			case p.Name == schema.EventMessageReceived && p.dims["type"] == "message":
				turns = append(turns, Turn{ConversationID: c, Agent: p.RoleInstance, Channel: p.dims["channelId"], Index: len(turns),
					RequestText: p.dims["text"], RequestActivityID: p.dims["activityId"], RequestTime: p.Timestamp})
				byActivity[p.dims["activityId"]] = len(turns) - 1
				turn = &turns[len(turns)-1]
			case p.Name == schema.EventMessageSend:
				if i, ok := byActivity[p.dims["replyActivityId"]]; ok {
					turn = &turns[i]
				} else {
					turn = latest(p)
				}
				turn.Replies = append(turn.Replies, p.dims["text"])
			default:
				turn = latest(p)
				if p.Name == schema.EventOnErrorLog {
					turn.Failed = true
				}
			}
			turn.ItemIDs = append(turn.ItemIDs, p.ItemID)
		}
		out = append(out, turns...)
	}
	return out
}

func BenchmarkGenerate(b *testing.B) {
	cfg := DefaultConfig(1, 1000)
	rows := 0
	b.ReportAllocs()
	for b.Loop() {
		ForEachConversation(cfg, func(c Conversation) { rows += len(c.Rows) })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
}

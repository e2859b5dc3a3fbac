package faults

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// badCase is one kind of malformed row, planted in a conversation of its own
// among good traffic. The good turns must all arrive; what happens to the bad
// conversation is judged per case.
type badCase struct {
	name         string
	conversation string
	rows         []workload.Row // the whole conversation, the broken row included
	broken       string         // item id of the broken row ("" when it has none)
	marker       string         // text carried by the broken row, to find it downstream
	// mustSkip: the pipeline has to drop the row, count it and log its item
	// id. Otherwise it may deliver the row (repaired, e.g. with U+FFFD, or
	// truncated) or drop it, but a drop must be logged with the item id: a
	// user's message never disappears without a trace.
	mustSkip bool
	// tamper changes the row on its way from the stand-in (column types,
	// event names the query did not ask for).
	tamper func(*Tamper)
}

// badInput plants one conversation per kind of malformed row. Their rows are
// ingested around at, so they share query pages and batches with good rows.
func badInput(seed uint64, at time.Time) []badCase {
	cfg := workload.DefaultConfig(seed, 400)
	cfg.Start, cfg.Span = at.Add(-30*time.Minute), 10*time.Minute
	cfg.GreetingRate, cfg.LateRate, cfg.MissingReplyIDRate = 0, 0, 0
	var pool []workload.Conversation
	workload.ForEachConversation(cfg, func(c workload.Conversation) { pool = append(pool, c) })

	// next takes an unused conversation whose first turn is answered, and
	// returns it with the index of its first row named name.
	used := 0
	next := func(name string) (workload.Conversation, int) {
		for ; used < len(pool); used++ {
			c := pool[used]
			if len(c.Turns[0].Replies) == 0 {
				continue
			}
			for i, r := range c.Rows {
				if r.Name == name {
					used++
					return c, i
				}
			}
		}
		panic("faults: workload pool too small for the bad-input cases")
	}

	var cases []badCase
	add := func(name, rowName string, mustSkip bool, breakRow func(r *workload.Row, marker string)) *badCase {
		c, i := next(rowName)
		marker := fmt.Sprintf("BADROW %s %s", strings.ReplaceAll(name, " ", "_"), c.Rows[i].ItemID[:8])
		breakRow(&c.Rows[i], marker)
		cases = append(cases, badCase{name: name, conversation: c.ID, rows: c.Rows, broken: c.Rows[i].ItemID, marker: marker, mustSkip: mustSkip})
		return &cases[len(cases)-1]
	}
	setDims := func(r *workload.Row, edit func(map[string]any)) {
		var dims map[string]any
		if err := json.Unmarshal([]byte(r.CustomDimensions), &dims); err != nil {
			panic(err)
		}
		edit(dims)
		b, _ := json.Marshal(dims)
		r.CustomDimensions = string(b)
	}
	withText := func(r *workload.Row, text string) { setDims(r, func(d map[string]any) { d["text"] = text }) }

	received, send := schema.EventMessageReceived, schema.EventMessageSend

	add("customDimensions not JSON", received, true, func(r *workload.Row, m string) {
		r.CustomDimensions = `{"type":"message","conversationId":"x","text":"` + m + ` unterminated`
	})
	add("customDimensions a JSON array", received, true, func(r *workload.Row, m string) {
		r.CustomDimensions = `["` + m + `"]`
	})
	add("customDimensions empty", send, true, func(r *workload.Row, m string) { r.CustomDimensions = "" })
	add("no conversationId", received, true, func(r *workload.Row, m string) {
		withText(r, m)
		setDims(r, func(d map[string]any) { delete(d, "conversationId") })
	})
	add("conversationId not a string", send, true, func(r *workload.Row, m string) {
		withText(r, m)
		setDims(r, func(d map[string]any) { d["conversationId"] = 12345 })
	})
	add("no itemId", send, true, func(r *workload.Row, m string) {
		withText(r, m)
		r.ItemID = ""
	}).broken = "" // nothing to log it by
	add("unknown activity type", received, true, func(r *workload.Row, m string) {
		withText(r, m)
		setDims(r, func(d map[string]any) { d["type"] = "holographicMessage" })
	})
	add("user message without activityId", received, false, func(r *workload.Row, m string) {
		withText(r, m)
		setDims(r, func(d map[string]any) { delete(d, "activityId") })
	})
	add("1 MB text", received, false, func(r *workload.Row, m string) {
		withText(r, m+" "+strings.Repeat("lorem ipsum dolor sit amet ", 1<<20/27))
	})
	// A lone surrogate escape (what an 8 KB property cut inside an emoji
	// leaves) and raw invalid bytes (the stand-in's encoder turns them into
	// U+FFFD, as any JSON encoder on the way would).
	add("invalid UTF-8", received, false, func(r *workload.Row, m string) {
		withText(r, m)
		r.CustomDimensions = strings.Replace(r.CustomDimensions, m, m+" broken \xff\xfe bytes, half an emoji \\ud83d", 1)
	})
	// A reply whose event name the receiver never asked for (a proxy or an
	// API change let it through).
	c := add("unknown event name", send, true, func(r *workload.Row, m string) { withText(r, m) })
	id := c.broken
	c.tamper = func(t *Tamper) { t.SetCell(id, "name", "SomethingNobodyAskedFor") }

	for _, wrong := range []struct {
		column   string
		value    any
		mustSkip bool
	}{
		{"timestamp", 1771374276, true},
		{"name", nil, true},
		{"itemId", 42, true},
		{"ingest", "yesterday", true},
		{"cloud_RoleInstance", true, false},
		// An object rather than a JSON string: a reader may accept it, but
		// must not choke on the rest of the page.
		{"customDimensions", nil, false},
	} {
		c := add("wrong column type: "+wrong.column, received, wrong.mustSkip, func(r *workload.Row, m string) { withText(r, m) })
		id, col, v := c.broken, wrong.column, wrong.value
		if col == "customDimensions" {
			var obj map[string]any
			_ = json.Unmarshal([]byte(c.rows[indexOf(c.rows, id)].CustomDimensions), &obj)
			v = obj
		}
		if col == "itemId" {
			c.broken = "" // the id it could be logged by is gone
		}
		c.tamper = func(t *Tamper) { t.SetCell(id, col, v) }
	}
	return cases
}

func indexOf(rows []workload.Row, itemID string) int {
	for i, r := range rows {
		if r.ItemID == itemID {
			return i
		}
	}
	return -1
}

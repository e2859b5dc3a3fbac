package pairing

import (
	"encoding/json"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// base is the event time rows are placed relative to.
var base = time.Date(2026, 2, 18, 1, 24, 36, 0, time.UTC)

const s = time.Second

// testRow is one telemetry row as the processor decodes it.
type testRow struct {
	conv     string
	item     string
	kind     Kind
	at       time.Duration // event time after base
	ingest   time.Duration // ingestion time after base; 0 means at + 30s
	activity string
	replyTo  string
	text     string
	topic    string
	detail   string
	channel  string
	locale   string
	source   Source
}

const testChannel = "msteams"

func msg(conv, item string, at time.Duration, activity, text string) testRow {
	return testRow{conv: conv, item: item, kind: KindRequest, at: at, activity: activity, text: text, detail: "29:user", channel: testChannel, locale: "en-US"}
}

func reply(conv, item string, at time.Duration, replyTo, text string) testRow {
	return testRow{conv: conv, item: item, kind: KindReply, at: at, replyTo: replyTo, text: text, channel: testChannel}
}

func topicStart(conv, item string, at time.Duration, name string) testRow {
	return testRow{conv: conv, item: item, kind: KindFlow, at: at, topic: name, channel: testChannel}
}

func action(conv, item string, at time.Duration, name, kind string) testRow {
	return testRow{conv: conv, item: item, kind: KindAction, at: at, topic: name, detail: kind, channel: testChannel}
}

func failure(conv, item string, at time.Duration, code string) testRow {
	return testRow{conv: conv, item: item, kind: KindError, at: at, detail: code, text: "The action failed: " + code, channel: testChannel}
}

// event is a BotMessageReceived of another type than message (typ: it is
// what makes the row an event, and the core sees only the kind).
func event(conv, item string, at time.Duration, typ, activity string) testRow {
	_ = typ
	return testRow{conv: conv, item: item, kind: KindEvent, at: at, activity: activity, channel: testChannel, locale: "en-US"}
}

func (r testRow) ingestedAt(d time.Duration) testRow { r.ingest = d; return r }

func (r testRow) input() Input {
	in := Input{
		Row: Row{At: base.Add(r.at).UnixNano(), Kind: r.kind, Item: NewItemID(r.item), Activity: r.activity,
			ReplyTo: r.replyTo, Text: r.text, Topic: r.topic, Detail: r.detail},
		Context: Context{Conversation: r.conv, Channel: r.channel, Locale: r.locale},
		Source:  r.source,
	}
	ingest := base.Add(r.ingest)
	if r.ingest == 0 {
		ingest = base.Add(r.at + 30*time.Second)
	}
	in.Row.SetObserved(ingest.UnixNano())
	return in
}

// testConfig is the processor's default configuration with reorder_window 0.
func testConfig() Config {
	cfg := defaultConfig()
	cfg.ReorderWindow = 0
	return cfg
}

// defaultConfig is the processor's default configuration.
func defaultConfig() Config {
	return Config{ReplyTimeout: 15 * time.Minute, ReorderWindow: 5 * time.Minute, EmittedIDsTTL: time.Hour,
		MaxOpenTurns: 200000, MaxBufferedBytes: 256 << 20}
}

// testPart is how many conversations a part of a selection holds in these
// tests: small, so that emitting in parts is exercised.
const testPart = 2

// run drives a core the way the processor does, recording what it emits.
type run struct {
	t            testing.TB
	core         *Core
	sel          Selection
	replyTimeout time.Duration
	now          time.Time // the wall clock
	out          []emitted
	agents       []string // by Source, for workload records
	// onPart, when set, sees each part of a selection once walked, before
	// it is committed
	onPart func(*Selection)
}

// emitted is one emitted turn.
type emitted struct {
	Conv            string
	Index           int
	ID              string
	Request         string
	RequestActivity string
	Replies         []string
	Items           []string
	At              int64
	Channel         string
	Source          Source
	Outcome         Outcome
	Trigger         Trigger
}

func newRun(t testing.TB, cfg Config) *run {
	return &run{t: t, core: New(cfg), replyTimeout: cfg.ReplyTimeout, now: base.Add(time.Hour)}
}

// consume is one ConsumeLogs call: the rows are added a few at a time,
// then complete and evicted turns are emitted.
func (r *run) consume(rows ...testRow) {
	in := make([]Input, 0, len(rows))
	for _, row := range rows {
		in = append(in, row.input())
	}
	r.consumeInputs(in)
}

func (r *run) consumeInputs(rows []Input) {
	for len(rows) > 0 {
		n := min(len(rows), 16)
		window := slices.Clone(rows[:n]) // Add may change them
		r.core.Add(window, r.now.UnixNano())
		rows = rows[n:]
	}
	r.core.EndBatch()
	r.sel.Reset()
	r.core.SelectComplete(&r.sel)
	r.core.SelectEvictions(&r.sel)
	r.emit()
	r.core.Prune()
}

// sweep is the processor's timeout sweep.
func (r *run) sweep() {
	r.sel.Reset()
	r.core.SelectComplete(&r.sel)
	r.core.SelectIdle(&r.sel, r.now.Add(-r.replyTimeout).UnixNano())
	r.emit()
	r.core.Prune()
}

// shutdown emits every open turn, as a shutdown without storage does.
func (r *run) shutdown() {
	r.sel.Reset()
	r.core.SelectAll(&r.sel)
	r.emit()
}

func (r *run) emit() {
	defer r.sel.Reset()
	for r.sel.NextPart(testPart) {
		for conv, turns := range r.sel.Conversations() {
			before := len(r.out)
			for t := range r.sel.Turns() {
				require.Same(r.t, conv, t.Conversation())
				r.out = append(r.out, describe(t))
			}
			require.Equal(r.t, turns, len(r.out)-before, "turns announced and walked")
		}
		if r.onPart != nil {
			r.onPart(&r.sel)
		}
		r.core.Commit(&r.sel)
	}
}

func describe(t *Turn) emitted {
	e := emitted{Conv: t.Conversation().ID(), Index: t.Index(), ID: string(t.AppendID(nil)), At: t.At(),
		Channel: t.Conversation().Channel(), Source: t.Conversation().Source(), Outcome: t.Outcome(), Trigger: t.Trigger()}
	if req := t.Request(); req != nil {
		e.Request, e.RequestActivity = req.Text, req.Activity
	}
	for i := range t.Len() {
		row := t.Row(i)
		e.Items = append(e.Items, row.Item.String())
		if row.Kind == KindReply {
			e.Replies = append(e.Replies, row.Text)
		}
	}
	return e
}

// summary is what a turn says, for compact expectations.
type summary struct {
	Conv    string
	Request string
	Replies []string
	Items   []string
	Failed  bool
}

func (r *run) summaries() []summary {
	var out []summary
	for _, e := range r.out {
		out = append(out, summary{e.Conv, e.Request, e.Replies, e.Items, e.Outcome == OutcomeFailed})
	}
	return out
}

// counts is how many turns went out by outcome and trigger, named as the
// processor's turns_emitted metric names them.
func (r *run) counts() map[[2]string]int64 {
	names := [OutcomeCount]string{schema.OutcomePaired, schema.OutcomeRequestOnly, schema.OutcomeResponseOnly, schema.OutcomeFailed}
	out := map[[2]string]int64{}
	for _, e := range r.out {
		out[[2]string{names[e.Outcome], e.Trigger.String()}]++
	}
	return out
}

// byConversation orders turns by conversation, keeping each conversation's
// own order: turns of different conversations may go out in any order.
func byConversation(turns []summary) []summary {
	out := slices.Clone(turns)
	slices.SortStableFunc(out, func(a, b summary) int { return strings.Compare(a.Conv, b.Conv) })
	return out
}

// workloadInputs maps generated rows to the rows the processor decodes
// from the receiver's records (its decodeRow), each agent a source.
func (r *run) workloadInputs(rows []workload.Row) []Input {
	out := make([]Input, 0, len(rows))
	for _, w := range rows {
		var dims map[string]string
		require.NoError(r.t, json.Unmarshal([]byte(w.CustomDimensions), &dims))
		src := slices.Index(r.agents, w.RoleInstance)
		if src < 0 {
			src = len(r.agents)
			r.agents = append(r.agents, w.RoleInstance)
		}
		in := Input{
			Row: Row{At: w.Timestamp.UnixNano(), Item: NewItemID(w.ItemID), Activity: dims["activityId"], ReplyTo: dims["replyActivityId"],
				Text: dims["text"], Topic: dims["TopicName"]},
			Context: Context{Conversation: dims["conversationId"], Channel: dims["channelId"], Locale: dims["locale"]},
			Source:  Source(src),
		}
		row := &in.Row
		switch w.Name {
		case schema.EventMessageReceived:
			row.Kind = KindEvent
			if t := dims["type"]; t == "" || strings.EqualFold(t, "message") {
				row.Kind, row.Detail = KindRequest, dims["fromId"]
			}
		case schema.EventMessageSend:
			row.Kind = KindReply
		case schema.EventTopicAction:
			row.Kind, row.Detail = KindAction, dims["Kind"]
		case schema.EventOnErrorLog:
			row.Kind, row.Detail = KindError, dims["ErrorCode"]
			if m := dims["ErrorMessage"]; m != "" {
				row.Text = m
			}
		default:
			row.Kind = KindFlow
		}
		if row.Kind != KindRequest && row.Kind != KindReply && row.Kind != KindError {
			row.Text = ""
		}
		row.SetObserved(w.IngestionTime.UnixNano())
		out = append(out, in)
	}
	return out
}

// records renders the emitted turns in the shape of the Akto traffic
// record workload's verifier reads (with encoding/json: these tests check
// pairing, not the Akto encoder).
func (r *run) records() [][]byte {
	var out [][]byte
	for _, e := range r.out {
		rec := workload.AktoRecord{
			Path:       "/copilot/conversation/" + url.PathEscape(e.Conv) + "/message/" + strconv.Itoa(e.Index),
			Time:       strconv.FormatInt(e.At/int64(time.Second), 10),
			StatusCode: "200",
		}
		if e.Outcome == OutcomeFailed {
			rec.StatusCode = "500"
		}
		if e.RequestActivity != "" || e.Request != "" {
			rec.RequestPayload = mustJSON(r.t, map[string]string{"text": e.Request, "activityId": e.RequestActivity})
		}
		if len(e.Replies) > 0 {
			var messages []map[string]string
			for _, text := range e.Replies {
				messages = append(messages, map[string]string{"text": text})
			}
			rec.ResponsePayload = mustJSON(r.t, map[string]any{"text": strings.Join(e.Replies, "\n"), "messages": messages})
		}
		agent := ""
		if int(e.Source) < len(r.agents) {
			agent = r.agents[e.Source]
		}
		rec.Tag = mustJSON(r.t, map[string]string{"turn-id": e.ID, "bot-name": workload.SanitizeAgentName(agent, false), "channel": e.Channel})
		out = append(out, []byte(mustJSON(r.t, rec)))
	}
	return out
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// splits cuts rows into batches of random sizes.
func splits[T any](rng *rand.Rand, rows []T, maxBatch int) [][]T {
	var out [][]T
	for len(rows) > 0 {
		n := min(len(rows), 1+rng.IntN(maxBatch))
		out = append(out, rows[:n:n])
		rows = rows[n:]
	}
	return out
}

// restart gives a core restored from everything r's core holds (what the
// processor stores), at wall clock now: a crash after the last save.
func (r *run) restart(cfg Config) {
	old := r.core
	c := New(cfg)
	c.RestoreWatermark(old.Watermark())
	for conv := range old.Conversations() {
		restored := c.RestoreConversation(&ConversationState{ID: conv.ID(), Source: conv.Source(), Channel: conv.Channel(),
			Locale: conv.Locale(), NextIndex: conv.NextIndex(), LastObserved: conv.LastObserved(),
			EmittedAsks: slices.Clone(conv.EmittedAsks()), AsksKnown: true})
		for _, row := range conv.Rows() {
			c.RestoreRow(restored, &row)
		}
	}
	for bucket, ids := range old.EmittedBuckets() {
		for id := range ids.All() {
			c.RestoreEmitted(id, bucket)
		}
	}
	c.FinishRestore(r.now.UnixNano())
	r.core = c
}

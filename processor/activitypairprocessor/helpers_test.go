package activitypairprocessor

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadatatest"
)

// base is the event time rows are placed relative to.
var base = time.Date(2026, 2, 18, 1, 24, 36, 0, time.UTC)

// testRow is one telemetry row as the receiver writes it.
type testRow struct {
	conv     string
	agent    string // "" means "HR Agent"
	event    string
	item     string
	at       time.Duration // event time after base
	ingest   time.Duration // ingestion time after base; 0 means at + 30s
	typ      string        // activity type of a BotMessageReceived
	activity string
	replyTo  string
	text     string
	topic    string
	kind     string // TopicAction kind
	errCode  string
	channel  string
	user     string
}

const testChannel = "msteams"

func msg(conv, item string, at time.Duration, activity, text string) testRow {
	return testRow{conv: conv, event: schema.EventMessageReceived, item: item, at: at, typ: "message",
		activity: activity, text: text, channel: testChannel, user: "29:user"}
}

func reply(conv, item string, at time.Duration, replyTo, text string) testRow {
	return testRow{conv: conv, event: schema.EventMessageSend, item: item, at: at, replyTo: replyTo, text: text, channel: testChannel}
}

func topicStart(conv, item string, at time.Duration, name string) testRow {
	return testRow{conv: conv, event: schema.EventTopicStart, item: item, at: at, topic: name, channel: testChannel}
}

func action(conv, item string, at time.Duration, name, kind string) testRow {
	return testRow{conv: conv, event: schema.EventTopicAction, item: item, at: at, topic: name, kind: kind, channel: testChannel}
}

func failure(conv, item string, at time.Duration, code string) testRow {
	return testRow{conv: conv, event: schema.EventOnErrorLog, item: item, at: at, errCode: code, text: "The action failed: " + code, channel: testChannel}
}

func event(conv, item string, at time.Duration, typ, activity string) testRow {
	return testRow{conv: conv, event: schema.EventMessageReceived, item: item, at: at, typ: typ, activity: activity, channel: testChannel}
}

func (r testRow) ingestedAt(d time.Duration) testRow { r.ingest = d; return r }

func (r testRow) agentName() string {
	if r.agent == "" {
		return "HR Agent"
	}
	return r.agent
}

// logsOf builds the receiver's output for rows: a ResourceLogs per agent run
// of rows, one record per row.
func logsOf(rows ...testRow) plog.Logs {
	ld := plog.NewLogs()
	var sl plog.ScopeLogs
	agent := ""
	for i, r := range rows {
		if i == 0 || r.agentName() != agent {
			agent = r.agentName()
			rl := ld.ResourceLogs().AppendEmpty()
			rl.Resource().Attributes().PutStr(schema.AppInsightsAppID, "00000000-app")
			rl.Resource().Attributes().PutStr(schema.AgentName, agent)
			sl = rl.ScopeLogs().AppendEmpty()
		}
		rec := sl.LogRecords().AppendEmpty()
		at := base.Add(r.at)
		ingest := base.Add(r.ingest)
		if r.ingest == 0 {
			ingest = at.Add(30 * time.Second)
		}
		rec.SetTimestamp(pcommon.NewTimestampFromTime(at))
		rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(ingest))
		if r.text != "" && r.event != schema.EventOnErrorLog {
			rec.Body().SetStr(r.text)
		}
		a := rec.Attributes()
		a.PutStr(schema.EventName, r.event)
		a.PutStr(schema.ConversationID, r.conv)
		a.PutStr(schema.ItemID, r.item)
		a.PutStr(schema.AgentName, agent)
		put := func(k, v string) {
			if v != "" {
				a.PutStr(k, v)
			}
		}
		put(schema.ActivityType, r.typ)
		put(schema.ActivityID, r.activity)
		put(schema.ReplyToActivityID, r.replyTo)
		put(schema.ChannelID, r.channel)
		put(schema.TopicName, r.topic)
		put(schema.TopicKind, r.kind)
		put(schema.ErrorCode, r.errCode)
		if r.event == schema.EventOnErrorLog {
			put(schema.ErrorMessage, r.text)
		}
		if r.event == schema.EventMessageReceived {
			put(schema.UserID, r.user)
			a.PutStr(schema.Locale, "en-US")
			a.PutBool(schema.DesignMode, false)
		}
	}
	return ld
}

// fakeClock is a wall clock tests move by hand; its ticker never fires on
// its own (tests call sweep).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: base.Add(time.Hour)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) NewTicker(time.Duration) (<-chan time.Time, func()) {
	return make(chan time.Time), func() {}
}

// Sleep advances the clock by d at once (the processor never sleeps).
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.Advance(d)
	return ctx.Err()
}

var _ clock.Clock = (*fakeClock)(nil)

// harness is a started processor writing into a sink.
type harness struct {
	t     *testing.T
	p     *pairProcessor
	sink  *consumertest.LogsSink
	clock *fakeClock
	tel   *componenttest.Telemetry
}

func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.ReorderWindow = 0
	return cfg
}

func newHarness(t *testing.T, cfg *Config, host component.Host) *harness {
	t.Helper()
	h := &harness{t: t, sink: &consumertest.LogsSink{}, clock: newFakeClock(), tel: newTelemetry(t)}
	h.start(cfg, host)
	return h
}

func newTelemetry(t *testing.T) *componenttest.Telemetry {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	return tel
}

// start (re)creates the processor on the same sink and clock, as a restart does.
func (h *harness) start(cfg *Config, host component.Host) {
	h.t.Helper()
	require.NoError(h.t, cfg.Validate())
	p, err := newProcessor(metadatatest.NewSettings(h.tel), cfg, h.sink, h.clock)
	require.NoError(h.t, err)
	if host == nil {
		host = componenttest.NewNopHost()
	}
	require.NoError(h.t, p.Start(context.Background(), host))
	h.p = p
	h.t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
}

func (h *harness) consume(rows ...testRow) {
	h.t.Helper()
	require.NoError(h.t, h.p.ConsumeLogs(context.Background(), logsOf(rows...)))
}

func (h *harness) shutdown() {
	h.t.Helper()
	require.NoError(h.t, h.p.Shutdown(context.Background()))
}

// emitted is one emitted turn, decoded.
type emitted struct {
	workload.Delivered
	Items    []string
	Resource map[string]any
	Body     []byte
}

// turns decodes everything the sink received so far, in order.
func (h *harness) turns() []emitted {
	h.t.Helper()
	var out []emitted
	for _, ld := range h.sink.AllLogs() {
		convs := map[any]bool{}
		for _, rl := range ld.ResourceLogs().All() {
			require.Equal(h.t, 1, rl.ScopeLogs().Len())
			recs := rl.ScopeLogs().At(0).LogRecords()
			require.Positive(h.t, recs.Len())
			resource := rl.Resource().Attributes().AsRaw()
			conv := resource[schema.ConversationID]
			require.False(h.t, convs[conv], "one resource per conversation in a call")
			convs[conv] = true
			for _, rec := range recs.All() {
				require.Equal(h.t, pcommon.ValueTypeBytes, rec.Body().Type(), "the Akto record is a bytes body")
				body := rec.Body().Bytes().AsRaw()
				d, err := workload.DecodeAkto(body)
				require.NoError(h.t, err)
				e := emitted{Delivered: d, Resource: resource, Body: body}
				v, ok := rec.Attributes().Get(schema.TurnItemIDs)
				require.True(h.t, ok)
				for _, it := range v.Slice().AsRaw() {
					e.Items = append(e.Items, it.(string))
				}
				id, ok := rec.Attributes().Get(schema.TurnID)
				require.True(h.t, ok)
				require.Equal(h.t, d.TurnID, id.Str(), "record attribute and tag carry the same turn id")
				require.Equal(h.t, d.ConversationID, conv, "a turn's resource is its conversation's")
				out = append(out, e)
			}
		}
	}
	return out
}

// summary is what a turn says, for compact expectations.
type summary struct {
	Conv    string
	Request string
	Replies []string
	Items   []string
	Failed  bool
}

func (h *harness) summaries() []summary {
	var out []summary
	for _, e := range h.turns() {
		out = append(out, summary{e.ConversationID, e.RequestText, e.Replies, e.Items, e.Failed})
	}
	return out
}

func jsonObject(t *testing.T, s string) map[string]any {
	t.Helper()
	if s == "" {
		return nil
	}
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m))
	return m
}

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

package copilotstudioreceiver

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/dataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudioreceiver/internal/metadata"
)

// Reasons a row is dropped (attribute "reason" of the rows_dropped metric).
const (
	reasonBadDimensions   = "bad_custom_dimensions"
	reasonNoConversation  = "missing_conversation_id"
	reasonBadColumn       = "bad_column"
	reasonUnknownActivity = "unknown_activity_type"
	reasonUnexpectedEvent = "unexpected_event_name"
	reasonDuplicate       = "duplicate"
)

var (
	messageEvents = toSet(schema.MessageEvents)
	// conversationRequired are the events that always carry conversationId
	// (see the telemetry reference). TopicAction, OnErrorLog, AgentStarted,
	// AgentCompleted and custom events may lack it and are kept without one.
	conversationRequired = toSet(append([]string{schema.EventTopicStart, schema.EventTopicEnd, schema.EventGenerative}, schema.MessageEvents...))
	activityTypes        = toLowerSet(schema.ActivityTypes)
	// topicEvents are the events whose rows carry a TopicName.
	topicEvents = toSet([]string{schema.EventTopicStart, schema.EventTopicEnd, schema.EventTopicAction, schema.EventGenerative})
)

func toSet(values []string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

func toLowerSet(values []string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[strings.ToLower(v)] = true
	}
	return m
}

// malformedRow is a row skipped as malformed, to be logged by its item id
// (never its values) once the window is committed.
type malformedRow struct {
	itemID, eventName, reason, detail string
}

// windowResult is what building a window's records learnt besides the
// records. None of it takes effect until the window is committed.
type windowResult struct {
	// records counts the log records made.
	records int
	// seen holds the item ids of the window's rows with their ingestion
	// time: the checkpoint keeps those of the next overlap.
	seen      map[string]time.Time
	drops     map[string]int
	malformed []malformedRow
}

// windowBuilder turns the rows of one window into log records, a batch at a
// time, one ResourceLogs per agent in each batch. Reading the response only
// copies each row's cells into the row store (offer); the records are built
// later, batch by batch (nextBatch), so the window is held as compact rows
// (about the size of the response) and the records of a batch can be
// released once the next consumer has taken them. Once every row is built,
// result says what else the window held.
type windowBuilder struct {
	appID string
	// wanted are the event names queried for; nil accepts any.
	wanted map[string]bool
	// delivered holds the item ids delivered (or dropped) by an earlier
	// window: the checkpoint's overlap ids.
	delivered map[string]time.Time

	rows rowStore
	// built counts the stored rows already turned into records (or drops).
	built int

	logs plog.Logs // the batch being built
	// batchRows is the most records the batch being built can still take.
	batchRows int
	byAgent   map[string]plog.LogRecordSlice
	res       windowResult
	// Rows come in ingestion order. The well-formed rows from pendingStart
	// on share the latest ingestion instant read so far, pendingIngest; in
	// an over-full result they are left out (finish) and pendingIngest is
	// where the window is cut.
	pendingStart  int
	pendingIngest time.Time

	dims    dimensions
	lower   []byte
	intern  map[string]string
	prefixd map[string]string
}

// newWindowBuilder starts a window. wanted are the event names queried
// (nil: any); delivered are the overlap ids of the windows before.
func newWindowBuilder(appID string, wanted map[string]bool, delivered map[string]time.Time) *windowBuilder {
	return &windowBuilder{
		appID:     appID,
		wanted:    wanted,
		delivered: delivered,
		logs:      plog.NewLogs(),
		byAgent:   map[string]plog.LogRecordSlice{},
		res:       windowResult{seen: map[string]time.Time{}, drops: map[string]int{}},
		intern:    map[string]string{},
		prefixd:   map[string]string{},
	}
}

// offer keeps a row of the result, in order, for nextBatch.
func (b *windowBuilder) offer(row *appinsights.Row) {
	if ingest, ok := row.Time(row.Ingest); ok && row.Complete() && ingest.After(b.pendingIngest) {
		b.pendingStart = b.rows.n
		b.pendingIngest = ingest
	}
	b.rows.add(row)
}

// finish ends the result and returns the latest ingestion instant read. In
// a complete result every row stays; in an over-full one (more rows than
// the query's limit) the well-formed rows of that latest instant are left
// out, so the window holds exactly the rows ingested before it, and it is
// where the window is cut (malformed rows stay: they are counted whatever
// the cut).
func (b *windowBuilder) finish(overFull bool) (latest time.Time) {
	if overFull {
		b.cutFrom(b.pendingStart, b.pendingIngest)
	}
	// Sized once for the whole window rather than grown row by row.
	if len(b.res.seen) == 0 {
		b.res.seen = make(map[string]time.Time, b.rows.n)
	}
	return b.pendingIngest
}

// cutAt leaves out the well-formed rows ingested at or after t: the window
// now ends at t. Rows come in ingestion order, so they are the last ones.
func (b *windowBuilder) cutAt(t time.Time) {
	first := b.rows.n
	var row appinsights.Row
	for first > b.built {
		b.rows.get(first-1, &row)
		if ingest, ok := row.Time(row.Ingest); ok && row.Complete() && ingest.Before(t) {
			break
		}
		first--
	}
	b.cutFrom(first, t)
}

// cutFrom leaves out the well-formed rows from row first on that were
// ingested at or after t; malformed rows stay (they are counted whatever
// the cut).
func (b *windowBuilder) cutFrom(first int, t time.Time) {
	kept := first
	var row appinsights.Row
	for i := first; i < b.rows.n; i++ {
		b.rows.get(i, &row)
		if ingest, ok := row.Time(row.Ingest); !ok || !row.Complete() || ingest.Before(t) {
			*b.rows.at(kept) = *b.rows.at(i)
			kept++
		}
	}
	b.rows.truncate(kept)
}

// unknownAgents names the agents of the window's rows that known says the
// agent list lacks, looked up as enrichment does: by the agent's name
// (cloud_RoleInstance), else by the schema name prefixing its rows' fully
// qualified topic names. It runs before the first batch is built.
func (b *windowBuilder) unknownAgents(known func(name, topic string) bool) []string {
	// By name: true once the agent is known.
	agents := map[string]bool{}
	var row appinsights.Row
	for i := b.built; i < b.rows.n; i++ {
		b.rows.get(i, &row)
		if !row.Complete() || row.Role.Kind != appinsights.CellString || row.Role.Start == row.Role.End {
			continue
		}
		name := row.Bytes(row.Role)
		isKnown, seen := agents[string(name)]
		if isKnown {
			continue
		}
		if !seen {
			isKnown = known(string(name), "")
			agents[string(name)] = isKnown
			if isKnown {
				continue
			}
		}
		// Not known by its name: one of its topics may carry its schema name.
		if topic := b.topicName(&row); topic != "" && known(string(name), topic) {
			agents[string(name)] = true
		}
	}
	var unknown []string
	for name, isKnown := range agents {
		if !isKnown {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

// topicName is the fully qualified TopicName of a topic row, "" for other
// rows and topic names without a schema name.
func (b *windowBuilder) topicName(row *appinsights.Row) string {
	if row.Name.Kind != appinsights.CellString || !topicEvents[string(row.Bytes(row.Name))] || b.dims.parse(row, false) != nil {
		return ""
	}
	for _, p := range b.dims.pairs {
		if p.field == fieldTopicName && p.kind == appinsights.CellString {
			if topic := string(b.dims.arena[p.valStart:p.valEnd]); dataverse.SchemaNameOfTopic(topic) != "" {
				return topic
			}
		}
	}
	return ""
}

// nextBatch builds the records of the next stored rows, up to size records,
// into a new plog.Logs that belongs to the caller. It returns 0 records once
// every row is built. The memory of built rows is released.
func (b *windowBuilder) nextBatch(size int) (plog.Logs, int) {
	first := b.res.records
	b.startBatch(min(size, b.rows.n-b.built))
	var row appinsights.Row
	for b.built < b.rows.n && b.res.records-first < size {
		b.rows.get(b.built, &row)
		b.add(&row)
		b.built++
	}
	b.rows.release(b.built)
	return b.logs, b.res.records - first
}

// result is what the window held besides its records; complete once
// nextBatch has returned 0.
func (b *windowBuilder) result() windowResult { return b.res }

// startBatch begins a new plog.Logs for at most capacity records.
func (b *windowBuilder) startBatch(capacity int) {
	b.logs = plog.NewLogs()
	clear(b.byAgent)
	b.batchRows = capacity
}

// str returns b as a string, sharing one copy for repeated values.
func (b *windowBuilder) str(v []byte) string {
	if s, ok := b.intern[string(v)]; ok {
		return s
	}
	if len(b.intern) > 4096 {
		return string(v)
	}
	s := string(v)
	b.intern[s] = s
	return s
}

func (b *windowBuilder) dimensionKey(key []byte) string {
	if s, ok := b.prefixd[string(key)]; ok {
		return s
	}
	s := schema.DimensionPrefix + string(key)
	if len(b.prefixd) < 4096 {
		b.prefixd[string(key)] = s
	}
	return s
}

func (b *windowBuilder) drop(itemID, eventName, reason, detail string) {
	b.res.drops[reason]++
	if reason != reasonDuplicate {
		b.res.malformed = append(b.res.malformed, malformedRow{itemID, eventName, reason, detail})
	}
}

// add turns one row into a log record of the current batch, or counts why
// it cannot.
func (b *windowBuilder) add(row *appinsights.Row) {
	if !row.Complete() {
		b.drop(stringCell(row, row.ItemID), stringCell(row, row.Name), reasonBadColumn,
			fmt.Sprintf("row has %d cells for %d columns", row.Cells, row.Columns))
		return
	}
	ingest, ingestOK := row.Time(row.Ingest)
	if row.ItemID.Kind != appinsights.CellString || row.ItemID.Start == row.ItemID.End {
		b.drop("", stringCell(row, row.Name), reasonBadColumn, "itemId is not a non-empty string")
		return
	}
	itemIDBytes := row.Bytes(row.ItemID)
	if _, ok := b.delivered[string(itemIDBytes)]; ok {
		b.res.drops[reasonDuplicate]++
		return
	}
	if !ingestOK {
		if _, dup := b.res.seen[string(itemIDBytes)]; dup {
			b.res.drops[reasonDuplicate]++
			return
		}
		b.drop(string(itemIDBytes), stringCell(row, row.Name), reasonBadColumn, "ingest is not an RFC 3339 datetime")
		return
	}
	// One map operation both records the id and tells a repeat: the map
	// can hold a whole 500,000-row result, where every probe is a cache miss.
	itemID := string(itemIDBytes)
	before := len(b.res.seen)
	b.res.seen[itemID] = ingest
	if len(b.res.seen) == before {
		b.res.drops[reasonDuplicate]++
		return
	}
	if row.Name.Kind != appinsights.CellString || row.Name.Start == row.Name.End {
		b.drop(itemID, "", reasonBadColumn, "name is not a non-empty string")
		return
	}
	eventName := b.str(row.Bytes(row.Name))
	if b.wanted != nil && !b.wanted[eventName] {
		b.drop(itemID, truncate([]byte(eventName), 64), reasonUnexpectedEvent, "event name not in event_names: the query did not ask for it")
		return
	}
	timestamp, ok := row.Time(row.Timestamp)
	if !ok {
		b.drop(itemID, eventName, reasonBadColumn, "timestamp is not an RFC 3339 datetime")
		return
	}
	var agent string
	switch row.Role.Kind {
	case appinsights.CellString:
		agent = b.str(row.Bytes(row.Role))
	case appinsights.CellNull:
	default:
		b.drop(itemID, eventName, reasonBadColumn, "cloud_RoleInstance is not a string")
		return
	}

	isMessage := messageEvents[eventName]
	if err := b.dims.parse(row, isMessage); err != nil {
		b.drop(itemID, eventName, reasonBadDimensions, err.Error())
		return
	}
	if conversationRequired[eventName] && b.dims.conversation < 0 {
		b.drop(itemID, eventName, reasonNoConversation, "customDimensions has no conversationId")
		return
	}
	if isMessage && b.dims.activityType >= 0 {
		t := b.dims.value(b.dims.activityType)
		b.lower = appendLower(b.lower[:0], t)
		if !activityTypes[string(b.lower)] {
			b.drop(itemID, eventName, reasonUnknownActivity, fmt.Sprintf("activity type %q is not a Bot Framework activity type", truncate(t, 64)))
			return
		}
	}

	lr := b.recordSlice(agent).AppendEmpty()
	b.res.records++
	lr.SetTimestamp(pcommon.NewTimestampFromTime(timestamp))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(ingest))
	lr.SetEventName(eventName)
	attrs := lr.Attributes()
	attrs.EnsureCapacity(3 + b.dims.attrs)
	attrs.PutStr(schema.EventName, eventName)
	attrs.PutStr(schema.ItemID, itemID)
	attrs.PutStr(schema.AgentName, agent)
	// One string holds all of the row's values; attributes take substrings
	// of it, which saves an allocation per attribute.
	values := string(b.dims.arena)
	for i := range b.dims.pairs {
		b.putDimension(lr, attrs, &b.dims.pairs[i], values)
	}
}

// recordSlice is the agent's record list, creating its ResourceLogs on first use.
func (b *windowBuilder) recordSlice(agent string) plog.LogRecordSlice {
	if s, ok := b.byAgent[agent]; ok {
		return s
	}
	rl := b.logs.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(schema.AppInsightsAppID, b.appID)
	res.PutStr(schema.AgentName, agent)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	s := sl.LogRecords()
	if len(b.byAgent) == 0 {
		// Often the only agent: its list is allocated once, not grown.
		s.EnsureCapacity(b.batchRows)
	}
	b.byAgent[agent] = s
	return s
}

func (b *windowBuilder) putDimension(lr plog.LogRecord, attrs pcommon.Map, p *dimPair, values string) {
	if p.kind == appinsights.CellNull {
		return
	}
	val := b.dims.arena[p.valStart:p.valEnd]
	str := values[p.valStart:p.valEnd]
	f := p.field
	switch f {
	case fieldText:
		if p.kind == appinsights.CellString {
			lr.Body().SetStr(str)
			return
		}
		f = fieldOther
	case fieldDesignMode:
		if v, ok := parseBool(val); ok {
			attrs.PutBool(schema.DesignMode, v)
			return
		}
		f = fieldOther
	}
	if f == fieldOther {
		attrs.PutStr(b.dimensionKey(b.dims.keys[p.keyStart:p.keyEnd]), str)
		return
	}
	attrs.PutStr(fieldKeys[f], str)
}

// stringCell is a cell's text for a log line, cut at 200 bytes.
func stringCell(row *appinsights.Row, c appinsights.Cell) string {
	if c.Kind != appinsights.CellString {
		return ""
	}
	return truncate(row.Bytes(c), 200)
}

func truncate(v []byte, n int) string {
	if len(v) > n {
		return string(v[:n]) + "..."
	}
	return string(v)
}

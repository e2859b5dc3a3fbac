package copilotstudioreceiver

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

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

// maxMalformedLogs bounds the per-row warnings of one window; the rest are
// still counted and summarised in one line.
const maxMalformedLogs = 100

// field is what a known customDimensions key becomes.
type field uint8

const (
	fieldOther field = iota // copilotstudio.dimensions.<key>
	fieldActivityType
	fieldActivityName
	fieldActivityValue
	fieldChannelID
	fieldConversationID
	fieldActivityID
	fieldReplyToID
	fieldFromID
	fieldFromName
	fieldRecipientID
	fieldRecipientName
	fieldLocale
	fieldText
	fieldDesignMode
	fieldTopicName
	fieldTopicKind
	fieldErrorCode
	fieldErrorMessage
)

// knownField maps a lower-cased customDimensions key to its field; keys
// case varies across Copilot Studio versions (designMode / DesignMode,
// TopicName / topicName). A switch, because this runs for every key of every
// row and beats a map lookup.
func knownField(lower []byte) field {
	switch string(lower) {
	case "type":
		return fieldActivityType
	case "name":
		return fieldActivityName
	case "value":
		return fieldActivityValue
	case "channelid":
		return fieldChannelID
	case "conversationid":
		return fieldConversationID
	case "activityid":
		return fieldActivityID
	case "replyactivityid", "replytoid":
		return fieldReplyToID
	case "fromid":
		return fieldFromID
	case "fromname":
		return fieldFromName
	case "recipientid":
		return fieldRecipientID
	case "recipientname":
		return fieldRecipientName
	case "locale":
		return fieldLocale
	case "text":
		return fieldText
	case "designmode":
		return fieldDesignMode
	case "topicname":
		return fieldTopicName
	case "kind":
		return fieldTopicKind
	case "errorcode":
		return fieldErrorCode
	case "errormessage":
		return fieldErrorMessage
	}
	return fieldOther
}

// fieldKeys are the attribute keys of the fields that map one to one.
var fieldKeys = [...]string{
	fieldActivityType:   schema.ActivityType,
	fieldActivityName:   schema.ActivityName,
	fieldActivityValue:  schema.ActivityValue,
	fieldChannelID:      schema.ChannelID,
	fieldConversationID: schema.ConversationID,
	fieldActivityID:     schema.ActivityID,
	fieldReplyToID:      schema.ReplyToActivityID,
	fieldFromID:         schema.UserID,
	fieldFromName:       schema.UserName,
	fieldRecipientID:    schema.RecipientID,
	fieldRecipientName:  schema.RecipientName,
	fieldLocale:         schema.Locale,
	fieldTopicName:      schema.TopicName,
	fieldTopicKind:      schema.TopicKind,
	fieldErrorCode:      schema.ErrorCode,
	fieldErrorMessage:   schema.ErrorMessage,
	fieldText:           "",
	fieldDesignMode:     schema.DesignMode,
}

var (
	messageEvents = toSet(schema.MessageEvents)
	// conversationRequired are the events that always carry conversationId
	// (see the telemetry reference). TopicAction, OnErrorLog, AgentStarted,
	// AgentCompleted and custom events may lack it and are kept without one.
	conversationRequired = toSet(append([]string{schema.EventTopicStart, schema.EventTopicEnd, schema.EventGenerative}, schema.MessageEvents...))
	activityTypes        = toLowerSet(schema.ActivityTypes)
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

type malformedRow struct {
	itemID, eventName, reason, detail string
}

// batch holds the rows of one query window and turns them into log
// records, a few thousand at a time (nextBatch), one ResourceLogs per agent
// in each. Reading the response only copies each row's cells (offer): the
// records are built later, batch by batch, so the window is held as compact
// rows (about the size of the response) and the records of a batch can be
// released once the next consumer has taken them. Nothing the batch learns
// (seen item ids, drops) takes effect until the window is committed.
type batch struct {
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
	records   int // log records made
	// seen holds the item ids of this window with their ingestion time.
	seen      map[string]time.Time
	drops     map[string]int
	malformed []malformedRow
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

// newBatch starts a window.
func newBatch(appID string, delivered map[string]time.Time) *batch {
	return &batch{
		appID:     appID,
		delivered: delivered,
		logs:      plog.NewLogs(),
		byAgent:   map[string]plog.LogRecordSlice{},
		seen:      map[string]time.Time{},
		drops:     map[string]int{},
		intern:    map[string]string{},
		prefixd:   map[string]string{},
	}
}

// rowStore keeps copies of decoded rows: their cells packed into large
// shared chunks, their layouts in fixed-size blocks, neither holding
// pointers per row nor copied as the window grows. Chunks and blocks are
// released as soon as their rows are built, for the next window to reuse.
type rowStore struct {
	chunks [][]byte
	blocks []*[rowBlockSize]storedRow
	n      int
	// freedChunks and freedBlocks count the leading ones already released.
	freedChunks, freedBlocks int
}

type storedRow struct {
	rowCells
	chunk, start, end int32 // the row's arena: chunks[chunk][start:end]
}

const (
	rowChunkSize = 1 << 20
	rowBlockSize = 4096
	// Idle memory kept for the next window: a default window
	// (max_rows_per_query 50,000 rows of about 500 bytes) fits.
	maxIdleChunks = 32
	maxIdleBlocks = 16
)

// idleRows recycles chunks and blocks from window to window. Not a
// sync.Pool: a pool is emptied by every second garbage collection, and a
// busy collector runs several while one window is passed on, so the next
// window would allocate afresh (about the size of its response) each time.
var idleRows struct {
	sync.Mutex
	chunks []*[rowChunkSize]byte
	blocks []*[rowBlockSize]storedRow
}

func newChunk() []byte {
	idleRows.Lock()
	defer idleRows.Unlock()
	if n := len(idleRows.chunks); n > 0 {
		c := idleRows.chunks[n-1]
		idleRows.chunks = idleRows.chunks[:n-1]
		return c[:0]
	}
	return make([]byte, 0, rowChunkSize)
}

func newBlock() *[rowBlockSize]storedRow {
	idleRows.Lock()
	defer idleRows.Unlock()
	if n := len(idleRows.blocks); n > 0 {
		b := idleRows.blocks[n-1]
		idleRows.blocks = idleRows.blocks[:n-1]
		return b
	}
	return new([rowBlockSize]storedRow)
}

func releaseChunk(c []byte) {
	if cap(c) != rowChunkSize {
		return // a row larger than a chunk had its own
	}
	idleRows.Lock()
	defer idleRows.Unlock()
	if len(idleRows.chunks) < maxIdleChunks {
		idleRows.chunks = append(idleRows.chunks, (*[rowChunkSize]byte)(c[:rowChunkSize]))
	}
}

func releaseBlock(b *[rowBlockSize]storedRow) {
	idleRows.Lock()
	defer idleRows.Unlock()
	if len(idleRows.blocks) < maxIdleBlocks {
		idleRows.blocks = append(idleRows.blocks, b)
	}
}

func (s *rowStore) add(row *resultRow) {
	n := len(row.arena)
	last := len(s.chunks) - 1
	if last < 0 || cap(s.chunks[last])-len(s.chunks[last]) < n {
		var chunk []byte
		if n <= rowChunkSize {
			chunk = newChunk()
		} else {
			chunk = make([]byte, 0, n) // a row larger than a chunk: its own
		}
		s.chunks = append(s.chunks, chunk)
		last++
	}
	start := len(s.chunks[last])
	s.chunks[last] = append(s.chunks[last], row.arena...)
	if s.n%rowBlockSize == 0 {
		s.blocks = append(s.blocks, newBlock())
	}
	*s.at(s.n) = storedRow{rowCells: row.rowCells, chunk: int32(last), start: int32(start), end: int32(start + n)}
	s.n++
}

func (s *rowStore) at(i int) *storedRow { return &s.blocks[i/rowBlockSize][i%rowBlockSize] }

// get makes dst a view of row i.
func (s *rowStore) get(i int, dst *resultRow) {
	r := s.at(i)
	dst.arena = s.chunks[r.chunk][r.start:r.end]
	dst.rowCells = r.rowCells
}

// truncate keeps the first n rows.
func (s *rowStore) truncate(n int) { s.n = n }

// release hands back the chunks and blocks that only hold rows before row
// i, all of them once i is past the last row. Nothing built from a row
// refers to its chunk: every string is a copy.
func (s *rowStore) release(i int) {
	blocks, chunks := len(s.blocks), len(s.chunks)
	if i < s.n {
		blocks, chunks = i/rowBlockSize, int(s.at(i).chunk)
	}
	for ; s.freedBlocks < blocks; s.freedBlocks++ {
		releaseBlock(s.blocks[s.freedBlocks])
		s.blocks[s.freedBlocks] = nil
	}
	for ; s.freedChunks < chunks; s.freedChunks++ {
		releaseChunk(s.chunks[s.freedChunks])
		s.chunks[s.freedChunks] = nil
	}
	if i >= s.n {
		*s = rowStore{}
	}
}

// str returns b as a string, sharing one copy for repeated values.
func (b *batch) str(v []byte) string {
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

func (b *batch) dimensionKey(key []byte) string {
	if s, ok := b.prefixd[string(key)]; ok {
		return s
	}
	s := schema.DimensionPrefix + string(key)
	if len(b.prefixd) < 4096 {
		b.prefixd[string(key)] = s
	}
	return s
}

func (b *batch) drop(itemID, eventName, reason, detail string) {
	b.drops[reason]++
	if reason != reasonDuplicate {
		b.malformed = append(b.malformed, malformedRow{itemID, eventName, reason, detail})
	}
}

// offer keeps a row of the result, in order, for nextBatch.
func (b *batch) offer(row *resultRow) {
	if ingest, ok := parseTimeCell(row, row.ingest); ok && row.cells == row.columns && ingest.After(b.pendingIngest) {
		b.pendingStart = b.rows.n
		b.pendingIngest = ingest
	}
	b.rows.add(row)
}

// finish ends the result. In a complete one every row stays; in an
// over-full one (more rows than the query's limit) the well-formed rows of
// the latest instant are left out, so the batch holds exactly the rows
// ingested before cut (malformed rows stay: they are counted whatever the cut).
func (b *batch) finish(overFull bool) (cut time.Time) {
	if overFull {
		kept := b.pendingStart
		var row resultRow
		for i := b.pendingStart; i < b.rows.n; i++ {
			b.rows.get(i, &row)
			if _, ok := parseTimeCell(&row, row.ingest); !ok || row.cells != row.columns {
				*b.rows.at(kept) = *b.rows.at(i)
				kept++
			}
		}
		b.rows.truncate(kept)
	}
	// Sized once for the whole window rather than grown row by row.
	if len(b.seen) == 0 {
		b.seen = make(map[string]time.Time, b.rows.n)
	}
	return b.pendingIngest
}

// nextBatch builds the records of the next stored rows, up to size records,
// into a new plog.Logs that belongs to the caller. It returns 0 records once
// every row is built. The memory of built rows is released.
func (b *batch) nextBatch(size int) (plog.Logs, int) {
	b.logs = plog.NewLogs()
	clear(b.byAgent)
	first := b.records
	b.batchRows = min(size, b.rows.n-b.built)
	var row resultRow
	for b.built < b.rows.n && b.records-first < size {
		b.rows.get(b.built, &row)
		b.add(&row)
		b.built++
	}
	b.rows.release(b.built)
	return b.logs, b.records - first
}

// add turns one row into a log record, or counts why it cannot.
func (b *batch) add(row *resultRow) {
	if row.cells != row.columns {
		b.drop(stringCell(row, row.itemID), stringCell(row, row.name), reasonBadColumn,
			fmt.Sprintf("row has %d cells for %d columns", row.cells, row.columns))
		return
	}
	ingest, ingestOK := parseTimeCell(row, row.ingest)
	if row.itemID.kind != cellString || row.itemID.start == row.itemID.end {
		b.drop("", stringCell(row, row.name), reasonBadColumn, "itemId is not a non-empty string")
		return
	}
	itemIDBytes := row.bytes(row.itemID)
	if _, ok := b.delivered[string(itemIDBytes)]; ok {
		b.drops[reasonDuplicate]++
		return
	}
	if !ingestOK {
		if _, dup := b.seen[string(itemIDBytes)]; dup {
			b.drops[reasonDuplicate]++
			return
		}
		b.drop(string(itemIDBytes), stringCell(row, row.name), reasonBadColumn, "ingest is not an RFC 3339 datetime")
		return
	}
	// One map operation both records the id and tells a repeat: the map
	// can hold a whole 500,000-row result, where every probe is a cache miss.
	itemID := string(itemIDBytes)
	before := len(b.seen)
	b.seen[itemID] = ingest
	if len(b.seen) == before {
		b.drops[reasonDuplicate]++
		return
	}
	if row.name.kind != cellString || row.name.start == row.name.end {
		b.drop(itemID, "", reasonBadColumn, "name is not a non-empty string")
		return
	}
	eventName := b.str(row.bytes(row.name))
	if b.wanted != nil && !b.wanted[eventName] {
		b.drop(itemID, truncate([]byte(eventName), 64), reasonUnexpectedEvent, "event name not in event_names: the query did not ask for it")
		return
	}
	timestamp, ok := parseTimeCell(row, row.timestamp)
	if !ok {
		b.drop(itemID, eventName, reasonBadColumn, "timestamp is not an RFC 3339 datetime")
		return
	}
	var agent string
	switch row.role.kind {
	case cellString:
		agent = b.str(row.bytes(row.role))
	case cellNull:
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
	b.records++
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
func (b *batch) recordSlice(agent string) plog.LogRecordSlice {
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

func (b *batch) putDimension(lr plog.LogRecord, attrs pcommon.Map, p *dimPair, values string) {
	if p.kind == cellNull {
		return
	}
	val := b.dims.arena[p.valStart:p.valEnd]
	str := values[p.valStart:p.valEnd]
	f := p.field
	switch f {
	case fieldText:
		if p.kind == cellString {
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

// parseBool reads "True"/"False" in any case (the SDK writes .NET's
// bool.ToString()) and JSON true/false.
func parseBool(v []byte) (bool, bool) {
	switch {
	case len(v) == 4 && (v[0]|0x20) == 't' && (v[1]|0x20) == 'r' && (v[2]|0x20) == 'u' && (v[3]|0x20) == 'e':
		return true, true
	case len(v) == 5 && (v[0]|0x20) == 'f' && (v[1]|0x20) == 'a' && (v[2]|0x20) == 'l' && (v[3]|0x20) == 's' && (v[4]|0x20) == 'e':
		return false, true
	}
	return false, false
}

type dimPair struct {
	keyStart, keyEnd int // into dimensions.keys
	valStart, valEnd int // into dimensions.arena
	kind             cellKind
	field            field
}

// dimensions parses a row's customDimensions: a JSON object (sent as a JSON
// string, sometimes as an object) whose values are nearly always strings.
type dimensions struct {
	s     scanner
	keys  []byte
	arena []byte // values only
	lower []byte
	pairs []dimPair
	// conversation and activityType index pairs, or -1.
	conversation, activityType int
	// attrs is the number of attributes the pairs become (not the null
	// values, not the text that becomes the body), so the record's map is
	// allocated once at its exact size.
	attrs int
}

func (d *dimensions) value(i int) []byte {
	p := d.pairs[i]
	return d.arena[p.valStart:p.valEnd]
}

func (d *dimensions) parse(row *resultRow, isMessage bool) error {
	d.pairs, d.keys, d.arena = d.pairs[:0], d.keys[:0], d.arena[:0]
	d.conversation, d.activityType, d.attrs = -1, -1, 0
	var data []byte
	switch row.dims.kind {
	case cellNull, cellMissing:
		return nil
	case cellString, cellRaw:
		data = row.bytes(row.dims)
	}
	if len(bytes.TrimSpace(data)) == 0 && row.dims.kind == cellString {
		return nil
	}
	s := &d.s
	s.resetBytes(data)
	// A string cell was checked (and repaired) as UTF-8 when it was read.
	s.validUTF8 = row.dims.kind == cellString
	if err := s.expect('{'); err != nil {
		return fmt.Errorf("customDimensions is not a JSON object: %w", err)
	}
	c, err := s.next()
	if err != nil {
		return fmt.Errorf("customDimensions: %w", err)
	}
	if c == '}' {
		s.pos++
	} else {
		for {
			var p dimPair
			p.keyStart = len(d.keys)
			if d.keys, err = s.appendString(d.keys); err != nil {
				return fmt.Errorf("customDimensions: %w", err)
			}
			p.keyEnd = len(d.keys)
			if err := s.expect(':'); err != nil {
				return fmt.Errorf("customDimensions: %w", err)
			}
			if c, err = s.next(); err != nil {
				return fmt.Errorf("customDimensions: %w", err)
			}
			p.valStart = len(d.arena)
			if c == '"' {
				p.kind = cellString
				d.arena, err = s.appendString(d.arena)
			} else {
				p.kind = cellRaw
				d.arena, err = s.appendRaw(d.arena)
				if err == nil && string(d.arena[p.valStart:]) == "null" {
					p.kind = cellNull
				}
			}
			if err != nil {
				return fmt.Errorf("customDimensions: %w", err)
			}
			p.valEnd = len(d.arena)
			d.lower = appendLower(d.lower[:0], d.keys[p.keyStart:p.keyEnd])
			p.field = knownField(d.lower)
			switch p.field {
			case fieldActivityType, fieldActivityName, fieldActivityValue:
				// Activity properties only on message rows; elsewhere (custom
				// events) "type" or "name" mean something else.
				if !isMessage {
					p.field = fieldOther
				}
			}
			switch {
			case p.field == fieldConversationID && p.kind == cellString && p.valEnd > p.valStart:
				d.conversation = len(d.pairs)
			case p.field == fieldActivityType && p.kind == cellString:
				d.activityType = len(d.pairs)
			}
			if p.field == fieldOther && p.kind == cellString && p.valEnd == p.valStart {
				// An empty custom property says nothing: like null, it makes
				// no attribute (one value less for every processor to scan).
				p.kind = cellNull
			}
			if p.kind != cellNull && (p.field != fieldText || p.kind != cellString) {
				d.attrs++
			}
			d.pairs = append(d.pairs, p)
			more, err := s.endOf('}')
			if err != nil {
				return fmt.Errorf("customDimensions: %w", err)
			}
			if !more {
				break
			}
		}
	}
	for ; s.pos < s.end; s.pos++ {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
		default:
			return fmt.Errorf("customDimensions: trailing data after the object at byte %d", s.pos)
		}
	}
	return nil
}

func appendLower(dst, src []byte) []byte {
	for _, c := range src {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func stringCell(row *resultRow, c cell) string {
	if c.kind != cellString {
		return ""
	}
	return truncate(row.bytes(c), 200)
}

func truncate(v []byte, n int) string {
	if len(v) > n {
		return string(v[:n]) + "..."
	}
	return string(v)
}

func parseTimeCell(row *resultRow, c cell) (time.Time, bool) {
	if c.kind != cellString {
		return time.Time{}, false
	}
	return parseTime(row.bytes(c))
}

// parseTime reads the query API's datetimes, "2026-02-18T01:24:36.1234567Z",
// without allocating; other RFC 3339 forms go through time.Parse.
func parseTime(v []byte) (time.Time, bool) {
	if len(v) >= 20 && len(v) <= 30 && v[4] == '-' && v[7] == '-' && v[10] == 'T' && v[13] == ':' && v[16] == ':' && v[len(v)-1] == 'Z' {
		year, ok1 := digits(v[0:4])
		month, ok2 := digits(v[5:7])
		day, ok3 := digits(v[8:10])
		hour, ok4 := digits(v[11:13])
		minute, ok5 := digits(v[14:16])
		sec, ok6 := digits(v[17:19])
		nanos, ok7 := 0, true
		if frac := v[19 : len(v)-1]; len(frac) > 0 {
			if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
				ok7 = false
			} else {
				n, ok := digits(frac[1:])
				for range 10 - len(frac) {
					n *= 10
				}
				nanos, ok7 = n, ok
			}
		}
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 &&
			month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour < 24 && minute < 60 && sec < 60 {
			t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, time.UTC)
			if t.Day() == day { // rejects 2026-02-30
				return t, true
			}
		}
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	return t, err == nil
}

func digits(v []byte) (int, bool) {
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// logMalformed writes one warning per malformed row (the first
// maxMalformedLogs of a window) with its item id, never its values.
func (b *batch) logMalformed(logger *zap.Logger) {
	for i, m := range b.malformed {
		if i == maxMalformedLogs {
			logger.Warn("more malformed Copilot Studio rows skipped in this window; see the rows_dropped metric",
				zap.Int("not_logged", len(b.malformed)-maxMalformedLogs))
			return
		}
		logger.Warn("skipping malformed Copilot Studio row",
			zap.String("item_id", m.itemID), zap.String("event_name", m.eventName),
			zap.String("reason", m.reason), zap.String("detail", m.detail))
	}
}

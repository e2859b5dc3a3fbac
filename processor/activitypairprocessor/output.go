package activitypairprocessor

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadata"
)

// turn is one turn being emitted: a view of its conversation's rows.
type turn struct {
	conv    *conversation
	rows    []int32 // into conv.rows, in event-time order
	request *row    // nil for a turn without a user message
	index   int
	id      turnIDHex
	at      int64 // the request's event time; else the first reply's; else the first row's
	outcome outcome
	trigger trigger
}

func (t *turn) row(i int) *row { return &t.conv.rows[t.rows[i]] }

var outcomeNames = [outcomeCount]string{schema.OutcomePaired, schema.OutcomeRequestOnly, schema.OutcomeResponseOnly, schema.OutcomeFailed}

// describe fills the derived fields of t from its rows; scratch is a
// reusable buffer.
func (t *turn) describe(scratch *[]byte) {
	var firstReply, first *row
	failed := false
	for i := range t.rows {
		r := t.row(i)
		if first == nil {
			first = r
		}
		switch r.kind {
		case kindReply:
			if firstReply == nil {
				firstReply = r
			}
		case kindError:
			failed = true
		}
	}
	opening := first
	switch {
	case t.request != nil:
		opening = t.request
	case firstReply != nil:
		opening = firstReply
	}
	t.at = opening.at
	t.id = turnID(scratch, t.conv.id, opening.item)
	switch {
	case failed:
		t.outcome = outcomeFailed
	case t.request == nil:
		t.outcome = outcomeResponseOnly
	case firstReply == nil:
		t.outcome = outcomeRequestOnly
	default:
		t.outcome = outcomePaired
	}
}

// turnIDHex is a turn id: 128 bits in hex.
type turnIDHex [32]byte

// turnID is the same for the same conversation and opening row on every
// run, whatever order or batches the rows came in.
func turnID(scratch *[]byte, conversation string, openingItem itemID) (id turnIDHex) {
	b := openingItem.appendTo(append(append((*scratch)[:0], conversation...), 0))
	*scratch = b
	sum := sha256.Sum256(b)
	hex.Encode(id[:], sum[:16])
	return id
}

// build turns the selected turns of b into log records, and records in b
// what commit must remove. The turns of one conversation share one resource
// (the source resource and the conversation id, so that a Kafka exporter
// partitioning by resource keeps a conversation in one partition): each
// resource costs about ten allocations, a record about fifteen.
func (s *state) build(b *batch, enc encoder, now int64) plog.Logs {
	ld := plog.NewLogs()
	resources := ld.ResourceLogs()
	resources.EnsureCapacity(len(b.convs))
	p := &s.planner
	w, warms := enc.(warmer)
	for _, c := range b.convs {
		if warms {
			w.warm(c)
		}
		p.plan(c)
		from := len(b.indices)
		take := min(int(c.take), p.chronological)
		var records plog.LogRecordSlice
		turns := 0
		emit := func(k int, trig trigger) {
			pl := &p.plans[k]
			if len(pl.rows) == 0 {
				return
			}
			if turns == 0 {
				records = newConversationLogs(resources, c, p.nonEmpty(0, take)+p.nonEmpty(p.chronological, len(p.plans)))
			}
			// One turn value reused: passed to the encoder (an interface),
			// a local one would be allocated for every turn.
			t := &s.turn
			*t = turn{conv: c, rows: pl.rows, index: int(c.nextIndex) + turns, trigger: trig}
			if pl.request >= 0 {
				t.request = &c.rows[pl.request]
			}
			t.describe(&s.scratch)
			rec := records.AppendEmpty()
			rec.SetTimestamp(pcommon.Timestamp(t.at))
			rec.SetObservedTimestamp(pcommon.Timestamp(now))
			enc.encode(rec, t)
			b.indices = append(b.indices, pl.rows...)
			b.counts[t.outcome][trig]++
			turns++
		}
		for k := 0; k < take; k++ {
			trig := triggerComplete
			if k >= int(c.due) {
				trig = b.trigger
			}
			emit(k, trig)
		}
		for k := p.chronological; k < len(p.plans); k++ {
			emit(k, triggerComplete)
		}
		b.spans = append(b.spans, removal{conv: c, from: from, to: len(b.indices), turns: turns})
	}
	s.turn = turn{} // hold no conversation
	return ld
}

// warmer is an encoder that reads the bytes of the rows' strings (the Akto
// encoder escapes them; the OTLP one only passes them on).
type warmer interface {
	warm(c *conversation)
}

func (e *aktoEncoder) warm(c *conversation) { e.warmth += readStrings(c) }

// readStrings reads one byte of every 64 of the strings that writing c's
// turns will read, in one pass of independent loads. Those strings arrived
// with earlier batches and have mostly left the CPU caches: read one by one
// while writing records, each waits for memory in turn (about 140 ns a
// row); read here, their cache misses overlap. The sum is kept only so
// that the reads are not optimised away.
func readStrings(c *conversation) (sum byte) {
	sum = touch(c.id) + touch(c.channel) + touch(c.locale)
	for i := range c.rows {
		r := &c.rows[i]
		sum += touch(r.text) + touch(r.activity) + touch(r.detail)
	}
	return sum
}

func touch(s string) (sum byte) {
	for i := 0; i < len(s); i += 64 {
		sum += s[i]
	}
	if len(s) > 0 {
		sum += s[len(s)-1] // the line the last step may not reach
	}
	return sum
}

// nonEmpty counts the plans in [from, to) that hold rows.
func (p *planner) nonEmpty(from, to int) int {
	n := 0
	for k := from; k < to; k++ {
		if len(p.plans[k].rows) > 0 {
			n++
		}
	}
	return n
}

// newConversationLogs adds the resource of c's turns and returns its record
// slice, with room for turns records.
func newConversationLogs(resources plog.ResourceLogsSlice, c *conversation, turns int) plog.LogRecordSlice {
	rl := resources.AppendEmpty()
	attrs := rl.Resource().Attributes()
	attrs.EnsureCapacity(c.res.attrs.Len() + 1)
	c.res.attrs.CopyTo(attrs)
	attrs.PutStr(schema.ConversationID, c.id)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	records := sl.LogRecords()
	records.EnsureCapacity(turns)
	return records
}

// encoder writes one turn into its log record.
type encoder interface {
	encode(rec plog.LogRecord, t *turn)
}

func newEncoder(cfg *Config) encoder {
	if cfg.Format == formatOTLP {
		return &otlpEncoder{}
	}
	return &aktoEncoder{accountID: cfg.AktoAccountID, vxlanID: cfg.AktoVxlanID}
}

// putTurnKeys puts the attributes every turn record carries, in either format.
func putTurnKeys(attrs pcommon.Map, t *turn, texts *textArena) {
	// The turn id and the item ids as text, in one string the attribute
	// values share.
	text := append(texts.next(), t.id[:]...)
	for i := range t.rows {
		text = t.row(i).item.appendTo(text)
	}
	all := texts.string(text)
	attrs.PutStr(schema.TurnID, all[:len(t.id)])
	ids := attrs.PutEmptySlice(schema.TurnItemIDs)
	ids.EnsureCapacity(len(t.rows))
	start := len(t.id)
	for i := range t.rows {
		n := len(t.row(i).item.text)
		if n == 0 {
			n = 36 // a GUID
		}
		ids.AppendEmpty().SetStr(all[start : start+n])
		start += n
	}
}

// textArena hands out strings written into shared blocks: the id
// attributes of many turns take one allocation instead of one each. Bytes
// handed out are never written again (later strings are appended after
// them, or go to a new block), so the strings stay immutable.
type textArena struct{ block []byte }

// textArenaBlock is the size of a block: the ids of about 40 turns.
const textArenaBlock = 8 << 10

// next returns an empty slice to append a string's bytes to, then pass to
// string.
func (a *textArena) next() []byte { return a.block[len(a.block):] }

// string returns b, appended to next(), as a string. If b outgrew the
// block's room, it is copied into a new block.
func (a *textArena) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if room := a.block[len(a.block):cap(a.block)]; len(b) > len(room) || &b[0] != &room[:1][0] {
		block := make([]byte, 0, max(textArenaBlock, len(b)))
		a.block = append(block, b...)
		return unsafe.String(&a.block[0], len(b))
	}
	start := len(a.block)
	a.block = a.block[:start+len(b)]
	return unsafe.String(&a.block[start], len(b))
}

// aktoEncoder writes the Akto traffic record as JSON bytes in the body.
type aktoEncoder struct {
	accountID, vxlanID string
	buf                []byte
	ids                textArena
	warmth             byte // see readStrings
	names              []string
	texts              []span // of the replies' escaped texts in buf
}

const aktoIPPlaceholder = "0.0.0.0"

func (e *aktoEncoder) encode(rec plog.LogRecord, t *turn) {
	attrs := rec.Attributes()
	attrs.EnsureCapacity(2)
	putTurnKeys(attrs, t, &e.ids)
	b := e.record(e.buf[:0], t)
	e.buf = b
	rec.Body().SetEmptyBytes().FromRaw(b)
}

// record appends the Akto traffic record of t. Every field is a JSON
// string; headers, payloads and tag are JSON objects serialised into
// strings, written here in one pass with their texts escaped twice.
func (e *aktoEncoder) record(b []byte, t *turn) []byte {
	c := t.conv
	b = append(b, `{"path":"/copilot/conversation/`...)
	b = appendPathSegment(b, c.id)
	b = append(b, "/message/"...)
	b = strconv.AppendInt(b, int64(t.index), 10)
	b = append(b, `","method":"POST","requestHeaders":`...)
	b = append(b, c.res.aktoHeaders...)
	b = append(b, `,"responseHeaders":"{\"content-type\":\"application/json\"}","requestPayload":`...)
	b = e.requestPayload(b, t)
	b = append(b, `,"responsePayload":`...)
	b = e.responsePayload(b, t)
	b = append(b, `,"ip":"`+aktoIPPlaceholder+`","time":"`...)
	b = strconv.AppendInt(b, t.at/int64(time.Second), 10)
	b = append(b, `","statusCode":"`...)
	if t.outcome == outcomeFailed {
		b = append(b, "500"...)
	} else {
		b = append(b, "200"...)
	}
	b = append(b, `","type":"HTTP/1.1","status":"OK","akto_account_id":`...)
	b = appendJSONString(b, e.accountID)
	b = append(b, `,"akto_vxlan_id":`...)
	b = appendJSONString(b, e.vxlanID)
	b = append(b, `,"is_pending":"false","source":"MIRRORING","tag":`...)
	b = e.tag(b, t)
	return append(b, '}')
}

// appendPathSegment percent-encodes every byte but the unreserved ones
// (RFC 3986), so that Teams ids with ':', '@', ';' and '=' stay one plain
// path segment; url.PathUnescape reads it back.
func appendPathSegment(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&0xf])
	}
	return b
}

// requestPayload is the user's message as a JSON string holding
// {"text","activityId","channelId","locale","userId"}; "" for a turn
// without one.
func (e *aktoEncoder) requestPayload(b []byte, t *turn) []byte {
	r := t.request
	if r == nil {
		return append(b, `""`...)
	}
	b = append(b, `"{\"text\":\"`...)
	b = appendNestedContent(b, r.text)
	b = append(b, `\",\"activityId\":\"`...)
	b = appendNestedContent(b, r.activity)
	if t.conv.channel != "" {
		b = append(b, `\",\"channelId\":\"`...)
		b = appendNestedContent(b, t.conv.channel)
	}
	if t.conv.locale != "" {
		b = append(b, `\",\"locale\":\"`...)
		b = appendNestedContent(b, t.conv.locale)
	}
	if r.detail != "" {
		b = append(b, `\",\"userId\":\"`...)
		b = appendNestedContent(b, r.detail)
	}
	return append(b, `\"}"`...)
}

// responsePayload is the agent's replies as a JSON string holding
// {"text": the replies joined by newlines, "messages": [{"text",
// "activityId"}, ...]} in send order; "" for a turn without any.
func (e *aktoEncoder) responsePayload(b []byte, t *turn) []byte {
	// Each text is escaped once, then copied into its message.
	texts := e.texts[:0]
	for i := range t.rows {
		if r := t.row(i); r.kind == kindReply {
			if len(texts) == 0 {
				b = append(b, `"{\"text\":\"`...)
			} else {
				b = append(b, `\\n`...) // a newline, escaped twice
			}
			start := len(b)
			b = appendNestedContent(b, r.text)
			texts = append(texts, span{start, len(b)})
		}
	}
	e.texts = texts
	if len(texts) == 0 {
		return append(b, `""`...)
	}
	b = append(b, `\",\"messages\":[`...)
	n := 0
	for i := range t.rows {
		if r := t.row(i); r.kind == kindReply {
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, `{\"text\":\"`...)
			b = append(b, b[texts[n].from:texts[n].to]...)
			b = append(b, `\",\"activityId\":\"`...)
			b = appendNestedContent(b, r.activity)
			b = append(b, `\"}`...)
			n++
		}
	}
	return append(b, `]}"`...)
}

// span is a range of bytes.
type span struct{ from, to int }

// tag is a JSON string holding {"source":"COPILOT_STUDIO","bot-name",
// "turn-id","channel","topics"} and the agent's own keys.
func (e *aktoEncoder) tag(b []byte, t *turn) []byte {
	b = append(b, `"{\"source\":\"COPILOT_STUDIO\",\"bot-name\":\"`...)
	b = appendNestedContent(b, t.conv.res.botName)
	b = append(b, `\",\"turn-id\":\"`...)
	b = append(b, t.id[:]...)
	if t.conv.channel != "" {
		b = append(b, `\",\"channel\":\"`...)
		b = appendNestedContent(b, t.conv.channel)
	}
	e.names = t.topics(e.names[:0])
	if topics := e.names; len(topics) > 0 {
		b = append(b, `\",\"topics\":\"`...)
		for i, name := range topics {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNestedContent(b, name)
		}
	}
	b = append(b, `\"`...)
	b = append(b, t.conv.res.aktoTagTail...)
	return append(b, `}"`...)
}

// topics appends the distinct topic names of the turn's flow, in order.
func (t *turn) topics(names []string) []string {
	for i := range t.rows {
		r := t.row(i)
		if r.topic != "" && !slices.Contains(names, r.topic) {
			names = append(names, r.topic)
		}
	}
	return names
}

// otlpMaxAttributes is how many attributes an OTLP turn record has at most.
const otlpMaxAttributes = 18

// otlpEncoder writes the turn as structured attributes.
type otlpEncoder struct{ ids textArena }

func (e *otlpEncoder) encode(rec plog.LogRecord, t *turn) {
	attrs := rec.Attributes()
	attrs.EnsureCapacity(otlpMaxAttributes)
	attrs.PutStr(schema.EventName, schema.TurnEventName)
	putTurnKeys(attrs, t, &e.ids)
	attrs.PutInt(schema.TurnIndex, int64(t.index))
	attrs.PutStr(schema.TurnOutcome, outcomeNames[t.outcome])
	attrs.PutStr(schema.TurnTrigger, triggerNames[t.trigger])
	if ch := t.conv.channel; ch != "" {
		attrs.PutStr(schema.ChannelID, ch)
	}
	if l := t.conv.locale; l != "" {
		attrs.PutStr(schema.Locale, l)
	}
	if r := t.request; r != nil {
		attrs.PutStr(schema.TurnRequest, r.text)
		attrs.PutStr(schema.TurnRequestActivityID, r.activity)
		if r.detail != "" {
			attrs.PutStr(schema.UserID, r.detail)
		}
	}
	texts := attrs.PutEmptySlice(schema.TurnResponse)
	ids := attrs.PutEmptySlice(schema.TurnResponseIDs)
	actions := attrs.PutEmptySlice(schema.TurnActions)
	var errorCodes pcommon.Slice
	hasErrors := false
	var first, last, firstReply int64 = t.row(0).at, t.row(0).at, 0
	for i := range t.rows {
		r := t.row(i)
		last = max(last, r.at)
		switch r.kind {
		case kindReply:
			texts.AppendEmpty().SetStr(r.text)
			ids.AppendEmpty().SetStr(r.activity)
			if firstReply == 0 {
				firstReply = r.at
			}
		case kindAction:
			actions.AppendEmpty().SetStr(r.detail)
		case kindError:
			if !hasErrors {
				errorCodes, hasErrors = attrs.PutEmptySlice(schema.TurnErrorCodes), true
			}
			errorCodes.AppendEmpty().SetStr(r.detail)
		}
	}
	topics := attrs.PutEmptySlice(schema.TurnTopics)
	for _, name := range t.topics(nil) {
		topics.AppendEmpty().SetStr(name)
	}
	attrs.PutInt(schema.TurnDurationMS, (last-first)/int64(time.Millisecond))
	if t.request != nil && firstReply != 0 {
		attrs.PutInt(schema.TurnFirstReplyMS, (firstReply-t.request.at)/int64(time.Millisecond))
	}
}

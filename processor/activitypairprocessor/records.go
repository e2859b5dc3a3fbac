package activitypairprocessor

import (
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadata"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// encoder writes one turn into its log record: akto.go, otlp.go.
type encoder interface {
	encode(rec plog.LogRecord, t *pairing.Turn)
	// readsText says whether encode reads every byte of the turn's texts
	// (the Akto encoder escapes them), which makes them worth bringing
	// into the CPU caches first (internal/pairing/warm.go).
	readsText() bool
	// encodeToolCall writes the record of one tool call (toolcall.go),
	// read from in, whose source is src, into out.
	encodeToolCall(out, in plog.LogRecord, src pairing.Source)
}

func newEncoder(cfg *Config, res *resources) encoder {
	if cfg.Format == formatOTLP {
		return &otlpEncoder{}
	}
	return newAktoEncoder(cfg, res)
}

// records writes the turns of the selection's current part as log records.
// The turns of one conversation share one resource (the source resource
// and the conversation id, so that a Kafka exporter partitioning by
// resource keeps a conversation in one partition): each resource costs
// about ten allocations, a record about fifteen.
func (p *pairProcessor) records(now int64) plog.Logs {
	sel := &p.selection
	ld := plog.NewLogs()
	rls := ld.ResourceLogs()
	rls.EnsureCapacity(sel.PartLen())
	for conv, turns := range sel.Conversations() {
		records := newConversationLogs(rls, p.resources.get(conv.Source()), conv.ID(), turns)
		for t := range sel.Turns() {
			rec := records.AppendEmpty()
			rec.SetTimestamp(pcommon.Timestamp(t.At()))
			rec.SetObservedTimestamp(pcommon.Timestamp(now))
			p.enc.encode(rec, t)
		}
	}
	return ld
}

// newConversationLogs adds the resource of a conversation's turns and
// returns its record slice, with room for turns records.
func newConversationLogs(rls plog.ResourceLogsSlice, source pcommon.Map, conversation string, turns int) plog.LogRecordSlice {
	rl := rls.AppendEmpty()
	attrs := rl.Resource().Attributes()
	attrs.EnsureCapacity(source.Len() + 1)
	source.CopyTo(attrs)
	if conversation != "" {
		attrs.PutStr(schema.ConversationID, conversation)
	}
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	records := sl.LogRecords()
	records.EnsureCapacity(turns)
	return records
}

// putTurnKeys puts the attributes every turn record carries, in either format.
func putTurnKeys(attrs pcommon.Map, t *pairing.Turn, texts *textArena) {
	// The turn id and the item ids as text, in one string the attribute
	// values share.
	text := t.AppendID(texts.next())
	for i := range t.Len() {
		text = t.Row(i).Item.AppendTo(text)
	}
	all := texts.string(text)
	attrs.PutStr(schema.TurnID, all[:pairing.TurnIDLen])
	ids := attrs.PutEmptySlice(schema.TurnItemIDs)
	ids.EnsureCapacity(t.Len())
	start := pairing.TurnIDLen
	for i := range t.Len() {
		n := t.Row(i).Item.Len()
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

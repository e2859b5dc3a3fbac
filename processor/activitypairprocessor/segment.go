package activitypairprocessor

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// The encoding of one stored segment (format version 3): the format
// version; the watermark, against which every time in it is written; the
// origins (each source's key and latest replay_from, by the number the
// emitted ids name it with); the conversations concerned, each source
// resource written in full at its first use; the rows, which name their
// conversation by its place in that table, until a 0; the emitted ids in
// runs of one ingestion-time bucket (all the core keeps of the time), each
// with the origins of its ids, until a 0. Item ids that are GUIDs take 16
// bytes. Everything goes through the core's Changes, snapshot and Restore
// API.
//
// Format version 2 is the same without the origins and the runs' origins:
// it is read (its ids kept for emitted_ids_ttl only), and replaced by a
// snapshot in format 3 at the first save.

// formatV2 is the segment format without origins, still read.
const formatV2 = 2

// segmentWriter encodes segments into a buffer kept from one save to the
// next.
type segmentWriter struct {
	b         []byte
	resources *resources
	origins   *origins // nil: none written
	resIx     map[pairing.Source]uint64
	lastRes   pairing.Source // most conversations share one agent
	lastResIx uint64
	hasLast   bool
	convs     []*pairing.Conversation
}

// frameRoom is kept at the head of the buffer for the segment's length.
const frameRoom = binary.MaxVarintLen64

func (w *segmentWriter) begin(core *pairing.Core, watermark int64, size int) {
	if w.resIx == nil {
		w.resIx = map[pairing.Source]uint64{}
	}
	clear(w.resIx)
	w.hasLast = false
	if cap(w.b) < frameRoom+size {
		w.b = make([]byte, 0, frameRoom+size)
	}
	w.b = w.b[:frameRoom]
	w.b = append(w.b, stateVersion)
	w.b = binary.AppendVarint(w.b, watermark)
	w.writeOrigins(core)
}

// writeOrigins writes every origin named so far, with its replay_from
// (absolute; 0 when its source never said).
func (w *segmentWriter) writeOrigins(core *pairing.Core) {
	if w.origins == nil {
		w.b = append(w.b, 0)
		return
	}
	named := w.origins.list[1:]
	w.b = binary.AppendUvarint(w.b, uint64(len(named)))
	for i := range named {
		o := pairing.Origin(i + 1)
		w.b = binary.AppendUvarint(w.b, uint64(o))
		w.b = appendString(w.b, named[i].key)
		w.b = binary.AppendVarint(w.b, core.ReplayFrom(o))
	}
}

// framed is the segment preceded by its length, as stored.
func (w *segmentWriter) framed() []byte {
	var l [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(l[:], uint64(len(w.b)-frameRoom))
	copy(w.b[frameRoom-k:], l[:k])
	return w.b[frameRoom-k:]
}

// delta writes the changes since the last save.
func (w *segmentWriter) delta(core *pairing.Core) {
	ch := core.Changes()
	base := core.Watermark()
	w.begin(core, base, ch.Size())
	convs := ch.Conversations()
	w.b = binary.AppendUvarint(w.b, uint64(len(convs)))
	for i, c := range convs {
		// Only emitting changes the asks a conversation remembers.
		w.conv(c, base, ch.AsksChanged(i))
	}
	for ci, r := range ch.Added() {
		w.row(uint64(ci), r, base)
	}
	w.b = append(w.b, 0)
	baseBucket := pairing.BucketOf(base)
	for i, n := 0, ch.NumEmitted(); i < n; {
		_, observed := ch.Emitted(i)
		k := pairing.BucketOf(observed)
		end := i + 1
		for end < n {
			if _, o := ch.Emitted(end); pairing.BucketOf(o) != k {
				break
			}
			end++
		}
		var mask uint64
		for j := i; j < end; j++ {
			if o := ch.EmittedFrom(j); o > 0 {
				mask |= 1 << o
			}
		}
		w.b = binary.AppendUvarint(w.b, uint64(end-i))
		w.b = binary.AppendVarint(w.b, baseBucket-k)
		w.b = binary.AppendUvarint(w.b, mask)
		for ; i < end; i++ {
			id, _ := ch.Emitted(i)
			w.b = appendItem(w.b, id)
		}
	}
	w.b = append(w.b, 0)
}

// snapshot writes the whole state as segments of about pieceBytes,
// calling flush with each: the conversations with their rows, then the
// emitted ids.
func (w *segmentWriter) snapshot(core *pairing.Core, pieceBytes int, flush func(last bool) error) error {
	base := core.Watermark()
	w.convs = w.convs[:0]
	for c := range core.Conversations() {
		w.convs = append(w.convs, c)
	}
	defer clear(w.convs)
	// What a conversation's record and rows take, about: 64 bytes a row
	// plus its strings.
	size := func(c *pairing.Conversation) int {
		return 64 + len(c.ID()) + 8*len(c.EmittedAsks()) + int(c.Bytes()) - len(c.Rows())*(pairing.RowOverhead-64)
	}
	for i := 0; ; {
		n, est := 0, 0
		for i+n < len(w.convs) && est < pieceBytes {
			est += size(w.convs[i+n])
			n++
		}
		w.begin(core, base, est+min(18*core.EmittedIDs(), pieceBytes))
		group := w.convs[i : i+n]
		w.b = binary.AppendUvarint(w.b, uint64(len(group)))
		for _, c := range group {
			w.conv(c, base, true)
		}
		for k, c := range group {
			rows := c.Rows()
			for r := range rows {
				w.row(uint64(k), &rows[r], base)
			}
		}
		w.b = append(w.b, 0)
		i += n
		if i == len(w.convs) {
			break // the emitted ids follow in this piece
		}
		w.b = append(w.b, 0) // no emitted ids in this one
		if err := flush(false); err != nil {
			return err
		}
	}
	baseBucket := pairing.BucketOf(base)
	for k, bk := range core.EmittedBuckets() {
		if len(w.b) >= pieceBytes {
			w.b = append(w.b, 0)
			if err := flush(false); err != nil {
				return err
			}
			w.begin(core, base, pieceBytes)
			w.b = append(w.b, 0, 0) // no conversations, no rows
		}
		w.b = binary.AppendUvarint(w.b, uint64(bk.Len()))
		w.b = binary.AppendVarint(w.b, baseBucket-k)
		w.b = binary.AppendUvarint(w.b, bk.Origins())
		for id := range bk.All() {
			w.b = appendItem(w.b, id)
		}
	}
	w.b = append(w.b, 0)
	return flush(true)
}

// conv writes a conversation's record; its asks only when they may have
// changed.
func (w *segmentWriter) conv(c *pairing.Conversation, base int64, asks bool) {
	b := appendString(w.b, c.ID())
	if src := c.Source(); !w.hasLast || src != w.lastRes {
		ri, ok := w.resIx[src]
		if !ok {
			ri = uint64(len(w.resIx))
			w.resIx[src] = ri
			b = binary.AppendUvarint(b, ri)
			b = appendAttrs(b, w.resources.get(src))
		} else {
			b = binary.AppendUvarint(b, ri)
		}
		w.lastRes, w.lastResIx, w.hasLast = src, ri, true
	} else {
		b = binary.AppendUvarint(b, w.lastResIx)
	}
	b = appendString(b, c.Channel())
	b = appendString(b, c.Locale())
	b = binary.AppendUvarint(b, uint64(c.NextIndex()))
	b = binary.AppendVarint(b, c.LastObserved()-base)
	if asks {
		emitted := c.EmittedAsks()
		b = binary.AppendUvarint(b, uint64(len(emitted))+1)
		for _, a := range emitted {
			b = binary.LittleEndian.AppendUint64(b, a)
		}
	} else {
		b = append(b, 0) // unchanged
	}
	w.b = b
}

func (w *segmentWriter) row(conv uint64, r *pairing.Row, base int64) {
	b := binary.AppendUvarint(w.b, conv+1)
	b = append(b, byte(r.Kind))
	b = binary.AppendVarint(b, r.At-base)
	b = binary.AppendVarint(b, r.LagMillis())
	b = appendItem(b, r.Item)
	b = appendString(b, r.Activity)
	b = appendString(b, r.ReplyTo)
	b = appendString(b, r.Text)
	b = appendString(b, r.Topic)
	w.b = appendString(b, r.Detail)
}

// appendItem writes a GUID as a 0 and its 16 bytes, any other id (never
// empty) as a string.
func appendItem(b []byte, id pairing.ItemID) []byte {
	if g, ok := id.GUID(); ok {
		b = append(b, 0)
		return append(b, g[:]...)
	}
	return appendString(b, id.String())
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendAttrs(b []byte, m pcommon.Map) []byte {
	b = binary.AppendUvarint(b, uint64(m.Len()))
	for k, v := range m.All() {
		b = appendString(b, k)
		switch v.Type() {
		case pcommon.ValueTypeBool:
			b = append(b, 'b')
			if v.Bool() {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case pcommon.ValueTypeInt:
			b = append(b, 'i')
			b = binary.AppendVarint(b, v.Int())
		case pcommon.ValueTypeDouble:
			b = append(b, 'd')
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Double()))
		default:
			b = append(b, 's')
			b = appendString(b, v.AsString())
		}
	}
	return b
}

// decoder reads a segment; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or corrupt at %s", what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail("uint64")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length and checks it against what is left, each item
// taking at least min bytes, so corrupt input cannot ask for huge slices.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail("count")
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) item() pairing.ItemID {
	if len(d.b) > 0 && d.b[0] == 0 {
		if len(d.b) < 17 {
			d.fail("item id")
			return pairing.ItemID{}
		}
		var g pairing.GUID
		copy(g[:], d.b[1:17])
		d.b = d.b[17:]
		return pairing.ItemIDFromGUID(g)
	}
	return pairing.NewItemID(d.string())
}

func (d *decoder) resource(rs *resources) pairing.Source {
	attrs := pcommon.NewMap()
	for n := d.count(2); n > 0 && d.err == nil; n-- {
		k := d.string()
		switch d.byte() {
		case 'b':
			attrs.PutBool(k, d.byte() != 0)
		case 'i':
			attrs.PutInt(k, d.varint())
		case 'd':
			attrs.PutDouble(k, math.Float64frombits(d.uint64()))
		case 's':
			attrs.PutStr(k, d.string())
		default:
			d.fail("attribute type")
		}
	}
	res := pcommon.NewResource()
	attrs.CopyTo(res.Attributes())
	return rs.of(res)
}

// decodeSegment adds a segment to core, naming the origins it holds anew.
func decodeSegment(seg []byte, core *pairing.Core, rs *resources) error {
	return decodeSegmentOf(seg, core, rs, newOrigins())
}

// decodeSegmentOf adds a segment (format 2 or 3) to core, its origins
// named in os. A row emitted in a later segment than the one that buffered
// it stays buffered until core.FinishRestore.
func decodeSegmentOf(seg []byte, core *pairing.Core, rs *resources, os *origins) error {
	if os == nil {
		os = newOrigins()
	}
	d := decoder{b: seg}
	v := d.byte()
	if v != stateVersion && v != formatV2 {
		return fmt.Errorf("format version %d, this build reads %d and %d", v, formatV2, stateVersion)
	}
	base := d.varint()
	core.RestoreWatermark(base)

	// origins: by the number this segment names them with
	var named [pairing.MaxOrigins]pairing.Origin
	if v != formatV2 {
		for n := d.count(3); n > 0 && d.err == nil; n-- {
			stored, key, replayFrom := d.uvarint(), d.string(), d.varint()
			if d.err != nil || stored == 0 || stored >= pairing.MaxOrigins || key == "" {
				d.fail("origin")
				break
			}
			o := os.get(key)
			named[stored] = o
			if o != 0 && replayFrom != 0 {
				core.SetReplayFrom(o, replayFrom)
			}
		}
	}

	var sources []pairing.Source
	convs := make([]*pairing.Conversation, d.count(7))
	for i := range convs {
		st := pairing.ConversationState{ID: d.string()}
		ri := d.uvarint()
		if d.err == nil && ri == uint64(len(sources)) {
			sources = append(sources, d.resource(rs))
		}
		if d.err != nil || ri >= uint64(len(sources)) {
			d.fail("resource index")
			break
		}
		st.Source = sources[ri]
		st.Channel, st.Locale = d.string(), d.string()
		st.NextIndex = int32(d.uvarint())
		st.LastObserved = base + d.varint()
		if n := d.uvarint(); n > 0 {
			if n-1 > uint64(len(d.b)/8) {
				d.fail("asks")
				break
			}
			asks := make([]uint64, n-1)
			for k := range asks {
				asks[k] = d.uint64()
			}
			st.EmittedAsks, st.AsksKnown = asks, true
		}
		convs[i] = core.RestoreConversation(&st)
	}

	for d.err == nil {
		ref := d.uvarint()
		if ref == 0 {
			break
		}
		var r pairing.Row
		r.Kind = pairing.Kind(d.byte())
		r.At = base + d.varint()
		r.SetLagMillis(d.varint())
		r.Item = d.item()
		r.Activity, r.ReplyTo = d.string(), d.string()
		r.Text, r.Topic, r.Detail = d.string(), d.string(), d.string()
		if d.err != nil || ref > uint64(len(convs)) || !r.Kind.Valid() {
			d.fail("row")
			break
		}
		core.RestoreRow(convs[ref-1], &r)
	}

	baseBucket := pairing.BucketOf(base)
	for d.err == nil {
		n := d.count(2)
		if n == 0 {
			break
		}
		k := baseBucket - d.varint()
		if d.err != nil || k < math.MinInt64/pairing.IDBucketWidth || k > math.MaxInt64/pairing.IDBucketWidth {
			d.fail("emitted ids' time")
			break
		}
		var mask uint64
		if v != formatV2 {
			for stored := d.uvarint(); stored != 0; stored &= stored - 1 {
				if o := named[bits.TrailingZeros64(stored)]; o != 0 {
					mask |= 1 << o
				}
			}
		}
		for ; n > 0 && d.err == nil; n-- {
			item := d.item()
			if d.err == nil {
				core.RestoreEmitted(item, k)
			}
		}
		if d.err == nil && mask != 0 {
			core.RestoreOrigins(k, mask)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("end")
	}
	return d.err
}

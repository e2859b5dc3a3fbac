package activitypairprocessor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Stored state is a log of segments: each ConsumeLogs writes one segment
// holding only what changed (rows buffered, ids emitted, the conversations
// concerned), and from time to time a snapshot segment replaces them all.
// A small manifest names the live range. Segment and manifest are written
// in one storage batch, so the stored state is always a consistent one.
const (
	stateVersion  = 1
	manifestKey   = "manifest"
	segmentPrefix = "segment/"
	// A snapshot is written once the segments since the last one outweigh
	// it by this factor (plus minSnapshotBytes): replay stays bounded and
	// writing stays proportional to what changed.
	snapshotFactor   = 2
	minSnapshotBytes = 1 << 20
)

func segmentKey(n uint64) string { return segmentPrefix + strconv.FormatUint(n, 10) }

// journal collects the changes since the last successful save.
type journal struct {
	added   []journalRow
	emitted []journalEmit
	convs   []*conversation
}

type journalRow struct {
	conv *conversation
	r    row
}

type journalEmit struct {
	conv     *conversation
	item     itemID
	observed int64
}

func (j *journal) add(c *conversation, r row) {
	j.added = append(j.added, journalRow{c, r})
	j.touch(c)
}

func (j *journal) emit(c *conversation, item itemID, observed int64) {
	j.emitted = append(j.emitted, journalEmit{c, item, observed})
}

func (j *journal) touch(c *conversation) {
	if !c.journaled {
		c.journaled = true
		j.convs = append(j.convs, c)
	}
}

func (j *journal) empty() bool { return len(j.convs) == 0 && len(j.emitted) == 0 }

func (j *journal) reset() {
	for _, c := range j.convs {
		c.journaled = false
	}
	clear(j.added)
	clear(j.emitted)
	clear(j.convs)
	j.added, j.emitted, j.convs = j.added[:0], j.emitted[:0], j.convs[:0]
}

// store saves and restores the state through a storage client.
type store struct {
	client      storage.Client
	first, last uint64 // live segments; first > last when there are none
	sinceSnap   int    // bytes written since the last snapshot
	snapBytes   int
	needSnap    bool // the stored state is unreadable: replace it
	minSnapshot int  // minSnapshotBytes; tests lower it
}

// save writes the journal as one segment, or a snapshot of the whole state
// when due, in one batch. On failure the journal is kept for the next try.
func (st *store) save(ctx context.Context, s *state) error {
	j := s.journal
	if j.empty() && !st.needSnap {
		return nil
	}
	snapshot := st.needSnap || st.sinceSnap > snapshotFactor*st.snapBytes+st.minSnapshot
	var seg []byte
	if snapshot {
		seg = encodeSnapshot(s)
	} else {
		seg = encodeDelta(s)
	}
	n := st.last + 1
	first := st.first
	ops := []*storage.Operation{storage.SetOperation(segmentKey(n), seg)}
	if snapshot {
		for k := st.first; k <= st.last; k++ {
			ops = append(ops, storage.DeleteOperation(segmentKey(k)))
		}
		first = n
	}
	ops = append(ops, storage.SetOperation(manifestKey, encodeManifest(first, n)))
	if err := st.client.Batch(ctx, ops...); err != nil {
		return fmt.Errorf("saving pairing state: %w", err)
	}
	st.first, st.last = first, n
	if snapshot {
		st.sinceSnap, st.snapBytes, st.needSnap = 0, len(seg), false
	} else {
		st.sinceSnap += len(seg)
	}
	j.reset()
	return nil
}

func encodeManifest(first, last uint64) []byte {
	b := []byte{stateVersion}
	b = binary.AppendUvarint(b, first)
	return binary.AppendUvarint(b, last)
}

// restore replays the stored segments into s. On error s may hold part of
// the state: the caller starts clean.
func (st *store) restore(ctx context.Context, s *state, now int64) error {
	m, err := st.client.Get(ctx, manifestKey)
	if err != nil {
		return fmt.Errorf("reading manifest: %w", err)
	}
	st.first, st.last = 1, 0
	if m == nil {
		return nil // first start
	}
	d := decoder{b: m}
	if v := d.byte(); v != stateVersion {
		st.needSnap = true
		return fmt.Errorf("manifest has format version %d, this build reads %d", v, stateVersion)
	}
	st.first, st.last = d.uvarint(), d.uvarint()
	if d.err != nil || st.first > st.last+1 {
		st.first, st.last, st.needSnap = 1, 0, true
		return errors.New("manifest is corrupt")
	}
	for n := st.first; n <= st.last; n++ {
		seg, err := st.client.Get(ctx, segmentKey(n))
		if err != nil {
			return fmt.Errorf("reading segment %d: %w", n, err)
		}
		if seg == nil {
			st.needSnap = true
			return fmt.Errorf("segment %d named by the manifest is missing", n)
		}
		if err := decodeSegment(seg, s); err != nil {
			st.needSnap = true
			return fmt.Errorf("segment %d: %w", n, err)
		}
		if n == st.first {
			st.snapBytes = len(seg)
		} else {
			st.sinceSnap += len(seg)
		}
	}
	s.finishRestore(now)
	return nil
}

// finishRestore re-plans every restored conversation.
func (s *state) finishRestore(now int64) {
	for _, c := range s.convs {
		c.lastArrival = now // the wall clock restarts: give late rows their full reply_timeout
		if len(c.rows) > 0 {
			s.toIdleBack(c)
			s.refresh(c)
		} else {
			s.emptied.push(emptiedConversation{c, c.lastObserved})
		}
	}
	s.prune()
}

// segmentWriter encodes a segment: tables of resources and conversations,
// then rows and emitted ids referring to them by index.
type segmentWriter struct {
	b     []byte
	resIx map[*resource]uint64
	res   []*resource
	conIx map[*conversation]uint64
	cons  []*conversation
}

func (w *segmentWriter) conv(c *conversation) uint64 {
	if i, ok := w.conIx[c]; ok {
		return i
	}
	if _, ok := w.resIx[c.res]; !ok {
		w.resIx[c.res] = uint64(len(w.res))
		w.res = append(w.res, c.res)
	}
	i := uint64(len(w.cons))
	w.conIx[c] = i
	w.cons = append(w.cons, c)
	return i
}

// encode writes the segment: rows and emitted are written by the callers
// into body, which refers to the conversation table by index.
func (w *segmentWriter) finish(watermark int64, body []byte) []byte {
	b := []byte{stateVersion}
	b = binary.AppendVarint(b, watermark)
	b = binary.AppendUvarint(b, uint64(len(w.res)))
	for _, r := range w.res {
		b = appendAttrs(b, r.attrs)
	}
	b = binary.AppendUvarint(b, uint64(len(w.cons)))
	for _, c := range w.cons {
		b = appendString(b, c.id)
		b = binary.AppendUvarint(b, w.resIx[c.res])
		b = appendString(b, c.channel)
		b = appendString(b, c.locale)
		b = binary.AppendUvarint(b, uint64(c.nextIndex))
		b = binary.AppendVarint(b, c.lastObserved)
		b = binary.AppendUvarint(b, uint64(len(c.emittedAsks)))
		for _, a := range c.emittedAsks {
			b = binary.LittleEndian.AppendUint64(b, a)
		}
	}
	return append(b, body...)
}

func newSegmentWriter() *segmentWriter {
	return &segmentWriter{resIx: map[*resource]uint64{}, conIx: map[*conversation]uint64{}}
}

func encodeDelta(s *state) []byte {
	j := s.journal
	w := newSegmentWriter()
	for _, c := range j.convs {
		w.conv(c)
	}
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(j.added)))
	for _, a := range j.added {
		body = appendRow(body, w.conv(a.conv), &a.r)
	}
	body = binary.AppendUvarint(body, uint64(len(j.emitted)))
	for _, e := range j.emitted {
		body = binary.AppendUvarint(body, w.conv(e.conv)+1)
		body = appendItem(body, e.item)
		body = binary.AppendVarint(body, e.observed)
	}
	return w.finish(s.watermark, body)
}

func encodeSnapshot(s *state) []byte {
	w := newSegmentWriter()
	rows := 0
	for _, c := range s.convs {
		rows += len(c.rows)
	}
	var body []byte
	body = binary.AppendUvarint(body, uint64(rows))
	for _, c := range s.convs {
		ci := w.conv(c)
		for i := range c.rows {
			body = appendRow(body, ci, &c.rows[i])
		}
	}
	body = binary.AppendUvarint(body, uint64(s.seen.emittedLen()))
	s.seen.eachEmitted(func(id itemID, observed int64) {
		body = binary.AppendUvarint(body, 0) // no conversation: its row is not buffered
		body = appendItem(body, id)
		body = binary.AppendVarint(body, observed)
	})
	return w.finish(s.watermark, body)
}

func appendRow(b []byte, conv uint64, r *row) []byte {
	b = binary.AppendUvarint(b, conv)
	b = append(b, byte(r.kind))
	b = binary.AppendVarint(b, r.at)
	b = binary.AppendVarint(b, int64(r.lagMS))
	b = appendItem(b, r.item)
	for _, s := range [...]string{r.activity, r.replyTo, r.text, r.topic, r.detail} {
		b = appendString(b, s)
	}
	return b
}

func appendItem(b []byte, id itemID) []byte {
	if id.text != "" {
		return appendString(b, id.text)
	}
	b = binary.AppendUvarint(b, 36)
	return formatGUID(b, id.guid)
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

func decodeSegment(seg []byte, s *state) error {
	d := decoder{b: seg}
	if v := d.byte(); v != stateVersion {
		return fmt.Errorf("format version %d, this build reads %d", v, stateVersion)
	}
	s.watermark = max(s.watermark, d.varint())

	resources := make([]*resource, d.count(1))
	for i := range resources {
		attrs := pcommon.NewMap()
		for n := d.count(2); n > 0 && d.err == nil; n-- {
			k := d.string()
			switch d.byte() {
			case 'b':
				attrs.PutBool(k, d.byte() != 0)
			case 'i':
				attrs.PutInt(k, d.varint())
			case 'd':
				if len(d.b) < 8 {
					d.fail("double")
					break
				}
				attrs.PutDouble(k, math.Float64frombits(binary.LittleEndian.Uint64(d.b)))
				d.b = d.b[8:]
			case 's':
				attrs.PutStr(k, d.string())
			default:
				d.fail("attribute type")
			}
		}
		res := pcommon.NewResource()
		attrs.CopyTo(res.Attributes())
		resources[i] = s.resourceOf(res)
	}

	convs := make([]*conversation, d.count(6))
	for i := range convs {
		id := d.string()
		ri := d.uvarint()
		if d.err != nil || ri >= uint64(len(resources)) {
			d.fail("resource index")
			break
		}
		c := s.convs[id]
		if c == nil {
			c = &conversation{id: id, res: resources[ri], heapIndex: -1}
			s.convs[id] = c
		}
		c.channel, c.locale = d.string(), d.string()
		c.nextIndex = int32(d.uvarint())
		c.lastObserved = max(c.lastObserved, d.varint())
		asks := make([]uint64, d.count(8))
		for k := range asks {
			asks[k] = d.uint64()
		}
		c.emittedAsks = asks
		convs[i] = c
	}

	for n := d.count(9); n > 0 && d.err == nil; n-- {
		ci := d.uvarint()
		var r row
		r.kind = rowKind(d.byte())
		r.at = d.varint()
		r.lagMS = int32(min(max(d.varint(), math.MinInt32), math.MaxInt32))
		item := d.string()
		r.item = newItemID(item)
		r.activity, r.replyTo = d.string(), d.string()
		r.text, r.topic, r.detail = d.string(), d.string(), d.string()
		if d.err != nil || ci >= uint64(len(convs)) || r.kind == 0 || r.kind >= kindLimit || item == "" {
			d.fail("row")
			break
		}
		if !s.seen.contains(r.item, r.observed()) && convs[ci].insert(r) {
			s.bufferedRows++
			convs[ci].bytes += rowBytes(&r)
			s.bufferedBytes += rowBytes(&r)
		}
	}

	for n := d.count(3); n > 0 && d.err == nil; n-- {
		ci := d.uvarint()
		item := newItemID(d.string())
		observed := d.varint()
		if d.err != nil || ci > uint64(len(convs)) {
			d.fail("emitted id")
			break
		}
		if ci > 0 {
			c := convs[ci-1]
			for i := range c.rows {
				if c.rows[i].item == item {
					c.bytes -= rowBytes(&c.rows[i])
					s.bufferedBytes -= rowBytes(&c.rows[i])
					c.rows = removeIndices(c.rows, []int32{int32(i)})
					s.bufferedRows--
					break
				}
			}
		}
		s.seen.emitted(item, observed)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("end")
	}
	return d.err
}

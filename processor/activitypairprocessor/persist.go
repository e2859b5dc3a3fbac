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

// Stored state is a log of segments: each save writes one segment holding
// only what changed (rows buffered, ids emitted, the conversations
// concerned), and from time to time a snapshot of the whole state (in
// segments of a few MiB) replaces them all.
//
// The log is kept in numbered chunks, each segment starting a new chunk,
// and a manifest names the live range; a segment's chunks and the manifest
// are written in one storage batch, so the stored state is always a
// consistent one. Chunks are for bbolt (file_storage): a B+tree leaf holds
// at least two keys and is rewritten whole when any key in it changes, so
// one large value per segment made every save copy a neighbour segment
// (often the snapshot) again, and freed runs of pages too short for the
// next large value grew the file. Two chunks fill a leaf of eight pages:
// a save writes its own leaves and the last one, freed runs have the same
// few sizes and are reused, and bbolt writes a leaf in one system call
// (single-page chunks took eight).
const (
	stateVersion = 2
	manifestKey  = "manifest"
	chunkPrefix  = "chunk/"
	// chunkSize fills eight 4 KiB pages with two chunks: page header 16
	// bytes, then per element 16 bytes of header, its key and its value.
	chunkSize = (8*4096-16)/2 - 16 - chunkKeyLen
	// A snapshot is written once the segments since the last one outweigh
	// it by this factor (plus minSnapshotBytes): replay stays bounded and
	// writing stays proportional to what changed. Most of a segment is
	// garbage soon (rows buffered, then emitted), so the factor bounds the
	// file at about (2+factor) snapshots. Measured (BenchmarkPersist), 1
	// costs the same CPU per row as 2: deleting the replaced chunks costs
	// about as much as writing them, and the file is 20% smaller.
	snapshotFactor   = 1
	minSnapshotBytes = 1 << 20
	// maxLiveChunks (256 GiB) bounds the range a manifest may name: a
	// corrupt one must not make the snapshot replacing it delete 2^60 keys.
	maxLiveChunks = 1 << 24
	// restoreBatch chunks (1 MiB) are read in one storage call (one
	// transaction).
	restoreBatch = 64
	// snapshotPieceBytes bounds the buffer a snapshot is written from.
	snapshotPieceBytes = 4 << 20
	// The buffer is kept for the next save up to this size (a delta holds
	// one receiver window).
	keepBufferBytes = 64 << 20
)

const chunkKeyLen = len(chunkPrefix) + 16

func appendChunkKey(b []byte, n uint64) []byte {
	b = append(b, chunkPrefix...)
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hexDigits[n>>uint(shift)&0xf])
	}
	return b
}

func chunkKey(n uint64) string { return string(appendChunkKey(nil, n)) }

// legacySegmentKey names a segment of format version 1 (one key per segment).
func legacySegmentKey(n uint64) string { return "segment/" + strconv.FormatUint(n, 10) }

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
	client storage.Client
	// Live chunks: [first, next), of which the latest snapshot is
	// [first, snapEnd).
	first, snapEnd, next uint64
	sinceSnap            int // bytes written since the last snapshot
	snapBytes            int
	needSnap             bool     // the stored state is unreadable: replace it
	stale                []string // keys of an older format, deleted with the next snapshot
	minSnapshot          int      // minSnapshotBytes; tests lower it
	pieceBytes           int      // snapshotPieceBytes when 0; tests lower it

	w    segmentWriter
	ops  []storage.Operation
	opps []*storage.Operation
}

// save writes the journal as one segment, or a snapshot of the whole state
// when due. On failure the journal is kept for the next try.
func (st *store) save(ctx context.Context, s *state) error {
	if s.journal.empty() && !st.needSnap {
		return nil
	}
	var err error
	if st.needSnap || st.sinceSnap > snapshotFactor*st.snapBytes+st.minSnapshot {
		err = st.saveSnapshot(ctx, s)
	} else {
		err = st.saveDelta(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("saving pairing state: %w", err)
	}
	s.journal.reset()
	return nil
}

// saveDelta writes the journal and the manifest in one batch.
func (st *store) saveDelta(ctx context.Context, s *state) error {
	w := &st.w
	w.delta(s)
	rec := w.framed()
	next := st.next + chunksOf(rec)
	err := st.put(ctx, st.next, rec, &manifest{st.first, st.snapEnd, next})
	if cap(w.b) > keepBufferBytes {
		w.b = nil
	}
	if err != nil {
		return err
	}
	st.next = next
	st.sinceSnap += len(rec)
	return nil
}

// saveSnapshot writes the whole state after the live chunks, in segments of
// about snapshotPieceBytes, each but the last in its own batch, so that its
// buffer stays that small. The last batch also writes the manifest and
// deletes every older chunk. A crash before it leaves chunks past the
// manifest's range, which later saves overwrite.
func (st *store) saveSnapshot(ctx context.Context, s *state) error {
	first, at, size := st.next, st.next, 0
	piece := st.pieceBytes
	if piece == 0 {
		piece = snapshotPieceBytes
	}
	err := st.w.snapshot(s, piece, func(last bool) error {
		rec := st.w.framed()
		end := at + chunksOf(rec)
		var m *manifest
		if last {
			m = &manifest{first, end, end}
		}
		if err := st.put(ctx, at, rec, m); err != nil {
			return err
		}
		at, size = end, size+len(rec)
		return nil
	})
	if err != nil {
		return err
	}
	st.first, st.snapEnd, st.next = first, at, at
	st.sinceSnap, st.snapBytes, st.needSnap, st.stale = 0, size, false, nil
	return nil
}

func chunksOf(rec []byte) uint64 { return uint64((len(rec) + chunkSize - 1) / chunkSize) }

// manifest names the live chunks.
type manifest struct{ first, snapEnd, next uint64 }

func (m manifest) encode() []byte {
	b := []byte{stateVersion}
	b = binary.AppendUvarint(b, m.first)
	b = binary.AppendUvarint(b, m.snapEnd)
	return binary.AppendUvarint(b, m.next)
}

// put stores rec in chunks from at, in one batch. With m it also writes
// the manifest and, when m starts a new snapshot, deletes every chunk
// before it and the keys of an older format.
func (st *store) put(ctx context.Context, at uint64, rec []byte, m *manifest) error {
	chunks := chunksOf(rec)
	replacing := m != nil && m.first >= st.next // a new snapshot
	var deletes uint64
	if replacing {
		deletes = st.next - st.first
	}
	// All keys in one string: one allocation instead of one per chunk.
	keyBytes := make([]byte, 0, int(chunks+deletes)*chunkKeyLen)
	for n := at; n < at+chunks; n++ {
		keyBytes = appendChunkKey(keyBytes, n)
	}
	for n := st.first; n < st.first+deletes; n++ {
		keyBytes = appendChunkKey(keyBytes, n)
	}
	keys := string(keyBytes)
	key := func(i uint64) string { return keys[int(i)*chunkKeyLen : int(i+1)*chunkKeyLen] }

	ops := st.ops[:0]
	for i := range chunks {
		end := min(int(i+1)*chunkSize, len(rec))
		ops = append(ops, storage.Operation{Type: storage.Set, Key: key(i), Value: rec[int(i)*chunkSize : end]})
	}
	if m != nil {
		for i := chunks; i < chunks+deletes; i++ {
			ops = append(ops, storage.Operation{Type: storage.Delete, Key: key(i)})
		}
		if replacing {
			for _, k := range st.stale {
				ops = append(ops, storage.Operation{Type: storage.Delete, Key: k})
			}
		}
		ops = append(ops, storage.Operation{Type: storage.Set, Key: manifestKey, Value: m.encode()})
	}
	opps := st.opps[:0]
	for i := range ops {
		opps = append(opps, &ops[i])
	}
	err := st.client.Batch(ctx, opps...)
	clear(ops) // drop the references to the segment
	st.ops, st.opps = ops[:0], opps[:0]
	return err
}

// restore replays the stored segments into s. On error s may hold part of
// the state: the caller starts clean.
func (st *store) restore(ctx context.Context, s *state, now int64) error {
	m, err := st.client.Get(ctx, manifestKey)
	if err != nil {
		return fmt.Errorf("reading manifest: %w", err)
	}
	st.first, st.snapEnd, st.next = 1, 1, 1
	if m == nil {
		return nil // first start
	}
	d := decoder{b: m}
	v := d.byte()
	if v == 1 {
		// Version 1 kept one key per segment: delete them with the
		// snapshot that replaces them.
		first, last := d.uvarint(), d.uvarint()
		if d.err == nil && first <= last && last-first < 1<<16 {
			for n := first; n <= last; n++ {
				st.stale = append(st.stale, legacySegmentKey(n))
			}
		}
	}
	if v != stateVersion {
		st.needSnap = true
		return fmt.Errorf("manifest has format version %d, this build reads %d", v, stateVersion)
	}
	first, snapEnd, next := d.uvarint(), d.uvarint(), d.uvarint()
	if d.err != nil || first > snapEnd || snapEnd > next || next-first > maxLiveChunks {
		st.needSnap = true
		return errors.New("manifest is corrupt")
	}
	// A snapshot replacing unreadable state deletes these.
	st.first, st.snapEnd, st.next = first, snapEnd, next
	var buf []byte // chunks read and not yet decoded
	for n := first; n < next; {
		k := min(uint64(restoreBatch), next-n)
		ops := make([]*storage.Operation, k)
		for i := range ops {
			ops[i] = storage.GetOperation(chunkKey(n + uint64(i)))
		}
		if err := st.client.Batch(ctx, ops...); err != nil {
			return fmt.Errorf("reading chunks %d-%d: %w", n, n+k-1, err)
		}
		for i, op := range ops {
			if op.Value == nil {
				st.needSnap = true
				return fmt.Errorf("chunk %d named by the manifest is missing", n+uint64(i))
			}
			buf = append(buf, op.Value...)
			if n+uint64(i) < snapEnd {
				st.snapBytes += len(op.Value)
			} else {
				st.sinceSnap += len(op.Value)
			}
		}
		n += k
		// Decode every segment read whole.
		decoded := false
		for len(buf) > 0 {
			size, p := binary.Uvarint(buf)
			if p < 0 || (p == 0 && len(buf) >= binary.MaxVarintLen64) {
				st.needSnap = true
				return errors.New("segment length is corrupt")
			}
			if p == 0 || uint64(len(buf)-p) < size {
				break // the rest is in the next chunks
			}
			seg := buf[p : p+int(size)]
			if err := decodeSegment(seg, s); err != nil {
				st.needSnap = true
				return fmt.Errorf("segment in chunks before %d: %w", n, err)
			}
			buf, decoded = buf[p+int(size):], true
		}
		if decoded {
			buf = append([]byte(nil), buf...) // let decoded segments go
		}
	}
	if len(buf) != 0 {
		st.needSnap = true
		return errors.New("the last segment is truncated")
	}
	s.finishRestore(now)
	return nil
}

// finishRestore drops the rows emitted in a later segment than the one
// that buffered them (their ids are remembered), then re-plans every
// restored conversation.
func (s *state) finishRestore(now int64) {
	for _, c := range s.convs {
		kept := c.rows[:0]
		for i := range c.rows {
			if r := &c.rows[i]; s.seen.contains(r.item, r.observed()) {
				c.bytes -= rowBytes(r)
				s.bufferedBytes -= rowBytes(r)
				s.bufferedRows--
				continue
			}
			kept = append(kept, c.rows[i])
		}
		clear(c.rows[len(kept):])
		c.rows = kept
	}
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

// segmentWriter encodes segments into a buffer kept from one save to the
// next. A segment is: the format version; the watermark, against which
// every time in it is written; the conversations concerned, each resource
// written in full at its first use; the rows, which name their
// conversation by its place in that table, until a 0; the emitted ids in
// runs of one ingestion-time bucket (all an idSet keeps of the time), until
// a 0. Item ids that are GUIDs take 16 bytes.
type segmentWriter struct {
	b         []byte
	resIx     map[*resource]uint64
	lastRes   *resource // most conversations share one agent
	lastResIx uint64
	conIx     map[*conversation]uint64
	convs     []*conversation
	committed []bool // by place in the table: some of its rows were emitted
}

// frameRoom is kept at the head of the buffer for the segment's length.
const frameRoom = binary.MaxVarintLen64

func (w *segmentWriter) begin(watermark int64, size int) {
	if w.resIx == nil {
		w.resIx, w.conIx = map[*resource]uint64{}, map[*conversation]uint64{}
	}
	clear(w.resIx)
	clear(w.conIx)
	w.lastRes = nil
	if cap(w.b) < frameRoom+size {
		w.b = make([]byte, 0, frameRoom+size)
	}
	w.b = w.b[:frameRoom]
	w.b = append(w.b, stateVersion)
	w.b = binary.AppendVarint(w.b, watermark)
}

// segment is what was written, as decodeSegment reads it.
func (w *segmentWriter) segment() []byte { return w.b[frameRoom:] }

// framed is the segment preceded by its length, as stored.
func (w *segmentWriter) framed() []byte {
	var l [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(l[:], uint64(len(w.b)-frameRoom))
	copy(w.b[frameRoom-k:], l[:k])
	return w.b[frameRoom-k:]
}

// delta writes what the journal holds.
func (w *segmentWriter) delta(s *state) {
	j := s.journal
	base := s.watermark
	// What the delta takes, about, so that the buffer grows once at most.
	size := 18*len(j.emitted) + 128*len(j.convs)
	for i := range j.added {
		r := &j.added[i].r
		size += 48 + len(r.activity) + len(r.replyTo) + len(r.text) + len(r.topic) + len(r.detail)
	}
	w.begin(base, size)
	for i, c := range j.convs {
		w.conIx[c] = uint64(i)
	}
	w.committed = append(w.committed[:0], make([]bool, len(j.convs))...)
	var prev *conversation
	for i := range j.emitted {
		if c := j.emitted[i].conv; c != prev {
			prev = c
			if ci, ok := w.conIx[c]; ok {
				w.committed[ci] = true
			}
		}
	}
	w.b = binary.AppendUvarint(w.b, uint64(len(j.convs)))
	for i, c := range j.convs {
		// Only emitting changes the asks a conversation remembers.
		w.conv(c, base, w.committed[i])
	}
	for i := range j.added {
		a := &j.added[i]
		ci := w.conIx[a.conv]
		if w.committed[ci] && s.seen.contains(a.r.item, a.r.observed()) {
			continue // emitted since it was added: its id below is all a restore needs
		}
		w.row(ci, &a.r, base)
	}
	w.b = append(w.b, 0)
	baseBucket := bucketOf(base)
	for i := 0; i < len(j.emitted); {
		k := bucketOf(j.emitted[i].observed)
		n := i + 1
		for n < len(j.emitted) && bucketOf(j.emitted[n].observed) == k {
			n++
		}
		w.b = binary.AppendUvarint(w.b, uint64(n-i))
		w.b = binary.AppendVarint(w.b, baseBucket-k)
		for ; i < n; i++ {
			w.b = appendItem(w.b, j.emitted[i].item)
		}
	}
	w.b = append(w.b, 0)
}

// snapshot writes the whole state as segments of about pieceBytes,
// calling flush with each: the conversations with their rows, then the
// emitted ids.
func (w *segmentWriter) snapshot(s *state, pieceBytes int, flush func(last bool) error) error {
	base := s.watermark
	w.convs = w.convs[:0]
	for _, c := range s.convs {
		w.convs = append(w.convs, c)
	}
	defer clear(w.convs)
	// What a conversation's record and rows take, about.
	size := func(c *conversation) int {
		return 64 + len(c.id) + 8*len(c.emittedAsks) + int(c.bytes) - len(c.rows)*(rowOverhead-64)
	}
	for i := 0; ; {
		n, est := 0, 0
		for i+n < len(w.convs) && est < pieceBytes {
			est += size(w.convs[i+n])
			n++
		}
		w.begin(base, est+min(18*s.seen.emittedLen(), pieceBytes))
		group := w.convs[i : i+n]
		w.b = binary.AppendUvarint(w.b, uint64(len(group)))
		for _, c := range group {
			w.conv(c, base, true)
		}
		for k, c := range group {
			for r := range c.rows {
				w.row(uint64(k), &c.rows[r], base)
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
	baseBucket := bucketOf(base)
	for k, bk := range s.seen.buckets {
		n := bk.len()
		if n == 0 {
			continue
		}
		if len(w.b) >= pieceBytes {
			w.b = append(w.b, 0)
			if err := flush(false); err != nil {
				return err
			}
			w.begin(base, pieceBytes)
			w.b = append(w.b, 0, 0) // no conversations, no rows
		}
		w.b = binary.AppendUvarint(w.b, uint64(n))
		w.b = binary.AppendVarint(w.b, baseBucket-k)
		for g := range bk.guids.all {
			w.b = append(w.b, 0)
			w.b = append(w.b, g[:]...)
		}
		for t := range bk.others {
			w.b = appendString(w.b, t)
		}
	}
	w.b = append(w.b, 0)
	return flush(true)
}

// conv writes a conversation's record; its asks only when they may have
// changed.
func (w *segmentWriter) conv(c *conversation, base int64, asks bool) {
	b := appendString(w.b, c.id)
	if c.res != w.lastRes {
		ri, ok := w.resIx[c.res]
		if !ok {
			ri = uint64(len(w.resIx))
			w.resIx[c.res] = ri
			b = binary.AppendUvarint(b, ri)
			b = appendAttrs(b, c.res.attrs)
		} else {
			b = binary.AppendUvarint(b, ri)
		}
		w.lastRes, w.lastResIx = c.res, ri
	} else {
		b = binary.AppendUvarint(b, w.lastResIx)
	}
	b = appendString(b, c.channel)
	b = appendString(b, c.locale)
	b = binary.AppendUvarint(b, uint64(c.nextIndex))
	b = binary.AppendVarint(b, c.lastObserved-base)
	if asks {
		b = binary.AppendUvarint(b, uint64(len(c.emittedAsks))+1)
		for _, a := range c.emittedAsks {
			b = binary.LittleEndian.AppendUint64(b, a)
		}
	} else {
		b = append(b, 0) // unchanged
	}
	w.b = b
}

func (w *segmentWriter) row(conv uint64, r *row, base int64) {
	b := binary.AppendUvarint(w.b, conv+1)
	b = append(b, byte(r.kind))
	b = binary.AppendVarint(b, r.at-base)
	b = binary.AppendVarint(b, int64(r.lagMS))
	b = appendItem(b, r.item)
	b = appendString(b, r.activity)
	b = appendString(b, r.replyTo)
	b = appendString(b, r.text)
	b = appendString(b, r.topic)
	w.b = appendString(b, r.detail)
}

func encodeDelta(s *state) []byte {
	var w segmentWriter
	w.delta(s)
	return w.segment()
}

// encodeSnapshot is the whole state as one segment.
func encodeSnapshot(s *state) []byte {
	var w segmentWriter
	_ = w.snapshot(s, math.MaxInt, func(bool) error { return nil })
	return w.segment()
}

// appendItem writes a GUID as a 0 and its 16 bytes, any other id (never
// empty) as a string.
func appendItem(b []byte, id itemID) []byte {
	if id.text != "" {
		return appendString(b, id.text)
	}
	b = append(b, 0)
	return append(b, id.guid[:]...)
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

func (d *decoder) item() itemID {
	if len(d.b) > 0 && d.b[0] == 0 {
		if len(d.b) < 17 {
			d.fail("item id")
			return itemID{}
		}
		var g guid
		copy(g[:], d.b[1:17])
		d.b = d.b[17:]
		return itemID{guid: g}
	}
	return newItemID(d.string())
}

func (d *decoder) resource(s *state) *resource {
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
	return s.resourceOf(res)
}

// decodeSegment adds a segment to s. A row emitted in a later segment than
// the one that buffered it stays buffered until finishRestore.
func decodeSegment(seg []byte, s *state) error {
	d := decoder{b: seg}
	if v := d.byte(); v != stateVersion {
		return fmt.Errorf("format version %d, this build reads %d", v, stateVersion)
	}
	base := d.varint()
	s.watermark = max(s.watermark, base)

	var resources []*resource
	convs := make([]*conversation, d.count(7))
	for i := range convs {
		id := d.string()
		ri := d.uvarint()
		if d.err == nil && ri == uint64(len(resources)) {
			resources = append(resources, d.resource(s))
		}
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
		c.lastObserved = max(c.lastObserved, base+d.varint())
		if n := d.uvarint(); n > 0 {
			if n-1 > uint64(len(d.b)/8) {
				d.fail("asks")
				break
			}
			asks := make([]uint64, n-1)
			for k := range asks {
				asks[k] = d.uint64()
			}
			c.emittedAsks = asks
		}
		convs[i] = c
	}

	for d.err == nil {
		ref := d.uvarint()
		if ref == 0 {
			break
		}
		var r row
		r.kind = rowKind(d.byte())
		r.at = base + d.varint()
		r.lagMS = int32(min(max(d.varint(), math.MinInt32), math.MaxInt32))
		r.item = d.item()
		r.activity, r.replyTo = d.string(), d.string()
		r.text, r.topic, r.detail = d.string(), d.string(), d.string()
		if d.err != nil || ref > uint64(len(convs)) || r.kind == 0 || r.kind >= kindLimit {
			d.fail("row")
			break
		}
		r.topic = s.intern(r.topic)
		if r.kind == kindAction {
			r.detail = s.intern(r.detail)
		}
		c := convs[ref-1]
		if !s.seen.contains(r.item, r.observed()) && c.insert(r) {
			s.bufferedRows++
			c.bytes += rowBytes(&r)
			s.bufferedBytes += rowBytes(&r)
		}
	}

	baseBucket := bucketOf(base)
	for d.err == nil {
		n := d.count(2)
		if n == 0 {
			break
		}
		k := baseBucket - d.varint()
		if d.err != nil || k < math.MinInt64/idBucketWidth || k > math.MaxInt64/idBucketWidth {
			d.fail("emitted ids' time")
			break
		}
		for ; n > 0 && d.err == nil; n-- {
			item := d.item()
			if d.err == nil {
				s.seen.emitted(item, k*idBucketWidth)
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("end")
	}
	return d.err
}

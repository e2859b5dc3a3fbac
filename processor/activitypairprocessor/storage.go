package activitypairprocessor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
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
	stateVersion = 3
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

// store saves and restores the state through a storage client.
type store struct {
	client storage.Client
	// Live chunks: [first, next), of which the latest snapshot is
	// [first, snapEnd).
	first, snapEnd, next uint64
	sinceSnap            int // bytes written since the last snapshot
	snapBytes            int
	needSnap             bool     // the stored state is unreadable or in format 2: replace it
	stale                []string // keys of an older format, deleted with the next snapshot
	minSnapshot          int      // minSnapshotBytes; tests lower it
	pieceBytes           int      // snapshotPieceBytes when 0; tests lower it

	w    segmentWriter
	ops  []storage.Operation
	opps []*storage.Operation
}

func newStore(client storage.Client, rs *resources, os *origins) *store {
	return &store{client: client, minSnapshot: minSnapshotBytes, w: segmentWriter{resources: rs, origins: os}}
}

// save writes the core's changes since the last save as one segment, or a
// snapshot of the whole state when due. On failure the changes are kept
// for the next try. Nothing is written without changes: state that could
// not be read (on_unreadable_state: discard) stays until there is new
// state to replace it with.
func (st *store) save(ctx context.Context, core *pairing.Core) error {
	if core.Changes().Empty() {
		return nil
	}
	var err error
	if st.needSnap || st.sinceSnap > snapshotFactor*st.snapBytes+st.minSnapshot {
		err = st.saveSnapshot(ctx, core)
	} else {
		err = st.saveDelta(ctx, core)
	}
	if err != nil {
		return fmt.Errorf("saving pairing state: %w", err)
	}
	core.Saved()
	return nil
}

// saveDelta writes the changes and the manifest in one batch.
func (st *store) saveDelta(ctx context.Context, core *pairing.Core) error {
	w := &st.w
	w.delta(core)
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
func (st *store) saveSnapshot(ctx context.Context, core *pairing.Core) error {
	first, at, size := st.next, st.next, 0
	piece := st.pieceBytes
	if piece == 0 {
		piece = snapshotPieceBytes
	}
	err := st.w.snapshot(core, piece, func(last bool) error {
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

// restore replays the stored segments into core, at wall clock now. On
// error core may hold part of the state: the caller starts clean.
func (st *store) restore(ctx context.Context, core *pairing.Core, now int64) error {
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
		st.needSnap = true
		return errors.New("it is in format 1 (one storage key per segment), written by a build older than this one by many versions, which this build does not read (it reads formats 2 and 3)")
	}
	if v != stateVersion && v != formatV2 {
		st.needSnap = true
		return fmt.Errorf("manifest has format version %d, this build reads %d and %d", v, formatV2, stateVersion)
	}
	if v == formatV2 {
		st.needSnap = true // the first save writes it again in this format
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
			if err := decodeSegmentOf(seg, core, st.w.resources, st.w.origins); err != nil {
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
	core.FinishRestore(now)
	return nil
}

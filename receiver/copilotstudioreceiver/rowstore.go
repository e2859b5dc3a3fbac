package copilotstudioreceiver

import (
	"sync"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
)

// rowStore keeps copies of a window's decoded rows until their records are
// built: their cells packed into large shared chunks, their layouts in
// fixed-size blocks, neither holding pointers per row nor copied as the
// window grows. Chunks and blocks are released as soon as their rows are
// built, for the next window to reuse.
type rowStore struct {
	chunks [][]byte
	blocks []*[rowBlockSize]storedRow
	n      int
	// freedChunks and freedBlocks count the leading ones already released.
	freedChunks, freedBlocks int
}

type storedRow struct {
	appinsights.RowCells
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

func (s *rowStore) add(row *appinsights.Row) {
	n := len(row.Arena)
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
	s.chunks[last] = append(s.chunks[last], row.Arena...)
	if s.n%rowBlockSize == 0 {
		s.blocks = append(s.blocks, newBlock())
	}
	*s.at(s.n) = storedRow{RowCells: row.RowCells, chunk: int32(last), start: int32(start), end: int32(start + n)}
	s.n++
}

func (s *rowStore) at(i int) *storedRow { return &s.blocks[i/rowBlockSize][i%rowBlockSize] }

// get makes dst a view of row i.
func (s *rowStore) get(i int, dst *appinsights.Row) {
	r := s.at(i)
	dst.Arena = s.chunks[r.chunk][r.start:r.end]
	dst.RowCells = r.RowCells
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

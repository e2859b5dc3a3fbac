package pairing

// fifo is a queue kept in fixed-size blocks, so that a long queue neither
// copies itself when it grows nor holds a backing array larger than needed.
type fifo[T any] struct {
	blocks [][]T // the first holds the head, the last the tail
	head   int   // index in blocks[0]
	n      int
}

const fifoBlock = 4096

func (f *fifo[T]) push(v T) {
	if len(f.blocks) == 0 || len(f.blocks[len(f.blocks)-1]) == fifoBlock {
		f.blocks = append(f.blocks, make([]T, 0, fifoBlock))
	}
	last := &f.blocks[len(f.blocks)-1]
	*last = append(*last, v)
	f.n++
}

func (f *fifo[T]) peek() (T, bool) {
	if f.n == 0 {
		var zero T
		return zero, false
	}
	return f.blocks[0][f.head], true
}

func (f *fifo[T]) pop() {
	var zero T
	f.blocks[0][f.head] = zero
	f.head++
	f.n--
	if f.head == len(f.blocks[0]) {
		f.blocks[0] = nil
		f.blocks = f.blocks[1:]
		f.head = 0
	}
}

package harness

import "sync"

// KillMarks places records before or after SIGKILLs: at each kill it notes
// how far each partition of a topic had been written, so that a record's
// epoch (how many kills came before it was written) follows from its
// partition and offset. A repeat is legitimate only in a later epoch than
// its first copy: the exporter sends again, after a restart, what it had
// sent but not yet marked done. Safe for concurrent use.
type KillMarks struct {
	mu    sync.Mutex
	marks []map[int32]int64
}

// Mark notes the topic's high watermarks; call it right after a kill, once
// the process is gone. A record the dead process had in flight that lands
// just after the mark counts as after the kill, which only ever allows it.
func (m *KillMarks) Mark(k *Kafka, topic string) {
	marks := k.HighWatermarks(topic)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.marks = append(m.marks, marks)
}

// Epoch is how many marks came before the record at offset of partition.
func (m *KillMarks) Epoch(partition int32, offset int64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, marks := range m.marks {
		if offset >= marks[partition] {
			n++
		}
	}
	return n
}

// Kills is how many marks there are.
func (m *KillMarks) Kills() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.marks)
}

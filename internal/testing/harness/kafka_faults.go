package harness

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker faults for the fault-injection suite (internal/testing/faults).

// produceFaults holds, per broker, whether producers are refused and how
// many produce requests were. It lives beside Kafka rather than in it so
// the fault controls stay in this file.
var produceFaults sync.Map // *Kafka -> *produceFault

type produceFault struct {
	down    atomic.Bool
	refused atomic.Int64
}

func (k *Kafka) produceFault() *produceFault {
	f, loaded := produceFaults.LoadOrStore(k, new(produceFault))
	state := f.(*produceFault)
	if !loaded {
		k.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			k.cluster.KeepControl()
			if state.down.Load() {
				state.refused.Add(1)
				return nil, errors.New("harness: broker down"), true
			}
			return nil, nil, false
		})
	}
	return state
}

// SetProduceDown makes the broker unreachable for producers (every produce
// request gets its connection closed, as when the broker is down) while
// consumers and metadata requests carry on; false brings it back.
func (k *Kafka) SetProduceDown(down bool) {
	k.produceFault().down.Store(down)
}

// ProduceRefused is how many produce requests the broker has refused while
// SetProduceDown(true) held: it grows while a producer keeps retrying.
func (k *Kafka) ProduceRefused() int {
	return int(k.produceFault().refused.Load())
}

// RecordCount is how many records topic holds, all partitions together.
func (k *Kafka) RecordCount(topic string) int {
	n := int64(0)
	for _, p := range k.cluster.PartitionInfos(topic) {
		n += p.HighWatermark - p.LogStartOffset
	}
	return int(n)
}

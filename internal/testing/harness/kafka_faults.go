package harness

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker faults for the fault-injection suite (internal/testing/faults).

// produceDown holds, per broker, whether producers are refused. It lives
// beside Kafka rather than in it so the fault controls stay in this file.
var produceDown sync.Map // *Kafka -> *atomic.Bool

// SetProduceDown makes the broker unreachable for producers (every produce
// request gets its connection closed, as when the broker is down) while
// consumers and metadata requests carry on; false brings it back.
func (k *Kafka) SetProduceDown(down bool) {
	flag, loaded := produceDown.LoadOrStore(k, new(atomic.Bool))
	state := flag.(*atomic.Bool)
	if !loaded {
		k.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			k.cluster.KeepControl()
			if state.Load() {
				return nil, errors.New("harness: broker down"), true
			}
			return nil, nil, false
		})
	}
	state.Store(down)
}

// RecordCount is how many records topic holds, all partitions together.
func (k *Kafka) RecordCount(topic string) int {
	n := int64(0)
	for _, p := range k.cluster.PartitionInfos(topic) {
		n += p.HighWatermark - p.LogStartOffset
	}
	return int(n)
}

package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTopic is where collector-config.yaml sends turns unless KAFKA_TOPIC says otherwise.
const DefaultTopic = "akto.api.logs"

// Kafka is an in-process kfake broker on a loopback port.
type Kafka struct {
	cluster *kfake.Cluster
	// Brokers are the seed addresses, host:port.
	Brokers []string
}

// StartKafka starts a one-broker kfake cluster with topic created with the
// given number of partitions.
func StartKafka(topic string, partitions int32) (*Kafka, error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		return nil, fmt.Errorf("harness: kfake: %w", err)
	}
	return &Kafka{cluster: cluster, Brokers: cluster.ListenAddrs()}, nil
}

// Close stops the broker.
func (k *Kafka) Close() { k.cluster.Close() }

// Env points collector-config.yaml's Kafka exporter at this broker and topic.
func (k *Kafka) Env(topic string) map[string]string {
	return map[string]string{"KAFKA_BROKERS": strings.Join(k.Brokers, ","), "KAFKA_TOPIC": topic}
}

// HighWatermarks is the next offset of each partition of topic: what a
// benchmark polls to see records arrive without spending CPU consuming them.
func (k *Kafka) HighWatermarks(topic string) map[int32]int64 {
	marks := map[int32]int64{}
	for _, p := range k.cluster.PartitionInfos(topic) {
		marks[p.Partition] = p.HighWatermark
	}
	return marks
}

// Consume reads topic from its first record; see Consumer.
func (k *Kafka) Consume(topic string, onRecord func(*kgo.Record)) (*Consumer, error) {
	return NewConsumer(k.Brokers, topic, true, onRecord)
}

// Consumer collects the values of a topic's records as they arrive. It is
// safe for concurrent use.
type Consumer struct {
	client *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	values  [][]byte
	err     error
	changed chan struct{} // closed and replaced on every change
}

// NewConsumer reads topic from brokers, from the start or only what arrives
// from now on, calling onRecord (if not nil) for each record in order.
func NewConsumer(brokers []string, topic string, fromStart bool, onRecord func(*kgo.Record)) (*Consumer, error) {
	offset := kgo.NewOffset().AtEnd()
	if fromStart {
		offset = kgo.NewOffset().AtStart()
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(offset))
	if err != nil {
		return nil, fmt.Errorf("harness: kafka consumer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Consumer{client: client, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{})}
	go c.run(ctx, onRecord)
	return c, nil
}

func (c *Consumer) run(ctx context.Context, onRecord func(*kgo.Record)) {
	defer close(c.done)
	for {
		fetches := c.client.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		var errs []error
		fetches.EachError(func(topic string, partition int32, err error) {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", topic, partition, err))
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if onRecord != nil {
				onRecord(r)
			}
			c.mu.Lock()
			c.values = append(c.values, r.Value)
			c.mu.Unlock()
		})
		c.mu.Lock()
		if len(errs) > 0 {
			c.err = errors.Join(errs...)
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
}

// Values are the record values read so far, in arrival order.
func (c *Consumer) Values() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.values...)
}

// WaitUntil blocks until cond holds for the values read so far, or ctx ends.
func (c *Consumer) WaitUntil(ctx context.Context, cond func(values [][]byte) bool) error {
	for {
		c.mu.Lock()
		values, changed, fetchErr := append([][]byte(nil), c.values...), c.changed, c.err
		c.mu.Unlock()
		if cond(values) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if fetchErr != nil {
				return fmt.Errorf("%w (last fetch error: %v)", ctx.Err(), fetchErr)
			}
			return ctx.Err()
		}
	}
}

// Close stops consuming.
func (c *Consumer) Close() {
	c.cancel()
	<-c.done
	c.client.Close()
}

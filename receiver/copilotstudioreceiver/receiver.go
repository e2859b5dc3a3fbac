package copilotstudioreceiver

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

type logsReceiver struct {
	cfg    *Config
	set    receiver.Settings
	next   consumer.Logs
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLogsReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*logsReceiver, error) {
	return &logsReceiver{cfg: cfg, set: set, next: next}, nil
}

func (r *logsReceiver) Start(ctx context.Context, _ component.Host) error {
	_, r.cancel = context.WithCancel(context.Background())
	return nil
}

func (r *logsReceiver) Shutdown(context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	return nil
}

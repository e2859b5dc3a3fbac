package activitypairprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
)

type pairProcessor struct {
	cfg   *Config
	next  consumer.Logs
	clock clock
}

func newProcessor(_ processor.Settings, cfg *Config, next consumer.Logs, c clock) (*pairProcessor, error) {
	return &pairProcessor{cfg: cfg, next: next, clock: c}, nil
}

func (p *pairProcessor) Start(context.Context, component.Host) error { return nil }

func (p *pairProcessor) Shutdown(context.Context) error { return nil }

func (p *pairProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (p *pairProcessor) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	return p.next.ConsumeLogs(ctx, ld)
}

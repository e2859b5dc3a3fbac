package activitypairprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadata"
)

// NewFactory returns the activitypair processor's factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createLogs(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	return newProcessor(set, cfg.(*Config), next, clock.System)
}

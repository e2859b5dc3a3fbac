package copilotstudiotranscriptsreceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiotranscriptsreceiver/internal/metadata"
)

// NewFactory returns the factory of the copilotstudio_transcripts receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogsReceiver, metadata.LogsStability),
	)
}

func createLogsReceiver(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newLogsReceiver(cfg.(*Config), set, next)
}

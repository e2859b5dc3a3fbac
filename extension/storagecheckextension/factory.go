package storagecheckextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/copilotwatch/otelcol-copilotstudio/extension/storagecheckextension/internal/metadata"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
)

// NewFactory returns the storage_check extension's factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return &storageCheck{cfg: cfg.(*Config), logger: set.Logger, clock: clock.System}, nil
}

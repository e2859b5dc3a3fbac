package harness

import (
	"context"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
)

// StorageID is the storage extension's ID, as collector-config.yaml names it.
var StorageID = component.MustNewID("file_storage")

// StorageHost is a component.Host offering one storage extension under
// StorageID. Tests may wrap Extension (to inject failures) before use.
type StorageHost struct {
	component.Host
	Extension component.Component
}

// GetExtensions offers the storage extension.
func (h *StorageHost) GetExtensions() map[component.ID]component.Component {
	return map[component.ID]component.Component{StorageID: h.Extension}
}

// StartFileStorage starts a real file_storage extension keeping its files in
// dir (reuse dir to survive a "restart"), shut down when tb ends. Options
// change its configuration, e.g. WithFsync.
func StartFileStorage(tb testing.TB, dir string, options ...func(*filestorage.Config)) *StorageHost {
	tb.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory, cfg.Compaction.Directory = dir, dir
	for _, option := range options {
		option(cfg)
	}
	set := extension.Settings{ID: StorageID, TelemetrySettings: componenttest.NewNopTelemetrySettings(), BuildInfo: component.NewDefaultBuildInfo()}
	ext, err := f.Create(context.Background(), set, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := ext.Shutdown(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return &StorageHost{Host: componenttest.NewNopHost(), Extension: ext}
}

// WithFsync syncs every write to disk, as collector-config.yaml configures
// file_storage.
func WithFsync(cfg *filestorage.Config) { cfg.FSync = true }

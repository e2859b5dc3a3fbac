// Package storageclient finds the storage extension a component's `storage`
// key names and opens the component's client of it: the one place that
// lookup and its configuration errors are written.
package storageclient

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// Get opens self's client of the storage extension storageID. The errors
// name the `storage` key and say how to fix it.
func Get(ctx context.Context, host component.Host, storageID component.ID, kind component.Kind, self component.ID) (storage.Client, error) {
	ext, ok := host.GetExtensions()[storageID]
	if !ok {
		return nil, fmt.Errorf("storage: extension %q is not configured: add it under extensions and to service::extensions, or remove the storage key", storageID)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("storage: extension %q is not a storage extension: name a file_storage extension", storageID)
	}
	client, err := se.GetClient(ctx, kind, self, "")
	if err != nil {
		return nil, fmt.Errorf("storage: opening a client of extension %q: %w", storageID, err)
	}
	return client, nil
}

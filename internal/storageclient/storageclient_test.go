package storageclient

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

type host struct {
	exts map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

type plainExtension struct {
	component.StartFunc
	component.ShutdownFunc
}

type fakeStorage struct{ plainExtension }

func (fakeStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	return storage.NewNopClient(), nil
}

func TestGet(t *testing.T) {
	ctx := context.Background()
	id := component.MustNewID("file_storage")
	self := component.MustNewID("copilotstudio")

	_, err := Get(ctx, componenttest.NewNopHost(), id, component.KindReceiver, self)
	assert.ErrorContains(t, err, `extension "file_storage" is not configured`)

	_, err = Get(ctx, host{map[component.ID]component.Component{id: plainExtension{}}}, id, component.KindReceiver, self)
	assert.ErrorContains(t, err, "is not a storage extension")

	c, err := Get(ctx, host{map[component.ID]component.Component{id: fakeStorage{}}}, id, component.KindReceiver, self)
	require.NoError(t, err)
	assert.NotNil(t, c)
}

package storagecheckextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, cfg.Validate())
	assert.Equal(t, OnCorruptStop, cfg.OnCorrupt)
	assert.Equal(t, time.Minute, cfg.Timeout)
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, cm.Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
	assert.Equal(t, &Config{Directory: "/var/lib/otelcol-copilotstudio", OnCorrupt: OnCorruptMoveAside, Timeout: 5 * time.Minute}, cfg)
}

func TestValidateNamesEveryProblem(t *testing.T) {
	cfg := &Config{Directory: " ", OnCorrupt: "delete", Timeout: 0}
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{"directory is empty", `on_corrupt "delete" is unknown`, `"stop"`, `"move_aside"`, "timeout 0s must be positive"} {
		assert.Contains(t, err.Error(), want)
	}
}

package activitypairprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	storage := component.MustNewID("file_storage")
	for _, tt := range []struct {
		id   component.ID
		want *Config
	}{
		{component.NewID(metadata.Type), createDefaultConfig().(*Config)},
		{component.NewIDWithName(metadata.Type, "custom"), &Config{
			Format: formatOTLP, ReplyTimeout: 20 * time.Minute, ReorderWindow: 0, MaxOpenTurns: 1000, MaxBufferedBytes: 64 << 20,
			EmittedIDsTTL: 2 * time.Hour, StorageID: &storage, OnUnreadableState: unreadableDiscard, AktoAccountID: "42", AktoVxlanID: "7",
			AktoHost: "akto.contoso.example", MaxTracesBytes: 1 << 20,
		}},
	} {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, cfg.(*Config).Validate())
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Format = "json"
	cfg.ReplyTimeout = 0
	cfg.ReorderWindow = -time.Second
	cfg.MaxOpenTurns = 0
	cfg.MaxBufferedBytes = 1000
	cfg.EmittedIDsTTL = 0
	cfg.OnUnreadableState = "ignore"
	cfg.AktoAccountID = " "
	cfg.AktoHost = "HR Agent.copilot.microsoft.com"
	cfg.MaxTracesBytes = 100
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		`format "json" is unknown`, "reply_timeout 0s is too short", "reorder_window -1s must not be negative",
		"max_open_turns 0 must be at least 1", "max_buffered_bytes 1000 is too small", "emitted_ids_ttl 0s must be positive", `on_unreadable_state "ignore" is unknown`, "akto_account_id is empty",
		`akto_host "HR Agent.copilot.microsoft.com" is not a host name`, "max_traces_bytes 100 is too small",
	} {
		assert.ErrorContains(t, err, want)
	}
	cfg.Format = formatOTLP
	cfg.ReplyTimeout, cfg.ReorderWindow, cfg.MaxOpenTurns, cfg.EmittedIDsTTL = time.Minute, 0, 1, time.Hour
	cfg.MaxBufferedBytes = 1 << 20
	cfg.OnUnreadableState = unreadableDiscard
	assert.NoError(t, cfg.Validate(), "Akto ids do not matter in the otlp format")
}

package aktoexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/copilotwatch/otelcol-copilotstudio/exporter/aktoexporter/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	load := func(id component.ID) *Config {
		cfg := createDefaultConfig()
		sub, err := cm.Sub(id.String())
		require.NoError(t, err)
		require.NoError(t, sub.Unmarshal(cfg))
		require.NoError(t, cfg.Validate())
		require.NoError(t, cfg.QueueBatchConfig.Get().Validate())
		return cfg
	}

	def := load(component.NewID(metadata.Type))
	want := createDefaultConfig()
	want.ClientConfig.Endpoint = "https://akto-ingest.example.com"
	assert.Equal(t, want, def)
	assert.Equal(t, 50, def.MaxRecordsPerRequest)
	assert.Equal(t, 10<<20, def.MaxRequestBytes)
	assert.Equal(t, 5<<20, def.MaxStringBytes)
	assert.Zero(t, def.BackOffConfig.MaxElapsedTime, "retries never give up by default")
	assert.True(t, def.QueueBatchConfig.Get().BlockOnOverflow)

	custom := load(component.NewIDWithName(metadata.Type, "custom"))
	assert.Equal(t, "the-token", string(custom.Token))
	assert.Equal(t, 10*time.Second, custom.ClientConfig.Timeout)
	assert.Equal(t, 20, custom.MaxRecordsPerRequest)
	assert.Equal(t, 1<<20, custom.MaxRequestBytes)
	assert.Equal(t, 65536, custom.MaxStringBytes)
	assert.Equal(t, 0, custom.RefusedRecordRetries)
	assert.Equal(t, "/etc/ssl/akto-ca.pem", custom.ClientConfig.TLS.CAFile)
	assert.Equal(t, "http://proxy.example.com:3128", custom.ClientConfig.ProxyURL)
	assert.Equal(t, 2*time.Second, custom.BackOffConfig.InitialInterval)
	q := custom.QueueBatchConfig.Get()
	assert.Equal(t, "file_storage", q.StorageID.String())
	assert.EqualValues(t, 500, q.QueueSize)

	e, err := newExporter(metadataSettings(t), custom)
	require.NoError(t, err)
	assert.Equal(t, "https://akto-ingest.example.com/base/api/ingestData", e.url)
}

func TestValidateNamesEveryProblem(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Token = "Bearer abc"
	cfg.MaxRecordsPerRequest = 0
	cfg.MaxRequestBytes = 11 << 20
	cfg.MaxStringBytes = 0
	cfg.RefusedRecordRetries = -1
	cfg.ClientConfig.Timeout = -time.Second
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"endpoint is empty", "AKTO_INGESTION_URL", `token starts with "Bearer "`, "max_records_per_request 0 must be at least 1",
		"max_request_bytes 11534336 must be between", "max_string_bytes 0 must be between", "refused_record_retries -1 must not be negative",
		"timeout -1s must not be negative",
	} {
		assert.ErrorContains(t, err, want)
	}
	assert.NotContains(t, err.Error(), "abc", "the token never appears in an error")

	for endpoint, want := range map[string]string{
		"akto-ingest:8080":  "must be an http:// or https:// URL with a host",
		"ftp://akto-ingest": "must be an http:// or https:// URL with a host",
		"https://akto-ingest.example.com/api/ingestData": "ends in /api/ingestData",
		"https://akto-ingest.example.com/?x=1":           "has a query or fragment",
		"http://[::1":                                    "is not a URL",
	} {
		cfg := createDefaultConfig()
		cfg.ClientConfig.Endpoint = endpoint
		assert.ErrorContains(t, cfg.Validate(), want, endpoint)
	}
	cfg = createDefaultConfig()
	cfg.ClientConfig.Endpoint = "http://127.0.0.1:8080"
	assert.NoError(t, cfg.Validate())
}

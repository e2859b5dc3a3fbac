package copilotstudiowebhookreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
)

func loadShippedOverlay(t *testing.T) *Config {
	t.Helper()
	root, err := harness.RepoRoot()
	require.NoError(t, err)
	conf, err := harness.LoadCollectorConfig(harness.CollectorConfigPath(), filepath.Join(root, "collector-config.webhook.yaml"))
	require.NoError(t, err)
	assert.Equal(t, []any{"copilotstudio", "copilotstudiowebhook"}, conf.Get("service::pipelines::logs::receivers"))
	sub, err := conf.Sub("receivers::copilotstudiowebhook")
	require.NoError(t, err)
	cfg := createDefaultConfig()
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

// TestShippedOverlay reads collector-config.webhook.yaml over
// collector-config.yaml as the collector does, with the environment an
// installation sets.
func TestShippedOverlay(t *testing.T) {
	t.Setenv("WEBHOOK_TENANT_IDS", testTenant+","+testOtherTenant)
	t.Setenv("WEBHOOK_AUDIENCES", testAudience+","+testAppID)
	t.Setenv("WEBHOOK_APP_IDS", testAppID)
	t.Setenv("WEBHOOK_TLS_CERT_FILE", "/etc/otelcol/tls/tls.crt")
	t.Setenv("WEBHOOK_TLS_KEY_FILE", "/etc/otelcol/tls/tls.key")
	t.Setenv("WEBHOOK_BASE_PATH", "/api/agentSecurity")
	cfg := loadShippedOverlay(t)
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "0.0.0.0:8443", cfg.ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, "/api/agentSecurity", cfg.BasePath)
	assert.Equal(t, defaultAnswerDeadline, cfg.AnswerDeadline)
	assert.Equal(t, []string{testTenant, testOtherTenant}, cfg.EntraID.TenantIDs)
	assert.Equal(t, []string{testAudience, testAppID}, cfg.EntraID.Audiences)
	assert.Equal(t, []string{testAppID}, cfg.EntraID.AppIDs)
	assert.Equal(t, defaultAuthorityHost, cfg.EntraID.authorityHost())
	assert.Equal(t, time.Hour, cfg.ServerConfig.TLS.Get().ReloadInterval)
}

func TestShippedOverlayNamesWhatIsMissing(t *testing.T) {
	for _, v := range []string{"WEBHOOK_TENANT_IDS", "WEBHOOK_AUDIENCES", "WEBHOOK_APP_IDS", "WEBHOOK_TLS_CERT_FILE", "WEBHOOK_TLS_KEY_FILE"} {
		t.Setenv(v, "")
	}
	err := confmap.Validate(loadShippedOverlay(t))
	require.Error(t, err)
	for _, want := range []string{"entra_id.tenant_ids is empty", "entra_id.audiences is empty", "entra_id.app_ids is empty", "certificate and key"} {
		assert.Contains(t, err.Error(), want)
	}
}

package copilotstudiowebhookreceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap/confmaptest"
)

func validConfig() *Config {
	c := createDefaultConfig()
	c.EntraID.TenantIDs = []string{testTenant}
	c.EntraID.Audiences = []string{testAudience}
	c.EntraID.AppIDs = []string{testAppID}
	return c
}

func TestDefaultsNeedOnlyTheAppRegistration(t *testing.T) {
	require.NoError(t, validConfig().Validate())
	err := createDefaultConfig().Validate()
	require.Error(t, err)
	for _, key := range []string{"entra_id.tenant_ids", "entra_id.audiences", "entra_id.app_ids"} {
		assert.Contains(t, err.Error(), key)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig()
	c.ServerConfig.NetAddr.Endpoint = ""
	c.BasePath = "api/agentSecurity"
	c.AnswerDeadline = 2 * time.Second
	c.MaxPendingRecords = 0
	c.EntraID.TenantIDs = []string{"contoso.onmicrosoft.com"}
	c.EntraID.Audiences = []string{" "}
	c.EntraID.AppIDs = []string{"copilot"}
	c.EntraID.AuthorityHost = "http://login.example"
	c.EntraID.ClockSkew = time.Hour
	c.EntraID.KeysRefreshInterval = time.Second
	c.EntraID.UnknownKeyCooldown = time.Second
	err := c.Validate()
	require.Error(t, err)
	for _, key := range []string{"endpoint", "base_path", "answer_deadline", "max_pending_records", "entra_id.tenant_ids[0]",
		"entra_id.audiences[0]", "entra_id.app_ids[0]", "entra_id.authority_host", "entra_id.clock_skew",
		"entra_id.keys_refresh_interval", "entra_id.unknown_key_cooldown"} {
		assert.Contains(t, err.Error(), key)
	}
	assert.Len(t, strings.Split(err.Error(), "\n"), 11)
}

func TestPaths(t *testing.T) {
	for base, want := range map[string]string{"": "/validate", "/": "/validate", "/api/agentSecurity": "/api/agentSecurity/validate", "/api/agentSecurity/": "/api/agentSecurity/validate"} {
		c := validConfig()
		c.BasePath = base
		v, a := c.paths()
		assert.Equal(t, want, v)
		assert.Equal(t, strings.TrimSuffix(want, "validate")+"analyze-tool-execution", a)
	}
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig()
	sub, err := cm.Sub("copilotstudiowebhook")
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	require.NoError(t, cfg.Validate())
	assert.Equal(t, "0.0.0.0:8443", cfg.ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, "/api/agentSecurity", cfg.BasePath)
	assert.Equal(t, 250*time.Millisecond, cfg.AnswerDeadline)
	// Lists from one comma-separated environment variable work too.
	assert.Equal(t, []string{testTenant, testOtherTenant}, cfg.EntraID.TenantIDs)
	assert.Equal(t, []string{testAudience, testAppID}, cfg.EntraID.Audiences)
	assert.Equal(t, int64(defaultMaxRequestBodySize), cfg.ServerConfig.MaxRequestBodySize)
	assert.Equal(t, "/etc/otelcol/tls.crt", cfg.ServerConfig.TLS.Get().CertFile)
}

package copilotstudiowebhookreceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

func TestPlainHTTPWarnsOffLoopbackOnly(t *testing.T) {
	const warning = "serving plain HTTP on a non-loopback endpoint"
	loopback := newFixture(t, new(consumertest.LogsSink), fixtureOptions{})
	assert.Empty(t, loopback.logged(warning), "warned for plain HTTP on loopback")

	everywhere := newFixture(t, new(consumertest.LogsSink), fixtureOptions{configure: func(c *Config) {
		c.ServerConfig.NetAddr.Endpoint = "0.0.0.0:0"
	}})
	require.Len(t, everywhere.logged(warning), 1, "no warning for plain HTTP on every interface")
	assert.Equal(t, "0.0.0.0:0", everywhere.logged(warning)[0].ContextMap()["endpoint"])
}

func TestEntraInsecureSkipVerifyWarns(t *testing.T) {
	f := newFixture(t, new(consumertest.LogsSink), fixtureOptions{configure: func(c *Config) {
		c.EntraID.TLS.InsecureSkipVerify = true
	}})
	assert.Len(t, f.logged("entra_id.tls.insecure_skip_verify is true"), 1)
}

func TestReadTimeoutMustBePositive(t *testing.T) {
	c := validConfig()
	c.ServerConfig.ReadTimeout = 0
	err := c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read_timeout 0s must be positive")
}

func TestEntraCAFileAddsToTheSystemRoots(t *testing.T) {
	assert.True(t, createDefaultConfig().EntraID.TLS.IncludeSystemCACertsPool)
	c := loadShippedOverlay(t)
	assert.True(t, c.EntraID.TLS.IncludeSystemCACertsPool, "the shipped overlay names ca_file and keeps the system roots")
}

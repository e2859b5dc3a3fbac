package copilotstudiowebhookreceiver

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/localtls"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

// TestHTTPS serves the webhook over TLS, as Copilot Studio requires, with
// confighttp's own TLS settings.
func TestHTTPS(t *testing.T) {
	b, err := localtls.New()
	require.NoError(t, err)
	key, err := x509.MarshalPKCS8PrivateKey(b.ServerCertificate.PrivateKey)
	require.NoError(t, err)
	tlsCfg := configtls.NewDefaultServerConfig()
	tlsCfg.CertPem = configopaque.String(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.ServerCertificate.Certificate[0]}))
	tlsCfg.KeyPem = configopaque.String(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}))

	sink := new(consumertest.LogsSink)
	f := newFixture(t, sink, fixtureOptions{configure: func(c *Config) { c.ServerConfig.TLS = configoptional.Some(tlsCfg) }})
	c := *f.client
	c.BaseURL = strings.Replace(c.BaseURL, "http://", "https://", 1)
	c.HTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: b.ClientTLSConfig()}}
	v, err := c.Validate(context.Background())
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, v.Status)
	a, err := c.Analyze(context.Background(), webhookclient.Example())
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, a.Status)
	assert.Len(t, sink.AllLogs(), 1)

	// Plain HTTP is not served.
	plain, err := f.client.Analyze(context.Background(), webhookclient.Example())
	assert.True(t, err != nil || plain.Status != http.StatusOK, "answered over plain HTTP")
	assert.Len(t, sink.AllLogs(), 1)
}

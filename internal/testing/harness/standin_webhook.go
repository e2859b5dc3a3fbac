package harness

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeentra"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

// The app registration Copilot Studio federates into, as the webhook
// stand-ins use it, and the base path of its Endpoint link. Not secrets.
const (
	StandInWebhookAppID    = "00000000-0000-4000-8000-0000000a9e17"
	StandInWebhookBasePath = "/api/agentSecurity"
)

// WebhookSetUp is what collector-config.webhook.yaml needs to serve
// Copilot Studio's threat detection calls on loopback, and a client that
// calls it the way Copilot Studio does: HTTPS with a certificate of the
// Entra stand-in's CA (the collector's AZURE_CA_FILE), tokens signed by the
// Entra stand-in's published key for the stand-in tenant, this app and the
// base URL as audience.
type WebhookSetUp struct {
	// BaseURL is the Endpoint link: https://127.0.0.1:<port>/api/agentSecurity.
	BaseURL string
	// Env is the overlay's variables (on top of Azure.Env()).
	Env map[string]string
	// Client calls BaseURL with a valid token.
	Client *webhookclient.Client
}

// NewWebhookSetUp picks a loopback port, writes the server certificate
// and key the collector presents into dir, and makes the client. entra is
// the stand-in Azure.Entra: its tenant is the one tokens are checked for.
func NewWebhookSetUp(dir string, entra *fakeentra.Server) (*WebhookSetUp, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	bundle := entra.Bundle()
	certFile, keyFile := filepath.Join(dir, "webhook-cert.pem"), filepath.Join(dir, "webhook-key.pem")
	var chain []byte
	for _, der := range bundle.ServerCertificate.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(bundle.ServerCertificate.PrivateKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		return nil, err
	}
	endpoint := "127.0.0.1:" + strconv.Itoa(port)
	base := "https://" + endpoint + StandInWebhookBasePath
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = bundle.ClientTLSConfig()
	transport.MaxIdleConnsPerHost = 256
	return &WebhookSetUp{
		BaseURL: base,
		Env: map[string]string{
			"WEBHOOK_ENDPOINT":      endpoint,
			"WEBHOOK_BASE_PATH":     StandInWebhookBasePath,
			"WEBHOOK_TLS_CERT_FILE": certFile,
			"WEBHOOK_TLS_KEY_FILE":  keyFile,
			"WEBHOOK_TENANT_IDS":    StandInTenantID,
			"WEBHOOK_AUDIENCES":     base,
			"WEBHOOK_APP_IDS":       StandInWebhookAppID,
		},
		Client: &webhookclient.Client{
			BaseURL: base,
			HTTP:    &http.Client{Transport: transport, Timeout: 30 * time.Second},
			Token:   reusedToken(entra, fakeentra.Claims{TenantID: StandInTenantID, Audience: base, AppID: StandInWebhookAppID}),
		},
	}, nil
}

// reusedToken mints a token and sends it until ten minutes before it
// expires, as a client holding an hour's token does: minting (an RSA
// signature) per call would cost the calling process more than the call.
func reusedToken(entra *fakeentra.Server, claims fakeentra.Claims) webhookclient.TokenSource {
	var (
		mu      sync.Mutex
		token   string
		renewAt time.Time
	)
	return func(context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if token != "" && time.Now().Before(renewAt) {
			return token, nil
		}
		t, err := entra.Mint(claims) // valid for an hour
		if err != nil {
			return "", err
		}
		token, renewAt = t, time.Now().Add(50*time.Minute)
		return token, nil
	}
}

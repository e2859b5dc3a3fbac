package harness

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeentra"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

// The app registration Copilot Studio federates into, as the webhook
// receiver is configured for it in tests. Not secrets.
const (
	WebhookAppID    = "00000000-0000-4000-8000-0000000a9b00"
	WebhookAudience = "https://hooks.contoso.example/api/agentSecurity"
	WebhookBasePath = "/api/agentSecurity"
)

// WebhookOverlayPath is collector-config.webhook.yaml, which adds the
// threat-detection webhook receiver to collector-config.yaml's pipeline.
func WebhookOverlayPath() string {
	root, err := RepoRoot()
	if err != nil {
		return "collector-config.webhook.yaml"
	}
	return filepath.Join(root, "collector-config.webhook.yaml")
}

// Webhook is what the webhook receiver of collector-config.webhook.yaml
// needs to serve on loopback: a port, the Azure stand-ins' certificate as
// its TLS certificate, and Entra ID settings that accept the tokens the
// Entra ID stand-in signs for Copilot Studio's app registration.
type Webhook struct {
	Endpoint string // 127.0.0.1:<port>, the same across restarts
	CertFile string
	KeyFile  string
	entra    *fakeentra.Server
}

// NewWebhook picks a free port and writes the certificate and key into dir.
func (a *Azure) NewWebhook(dir string) (*Webhook, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cert := a.Entra.Bundle().ServerCertificate
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("harness: webhook key: %w", err)
	}
	w := &Webhook{Endpoint: "127.0.0.1:" + strconv.Itoa(port), CertFile: filepath.Join(dir, "webhook.crt"), KeyFile: filepath.Join(dir, "webhook.key"), entra: a.Entra}
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := os.WriteFile(w.CertFile, chain, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(w.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		return nil, err
	}
	return w, nil
}

// Env configures collector-config.webhook.yaml for this endpoint (with
// Azure.Env, which points entra_id at the Entra ID stand-in and its CA).
func (w *Webhook) Env() map[string]string {
	return map[string]string{
		"WEBHOOK_ENDPOINT":      w.Endpoint,
		"WEBHOOK_BASE_PATH":     WebhookBasePath,
		"WEBHOOK_TLS_CERT_FILE": w.CertFile,
		"WEBHOOK_TLS_KEY_FILE":  w.KeyFile,
		"WEBHOOK_TENANT_IDS":    StandInTenantID,
		"WEBHOOK_AUDIENCES":     WebhookAudience,
		"WEBHOOK_APP_IDS":       WebhookAppID,
	}
}

// Client calls the endpoint as Copilot Studio does: over HTTPS trusting the
// stand-ins' CA, with an RS256 token the Entra ID stand-in signed with its
// published key (v1 claims: the Application ID URI as audience, the app
// id), reused for every call as Copilot Studio reuses its token until it
// expires. Mint it before the collector starts: the receiver reads the
// signing keys at start. Connections are kept alive, up to workers at once.
func (w *Webhook) Client(workers int) (*webhookclient.Client, error) {
	token, err := w.entra.Mint(fakeentra.Claims{Audience: WebhookAudience, AppID: WebhookAppID, ExpiresAt: time.Now().Add(3 * time.Hour)})
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = w.entra.Bundle().ClientTLSConfig()
	transport.MaxIdleConnsPerHost = max(workers, 2)
	return &webhookclient.Client{
		BaseURL: "https://" + w.Endpoint + WebhookBasePath,
		// Well past the receiver's answer deadline: only a collector that
		// is gone leaves a call unanswered.
		HTTP:  &http.Client{Transport: transport, Timeout: 30 * time.Second},
		Token: func(context.Context) (string, error) { return token, nil },
	}, nil
}

package azureauth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/localtls"
)

func TestCheckServiceURL(t *testing.T) {
	for _, ok := range []string{
		"https://api.applicationinsights.io", "https://api.applicationinsights.us/",
		"http://127.0.0.1:8080", "http://127.9.9.9", "http://localhost:1", "http://LOCALHOST", "http://[::1]:443",
	} {
		if err := CheckServiceURL("endpoint", ok, "https://x"); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for raw, want := range map[string]string{
		"http://api.applicationinsights.io": "uses http",
		"http://10.0.0.5:8080":              "uses http",
		"http://localhost.evil.example":     "uses http",
		"http://0.0.0.0:80":                 "uses http",
		"ftp://example":                     "is not an https URL",
		"api.applicationinsights.io":        "is not an absolute URL",
		"":                                  "is not an absolute URL",
	} {
		err := CheckServiceURL("endpoint", raw, "https://api.applicationinsights.io")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "endpoint ") || !strings.Contains(err.Error(), "https://api.applicationinsights.io") {
			t.Errorf("%q: %v, want an error naming the key, %q and the fix", raw, err, want)
		}
	}
}

// recorder is a server that must never be reached: it records what
// reached it.
type recorder struct {
	mu     sync.Mutex
	bodies []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.bodies = append(rec.bodies, r.Method+" "+r.URL.Path+" "+string(b))
	rec.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (rec *recorder) requests() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.bodies...)
}

// A token endpoint that answers 307 must not get the client secret re-sent
// to where the redirect points: a 307 keeps the method and the body, and
// the body of a client-credentials request holds the secret.
func TestTokenRequestDoesNotFollowRedirects(t *testing.T) {
	bundle, err := localtls.New()
	if err != nil {
		t.Fatal(err)
	}
	evil := &recorder{}
	evilSrv := httptest.NewUnstartedServer(evil)
	evilSrv.TLS = bundle.ServerTLSConfig()
	evilSrv.StartTLS()
	defer evilSrv.Close()

	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	var authority *httptest.Server
	authority = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := authority.URL + "/" + tenant
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"issuer": base + "/v2.0", "authorization_endpoint": base + "/oauth2/v2.0/authorize",
				"token_endpoint": base + "/oauth2/v2.0/token", "jwks_uri": base + "/discovery/v2.0/keys",
				"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
			})
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
			w.Header().Set("Location", evilSrv.URL+"/steal")
			w.WriteHeader(http.StatusTemporaryRedirect)
		default:
			http.NotFound(w, r)
		}
	}))
	authority.TLS = bundle.ServerTLSConfig()
	authority.StartTLS()
	defer authority.Close()

	const secret = "Zx8Q~redirected-secret-value"
	cfg := &Config{Type: ClientSecret, TenantID: tenant, ClientID: "3b1f6a9e-1111-4222-8333-444455556666",
		ClientSecret: configopaque.String(secret), AuthorityHost: authority.URL + "/"}
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: bundle.ClientTLSConfig()}}
	cred, err := NewCredential(cfg, httpClient, policy.RetryOptions{MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://api.applicationinsights.io/.default"}})
	if err == nil {
		t.Fatal("a token came from a redirected token request")
	}
	if got := evil.requests(); len(got) != 0 {
		t.Fatalf("the redirect was followed: %q", got)
	}
	if httpClient.CheckRedirect != nil {
		t.Error("the caller's client was changed: RefuseRedirects must copy it")
	}
}

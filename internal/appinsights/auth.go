package appinsights

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
)

// authorizer adds credentials to a query request.
type authorizer interface {
	authorize(ctx context.Context, req *http.Request) error
}

type apiKeyAuthorizer struct{ key string }

func (a apiKeyAuthorizer) authorize(_ context.Context, req *http.Request) error {
	req.Header.Set("x-api-key", a.key)
	return nil
}

// tokenAuthorizer gets an Entra ID token (azidentity caches and renews it).
type tokenAuthorizer struct {
	cred  azcore.TokenCredential
	scope string
	auth  *azureauth.Config
}

func (a *tokenAuthorizer) authorize(ctx context.Context, req *http.Request) error {
	tok, err := a.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{a.scope}})
	if err != nil {
		return &AuthError{msg: a.auth.DescribeTokenFailure(a.scope, err.Error())}
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	return nil
}

// tokenScope is the query API's resource with /.default, e.g.
// https://api.applicationinsights.io/.default.
func tokenScope(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("endpoint %q is not a URL", endpoint)
	}
	return u.Scheme + "://" + u.Host + "/.default", nil
}

// newAuthorizer builds the configured credential for the query API.
func newAuthorizer(a *azureauth.Config, endpoint string, httpClient *http.Client, tokenRetry policy.RetryOptions) (authorizer, error) {
	if a.Type == azureauth.APIKey {
		return apiKeyAuthorizer{key: string(a.APIKey)}, nil
	}
	scope, err := tokenScope(endpoint)
	if err != nil {
		return nil, err
	}
	cred, err := azureauth.NewCredential(a, httpClient, tokenRetry)
	if err != nil {
		return nil, err
	}
	return &tokenAuthorizer{cred: cred, scope: scope, auth: a}, nil
}

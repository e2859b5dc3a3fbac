package copilotstudioreceiver

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// microsoftAuthorityHosts are the Entra ID hosts MSAL's instance discovery
// knows. For any other authority host (Azure Stack, a private or test
// endpoint) instance discovery would ask login.microsoftonline.com about a
// host it cannot vouch for, so it is turned off.
var microsoftAuthorityHosts = map[string]bool{
	"login.microsoftonline.com": true, "login.microsoft.com": true, "login.windows.net": true,
	"sts.windows.net": true, "login.microsoftonline.us": true, "login.usgovcloudapi.net": true,
	"login.chinacloudapi.cn": true, "login.partner.microsoftonline.cn": true, "login.microsoftonline.de": true,
}

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
	auth  *AuthConfig
}

func (a *tokenAuthorizer) authorize(ctx context.Context, req *http.Request) error {
	tok, err := a.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{a.scope}})
	if err != nil {
		return &authError{msg: describeTokenFailure(a.auth, a.scope, redact(err.Error(), a.auth))}
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	return nil
}

// authError is a credential problem: not retried until the next poll.
type authError struct{ msg string }

func (e *authError) Error() string { return e.msg }

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
// tokenRetry is azcore's retry policy for token requests; zero means its default.
func newAuthorizer(cfg *Config, httpClient *http.Client, tokenRetry policy.RetryOptions) (authorizer, error) {
	a := &cfg.Auth
	if a.Type == authAPIKey {
		return apiKeyAuthorizer{key: string(a.APIKey)}, nil
	}
	scope, err := tokenScope(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	cred, err := newCredential(a, httpClient, tokenRetry)
	if err != nil {
		return nil, err
	}
	return &tokenAuthorizer{cred: cred, scope: scope, auth: a}, nil
}

// newCredential builds an Entra ID credential. Token requests go through
// httpClient, so its TLS settings (ca_file) and proxy apply to them too.
func newCredential(a *AuthConfig, httpClient *http.Client, tokenRetry policy.RetryOptions) (azcore.TokenCredential, error) {
	opts := azcore.ClientOptions{Transport: httpClient, Retry: tokenRetry}
	disableDiscovery := false
	if a.AuthorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: a.AuthorityHost}
		u, _ := url.Parse(a.AuthorityHost)
		disableDiscovery = !microsoftAuthorityHosts[strings.ToLower(u.Hostname())]
	}

	var cred azcore.TokenCredential
	var err error
	switch a.Type {
	case authClientSecret:
		cred, err = azidentity.NewClientSecretCredential(a.TenantID, a.ClientID, string(a.ClientSecret),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: disableDiscovery})
	case authClientCertificate:
		var data []byte
		if data, err = os.ReadFile(a.CertificatePath); err != nil {
			return nil, fmt.Errorf("auth.certificate_path: %w", err)
		}
		certs, key, perr := azidentity.ParseCertificates(data, []byte(a.CertificatePassword))
		if perr != nil {
			return nil, fmt.Errorf("auth.certificate_path %s: %s (check the file holds a certificate and its private key, and auth.certificate_password)",
				a.CertificatePath, redact(perr.Error(), a))
		}
		cred, err = azidentity.NewClientCertificateCredential(a.TenantID, a.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: disableDiscovery})
	case authWorkloadIdentity:
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, TenantID: a.TenantID, ClientID: a.ClientID,
			TokenFilePath: a.FederatedTokenFile, DisableInstanceDiscovery: disableDiscovery,
		})
	case authManagedIdentity:
		mi := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if a.ClientID != "" {
			mi.ID = azidentity.ClientID(a.ClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(mi)
	case authDefault:
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: opts, TenantID: a.TenantID, DisableInstanceDiscovery: disableDiscovery,
		})
	default:
		return nil, fmt.Errorf("auth.type %q is not supported", a.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the %s credential: %s", a.Type, redact(err.Error(), a))
	}
	return cred, nil
}

// describeCredential names the credential for messages: type, tenant and
// client ids, authority. Never a secret.
func describeCredential(a *AuthConfig) string {
	var parts []string
	if a.TenantID != "" {
		parts = append(parts, "tenant_id "+a.TenantID)
	}
	if a.ClientID != "" {
		parts = append(parts, "client_id "+a.ClientID)
	}
	if a.AuthorityHost != "" {
		parts = append(parts, "authority_host "+a.AuthorityHost)
	}
	if len(parts) == 0 {
		return "auth.type " + a.Type
	}
	return "auth.type " + a.Type + " (" + strings.Join(parts, ", ") + ")"
}

func describeTokenFailure(a *AuthConfig, scope, cause string) string {
	var check string
	switch a.Type {
	case authClientSecret:
		check = "that tenant_id and client_id are the app registration's Directory (tenant) ID and Application (client) ID, and that client_secret is the secret's Value (not its Secret ID) and has not expired"
	case authClientCertificate:
		check = "that tenant_id and client_id are right and that the certificate in certificate_path is uploaded to the app registration and not expired"
	case authWorkloadIdentity:
		check = "the federated credential of the app registration (issuer, subject) and the token file (federated_token_file or AZURE_FEDERATED_TOKEN_FILE)"
	case authManagedIdentity:
		check = "that the host has a managed identity (and client_id names a user-assigned one, if set)"
	default:
		check = "the environment the default credential chain reads (AZURE_* variables, workload or managed identity, Azure CLI login)"
	}
	return fmt.Sprintf("getting an Entra ID token for %s with %s failed; check %s: %s", scope, describeCredential(a), check, cause)
}

// redact removes the configured secrets from text, in case a library ever echoes them.
func redact(text string, a *AuthConfig) string {
	for _, secret := range []string{string(a.ClientSecret), string(a.CertificatePassword), string(a.APIKey)} {
		if len(secret) >= 4 {
			text = strings.ReplaceAll(text, secret, "[REDACTED]")
		}
	}
	return text
}

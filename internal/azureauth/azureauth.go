// Package azureauth is the Microsoft Entra ID credential every component of
// this module configures the same way (the `auth` key): its configuration,
// its checks, the azidentity credential built from it, and messages about it
// that name the credential and never its secrets.
package azureauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"go.opentelemetry.io/collector/config/configopaque"
)

// Credential types accepted in auth.type.
const (
	ClientSecret      = "client_secret"
	ClientCertificate = "client_certificate"
	WorkloadIdentity  = "workload_identity"
	ManagedIdentity   = "managed_identity"
	Default           = "default"
	// APIKey is Application Insights' legacy x-api-key, retired by Microsoft
	// on 2026-03-31: not an Entra ID credential.
	APIKey = "api_key"
)

var types = []string{ClientSecret, ClientCertificate, WorkloadIdentity, ManagedIdentity, Default, APIKey}

// Config selects and configures the credential.
type Config struct {
	// Type is one of client_secret, client_certificate, workload_identity,
	// managed_identity, default, api_key.
	Type     string `mapstructure:"type"`
	TenantID string `mapstructure:"tenant_id"`
	ClientID string `mapstructure:"client_id"`

	ClientSecret configopaque.String `mapstructure:"client_secret"`

	CertificatePath     string              `mapstructure:"certificate_path"`
	CertificatePassword configopaque.String `mapstructure:"certificate_password"`

	// FederatedTokenFile is the service account token file for workload identity
	// (AZURE_FEDERATED_TOKEN_FILE when empty).
	FederatedTokenFile string `mapstructure:"federated_token_file"`

	// AuthorityHost is the Entra ID authority, e.g. https://login.microsoftonline.us/
	// for Azure Government. Empty means Azure public cloud.
	AuthorityHost string `mapstructure:"authority_host"`

	// APIKey is the legacy x-api-key credential.
	APIKey configopaque.String `mapstructure:"api_key"`

	_ struct{}
}

// Validate reports every problem at once; prefix is the key the config sits
// under ("auth", "dataverse.auth").
func (a *Config) Validate(prefix string) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	need := func(key, value, what string) {
		if strings.TrimSpace(value) == "" {
			add("%s.%s is required for %s.type %s: %s", prefix, key, prefix, a.Type, what)
		}
	}
	const tenantHelp = "the Directory (tenant) ID of the app registration"
	const clientHelp = "the Application (client) ID of the app registration"
	switch a.Type {
	case ClientSecret:
		need("tenant_id", a.TenantID, tenantHelp)
		need("client_id", a.ClientID, clientHelp)
		need("client_secret", string(a.ClientSecret), "a client secret value of the app registration (Certificates & secrets)")
	case ClientCertificate:
		need("tenant_id", a.TenantID, tenantHelp)
		need("client_id", a.ClientID, clientHelp)
		need("certificate_path", a.CertificatePath, "a PEM or PKCS#12 file holding the certificate and its private key")
	case WorkloadIdentity:
		// tenant, client and token file may come from AZURE_* environment variables set by the webhook.
	case ManagedIdentity, Default:
	case APIKey:
		need("api_key", string(a.APIKey), "the key from the resource's API Access page (API keys are retired; prefer client_secret)")
	case "":
		add("%s.type is required: one of %s (client_secret for an app registration)", prefix, strings.Join(types, ", "))
	default:
		add("%s.type %q is unknown: use one of %s", prefix, a.Type, strings.Join(types, ", "))
	}
	if a.AuthorityHost != "" {
		if u, err := url.Parse(a.AuthorityHost); err != nil || u.Scheme != "https" || u.Host == "" {
			add("%s.authority_host %q must be an https URL such as https://login.microsoftonline.us/", prefix, a.AuthorityHost)
		}
	}
	return errors.Join(errs...)
}

// microsoftAuthorityHosts are the Entra ID hosts MSAL's instance discovery
// knows. For any other authority host (Azure Stack, a private or test
// endpoint) instance discovery would ask login.microsoftonline.com about a
// host it cannot vouch for, so it is turned off.
var microsoftAuthorityHosts = map[string]bool{
	"login.microsoftonline.com": true, "login.microsoft.com": true, "login.windows.net": true,
	"sts.windows.net": true, "login.microsoftonline.us": true, "login.usgovcloudapi.net": true,
	"login.chinacloudapi.cn": true, "login.partner.microsoftonline.cn": true, "login.microsoftonline.de": true,
}

// NewCredential builds the Entra ID credential a configures. Token requests
// go through httpClient, so its TLS settings (ca_file) and proxy apply to
// them too; they never follow a redirect (a token request carries the
// client secret or assertion in its body). tokenRetry is azcore's retry
// policy for token requests; zero means its default.
func NewCredential(a *Config, httpClient *http.Client, tokenRetry policy.RetryOptions) (azcore.TokenCredential, error) {
	opts := azcore.ClientOptions{Transport: RefuseRedirects(httpClient), Retry: tokenRetry}
	disableDiscovery := false
	if a.AuthorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: a.AuthorityHost}
		u, _ := url.Parse(a.AuthorityHost)
		disableDiscovery = !microsoftAuthorityHosts[strings.ToLower(u.Hostname())]
	}

	var cred azcore.TokenCredential
	var err error
	switch a.Type {
	case ClientSecret:
		cred, err = azidentity.NewClientSecretCredential(a.TenantID, a.ClientID, string(a.ClientSecret),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: disableDiscovery})
	case ClientCertificate:
		var data []byte
		if data, err = os.ReadFile(a.CertificatePath); err != nil {
			return nil, fmt.Errorf("auth.certificate_path: %w", err)
		}
		certs, key, perr := azidentity.ParseCertificates(data, []byte(a.CertificatePassword))
		if perr != nil {
			return nil, fmt.Errorf("auth.certificate_path %s: %s (check the file holds a certificate and its private key, and auth.certificate_password)",
				a.CertificatePath, a.Redact(perr.Error()))
		}
		cred, err = azidentity.NewClientCertificateCredential(a.TenantID, a.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: disableDiscovery})
	case WorkloadIdentity:
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, TenantID: a.TenantID, ClientID: a.ClientID,
			TokenFilePath: a.FederatedTokenFile, DisableInstanceDiscovery: disableDiscovery,
		})
	case ManagedIdentity:
		mi := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if a.ClientID != "" {
			mi.ID = azidentity.ClientID(a.ClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(mi)
	case Default:
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: opts, TenantID: a.TenantID, DisableInstanceDiscovery: disableDiscovery,
		})
	default:
		return nil, fmt.Errorf("auth.type %q is not an Entra ID credential", a.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the %s credential: %s", a.Type, a.Redact(err.Error()))
	}
	return cred, nil
}

// Describe names the credential for messages: type, tenant and client ids,
// authority. Never a secret.
func (a *Config) Describe() string {
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

// DescribeTokenFailure says which token request failed, with which
// credential, and what to check for its type.
func (a *Config) DescribeTokenFailure(scope, cause string) string {
	var check string
	switch a.Type {
	case ClientSecret:
		check = "that tenant_id and client_id are the app registration's Directory (tenant) ID and Application (client) ID, and that client_secret is the secret's Value (not its Secret ID) and has not expired"
	case ClientCertificate:
		check = "that tenant_id and client_id are right and that the certificate in certificate_path is uploaded to the app registration and not expired"
	case WorkloadIdentity:
		check = "the federated credential of the app registration (issuer, subject) and the token file (federated_token_file or AZURE_FEDERATED_TOKEN_FILE)"
	case ManagedIdentity:
		check = "that the host has a managed identity (and client_id names a user-assigned one, if set)"
	default:
		check = "the environment the default credential chain reads (AZURE_* variables, workload or managed identity, Azure CLI login)"
	}
	return fmt.Sprintf("getting an Entra ID token for %s with %s failed; check %s: %s", scope, a.Describe(), check, a.Redact(cause))
}

// Redact removes the configured secrets from text, in case a library ever echoes them.
func (a *Config) Redact(text string) string {
	for _, secret := range []string{string(a.ClientSecret), string(a.CertificatePassword), string(a.APIKey)} {
		if len(secret) >= 4 {
			text = strings.ReplaceAll(text, secret, "[REDACTED]")
		}
	}
	return text
}

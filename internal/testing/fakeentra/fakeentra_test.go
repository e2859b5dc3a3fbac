package fakeentra

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

const (
	tenant = "11111111-1111-1111-1111-111111111111"
	client = "22222222-2222-2222-2222-222222222222"
	secret = "s3cret~value"
	scope  = "https://api.applicationinsights.io/.default"
)

func newCredential(t *testing.T, s *Server, clientSecret string) *azidentity.ClientSecretCredential {
	t.Helper()
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: s.Bundle().ClientTLSConfig()}}
	cred, err := azidentity.NewClientSecretCredential(tenant, client, clientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.URL()},
			Transport: httpClient,
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func start(t *testing.T) *Server {
	t.Helper()
	s, err := New(Options{TenantID: tenant, ClientID: client, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestClientSecretFlowIssuesTokenForScope(t *testing.T) {
	s := start(t)
	tok, err := newCredential(t, s, secret).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if !s.Valid(tok.Token) {
		t.Fatalf("token %q not recognised as issued", tok.Token)
	}
	if got, _ := s.Scope(tok.Token); got != scope {
		t.Fatalf("scope = %q, want %q", got, scope)
	}
	if s.Valid("someone-else's-token") {
		t.Fatal("foreign token accepted")
	}
}

func TestWrongSecretGivesAADSTSError(t *testing.T) {
	s := start(t)
	_, err := newCredential(t, s, "wrong").GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("want AADSTS7000215, got %v", err)
	}
}

func TestFailNextThenRecover(t *testing.T) {
	s := start(t)
	s.FailNext(1, UnknownTenant)
	cred := newCredential(t, s, secret)
	_, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
	if err == nil || !strings.Contains(err.Error(), "AADSTS90002") {
		t.Fatalf("want AADSTS90002, got %v", err)
	}
	if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}}); err != nil {
		t.Fatalf("after the injected failure: %v", err)
	}
	if n := s.TokenRequests(); n != 2 {
		t.Fatalf("token requests = %d, want 2", n)
	}
}

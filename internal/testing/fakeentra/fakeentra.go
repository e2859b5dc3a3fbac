// Package fakeentra is a local HTTPS stand-in for the Microsoft Entra ID
// (v2.0) token endpoint, good enough for azidentity's ClientSecretCredential
// (MSAL's confidential client) to run its real flow against it:
//
//   - GET  /{tenant}/v2.0/.well-known/openid-configuration: tenant metadata
//     (issuer, authorization_endpoint, token_endpoint), as MSAL's authority
//     validation needs it;
//   - GET  /common/discovery/instance: AAD instance discovery metadata;
//   - POST /{tenant}/oauth2/v2.0/token with grant_type=client_credentials:
//     checks tenant, client_id and client_secret (or, for workload identity,
//     a client_assertion equal to Options.FederatedToken) and issues an
//     opaque bearer token for the requested scope (an RS256-signed access
//     token with Options.SignedTokens);
//   - the v1 discovery document and the signing keys, and signed tokens with
//     chosen claims for a service that checks them (tokens.go).
//
// Failures use Entra's real error shape (HTTP 400/401 with error,
// error_description "AADSTSnnnn: ...", error_codes, trace_id, correlation_id).
//
// Pointing azidentity at it: set the credential's
// ClientOptions.Cloud.ActiveDirectoryAuthorityHost to Server.URL(), trust
// Server's CA (Bundle().CAPEM, or a file written with WriteCAFile) in the
// HTTP client given as ClientOptions.Transport, and set
// DisableInstanceDiscovery (MSAL would otherwise ask login.microsoftonline.com
// about a host it does not know).
package fakeentra

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/localtls"
)

// Options configure the one application registration the server knows.
type Options struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	// FederatedToken, when set, is accepted as a client assertion
	// (client_assertion_type jwt-bearer) in place of the secret: what
	// azidentity's WorkloadIdentityCredential sends from its token file.
	FederatedToken string
	// TokenLifetime is the expires_in of issued tokens; default 1h.
	TokenLifetime time.Duration
	// TLS is the CA + certificate to serve with; a fresh one when nil.
	TLS *localtls.Bundle
	// Tenants are further tenants the server knows (discovery, tokens), for
	// tests with users or agents in several organisations.
	Tenants []string
	// SignedTokens makes the token endpoint issue RS256-signed access tokens
	// (audience: the scope's resource; appid/azp: the client) instead of
	// opaque ones; AccessTokenVersion 2 gives v2.0 tokens, else v1.0.
	SignedTokens       bool
	AccessTokenVersion int
}

// Failure is an error the token endpoint can be told to answer with.
type Failure int

const (
	// InvalidSecret: 401 invalid_client, AADSTS7000215.
	InvalidSecret Failure = iota + 1
	// UnknownClient: 400 unauthorized_client, AADSTS700016.
	UnknownClient
	// UnknownTenant: 400 invalid_request, AADSTS90002.
	UnknownTenant
	// ServerError: 500 temporarily_unavailable, AADSTS50196-like transient failure.
	ServerError
)

// Server is a running stand-in. Safe for concurrent use.
type Server struct {
	opts Options
	srv  *httptest.Server

	mu            sync.Mutex
	tokens        map[string]string // access token -> scope
	tokenRequests int
	failures      []Failure

	signing           *SigningKey   // signs new tokens; made on first use (ensureKeyLocked)
	published         []*SigningKey // served on the keys endpoints
	keysRequests      int
	discoveryRequests int
	metadataFailures  int
}

// New starts a server on 127.0.0.1 with a random port. Close it when done.
func New(opts Options) (*Server, error) {
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.TLS == nil {
		b, err := localtls.New()
		if err != nil {
			return nil, err
		}
		opts.TLS = b
	}
	s := &Server{opts: opts, tokens: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakeentra: listen: %w", err)
	}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(s.serve)}}
	s.srv.TLS = opts.TLS.ServerTLSConfig()
	s.srv.StartTLS()
	return s, nil
}

// URL is the authority host, e.g. "https://127.0.0.1:41234/".
func (s *Server) URL() string { return s.srv.URL + "/" }

// Bundle is the CA and certificate the server presents.
func (s *Server) Bundle() *localtls.Bundle { return s.opts.TLS }

// WriteCAFile writes the server's CA certificate to path (for tls.ca_file).
func (s *Server) WriteCAFile(path string) error { return s.opts.TLS.WriteCAFile(path) }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// FailNext makes the next n token requests fail with f, whatever they carry.
func (s *Server) FailNext(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// Valid reports whether token was issued by this server (for any scope).
func (s *Server) Valid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.tokens[token]
	return ok
}

// Scope is the scope token was issued for.
func (s *Server) Scope(token string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	scope, ok := s.tokens[token]
	return scope, ok
}

// TokenRequests counts POSTs to the token endpoint, failed ones included.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	isGet := r.Method == http.MethodGet
	discovery := isGet && (len(parts) == 3 && parts[1] == ".well-known" || len(parts) == 4 && parts[1] == "v2.0" && parts[2] == ".well-known")
	keys := isGet && (len(parts) == 3 && parts[1] == "discovery" && parts[2] == "keys" || len(parts) == 4 && parts[1] == "discovery" && parts[2] == "v2.0" && parts[3] == "keys")
	if discovery || keys {
		s.mu.Lock()
		if keys {
			s.keysRequests++
		} else {
			s.discoveryRequests++
		}
		s.mu.Unlock()
		if s.metadataFailure() {
			writeAADError(w, http.StatusServiceUnavailable, "temporarily_unavailable", 50196, "The server is temporarily unavailable.")
			return
		}
	}
	switch {
	case isGet && len(parts) == 3 && parts[0] == "common" && parts[1] == "discovery" && parts[2] == "instance":
		s.instanceDiscovery(w)
	case isGet && len(parts) == 3 && parts[1] == ".well-known" && parts[2] == "openid-configuration":
		s.openIDConfigurationV1(w, parts[0])
	case isGet && len(parts) == 4 && parts[1] == "v2.0" && parts[2] == ".well-known" && parts[3] == "openid-configuration":
		s.openIDConfiguration(w, parts[0])
	case keys && len(parts) == 4:
		s.keys(w, s.IssuerV2(parts[0]))
	case keys:
		s.keys(w, "")
	case r.Method == http.MethodPost && len(parts) == 4 && parts[1] == "oauth2" && parts[2] == "v2.0" && parts[3] == "token":
		s.token(w, r, parts[0])
	default:
		writeAADError(w, http.StatusNotFound, "invalid_request", 900561, "The endpoint only accepts POST requests to /{tenant}/oauth2/v2.0/token.")
	}
}

func (s *Server) knownTenant(tenant string) bool {
	return tenant == s.opts.TenantID || tenant == "organizations" || tenant == "common" || slices.Contains(s.opts.Tenants, tenant)
}

func (s *Server) instanceDiscovery(w http.ResponseWriter) {
	host := strings.TrimPrefix(s.srv.URL, "https://")
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": s.srv.URL + "/" + s.opts.TenantID + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": host, "preferred_cache": host, "aliases": []string{host},
		}},
	})
}

func (s *Server) openIDConfiguration(w http.ResponseWriter, tenant string) {
	if !s.knownTenant(tenant) {
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	base := s.srv.URL + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                base + "/v2.0",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
	})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, tenant string) {
	s.mu.Lock()
	s.tokenRequests++
	var failure Failure
	if len(s.failures) > 0 {
		failure, s.failures = s.failures[0], s.failures[1:]
	}
	s.mu.Unlock()

	if err := r.ParseForm(); err != nil {
		writeAADError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	clientID := r.PostForm.Get("client_id")
	switch {
	case failure == InvalidSecret:
		writeInvalidSecret(w, clientID)
		return
	case failure == UnknownClient:
		writeUnknownClient(w, clientID, tenant)
		return
	case failure == UnknownTenant:
		writeAADError(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	case failure == ServerError:
		writeAADError(w, http.StatusInternalServerError, "temporarily_unavailable", 50196, "The server is temporarily unavailable.")
		return
	}

	if !s.knownTenant(tenant) {
		writeAADError(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	if grant := r.PostForm.Get("grant_type"); grant != "client_credentials" {
		writeAADError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant))
		return
	}
	if clientID != s.opts.ClientID {
		writeUnknownClient(w, clientID, tenant)
		return
	}
	if assertion := r.PostForm.Get("client_assertion"); assertion != "" {
		if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
			s.opts.FederatedToken == "" || assertion != s.opts.FederatedToken {
			writeAADError(w, http.StatusBadRequest, "invalid_client", 700213, fmt.Sprintf("No matching federated identity record found for presented assertion subject for app '%s'.", clientID))
			return
		}
	} else if r.PostForm.Get("client_secret") != s.opts.ClientSecret {
		writeInvalidSecret(w, clientID)
		return
	}
	scope := resourceScope(r.PostForm.Get("scope"))
	if !strings.HasSuffix(scope, "/.default") {
		writeAADError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope))
		return
	}

	token := "fakeentra." + randomHex(24)
	if s.opts.SignedTokens {
		var err error
		if token, err = s.accessToken(tenant, clientID, scope); err != nil {
			writeAADError(w, http.StatusInternalServerError, "temporarily_unavailable", 50196, "The server is temporarily unavailable.")
			return
		}
	}
	s.mu.Lock()
	s.tokens[token] = scope
	s.mu.Unlock()
	seconds := int(s.opts.TokenLifetime / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     seconds,
		"ext_expires_in": seconds,
		"access_token":   token,
	})
}

// resourceScope drops the OpenID scopes MSAL always adds (Entra ignores them
// for client credentials) and returns what is left.
func resourceScope(scopes string) string {
	var kept []string
	for _, sc := range strings.Fields(scopes) {
		switch sc {
		case "openid", "offline_access", "profile":
		default:
			kept = append(kept, sc)
		}
	}
	return strings.Join(kept, " ")
}

func writeInvalidSecret(w http.ResponseWriter, clientID string) {
	writeAADError(w, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID))
}

func writeUnknownClient(w http.ResponseWriter, clientID, tenant string) {
	writeAADError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenant))
}

// writeAADError writes Entra's error body: the AADSTS code leads the
// description, followed by trace and correlation ids and a timestamp.
func writeAADError(w http.ResponseWriter, status int, code string, aadsts int, message string) {
	traceID, correlationID := uuid(), uuid()
	now := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, message, traceID, correlationID, now),
		"error_codes":       []int{aadsts},
		"timestamp":         now,
		"trace_id":          traceID,
		"correlation_id":    correlationID,
		"error_uri":         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

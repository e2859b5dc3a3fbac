package fakeentra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as the SHA-1 thumbprint
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signed access tokens, as Entra ID issues them to an app: RS256, the key id
// in the header, v1.0 (issuer https://sts.windows.net/{tid}/, appid) or v2.0
// (issuer {authority}/{tid}/v2.0, azp) claims. The keys are published the way
// Entra publishes them:
//
//   - GET /{tenant}/.well-known/openid-configuration: v1 metadata, issuer
//     https://sts.windows.net/{tenant}/ (as Entra's, whatever the host),
//     jwks_uri /common/discovery/keys;
//   - GET /{tenant}/v2.0/.well-known/openid-configuration: v2 metadata,
//     jwks_uri /{tenant}/discovery/v2.0/keys;
//   - GET /common/discovery/keys, /{tenant}/discovery/keys,
//     /{tenant}/discovery/v2.0/keys: the published keys (kty, use, kid, x5t,
//     n, e, x5c; v2 adds issuer).
//
// Rotation works as in Entra: RotateKey publishes a new key and signs with it
// from then on while the old one stays published until UnpublishKey.

// SigningKey is an RSA key with the self-signed certificate Entra publishes
// with each key (x5c); its kid is the certificate's thumbprint, as Entra's is.
type SigningKey struct {
	KID  string
	key  *rsa.PrivateKey
	cert []byte
}

// NewSigningKey makes a 2048-bit key that is not published (PublishKey, or
// MintWith to sign with an unknown key).
func NewSigningKey() (*SigningKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "accounts.accesscontrol.windows.net"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(5, 0, 0),
	}, &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "accounts.accesscontrol.windows.net"}}, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(der) //nolint:gosec // x5t is defined as the SHA-1 thumbprint
	return &SigningKey{KID: base64.RawURLEncoding.EncodeToString(sum[:]), key: key, cert: der}, nil
}

// Public is the key's public half.
func (k *SigningKey) Public() *rsa.PublicKey { return &k.key.PublicKey }

// Claims describe one access token. Zero fields take Entra's usual values.
type Claims struct {
	// Version is 1 (the default: what an app registration issues unless its
	// manifest asks for v2) or 2.
	Version int
	// TenantID is tid; default: the server's tenant.
	TenantID string
	// Issuer overrides the version's issuer for TenantID.
	Issuer   string
	Audience string
	// AppID is the client application: appid in v1, azp in v2.
	AppID string
	// IssuedAt, NotBefore, ExpiresAt default to now-1m, now-1m, now+1h.
	IssuedAt, NotBefore, ExpiresAt time.Time
	// Extra claims are added last and override any of the above.
	Extra map[string]any
}

// MapClaims is the token payload c describes.
func (s *Server) MapClaims(c Claims) jwt.MapClaims {
	tid := c.TenantID
	if tid == "" {
		tid = s.opts.TenantID
	}
	now := time.Now()
	iat := orDefault(c.IssuedAt, now.Add(-time.Minute))
	nbf := orDefault(c.NotBefore, now.Add(-time.Minute))
	exp := orDefault(c.ExpiresAt, now.Add(time.Hour))
	m := jwt.MapClaims{
		"aud": c.Audience,
		"iat": iat.Unix(),
		"nbf": nbf.Unix(),
		"exp": exp.Unix(),
		"aio": "E2RgYJj5uP/pYfz/" + randomHex(8),
		"oid": uuid(),
		"rh":  "0.A" + randomHex(12) + ".",
		"sub": uuid(),
		"tid": tid,
		"uti": randomHex(11),
	}
	if c.Version == 2 {
		m["iss"] = s.IssuerV2(tid)
		m["azp"] = c.AppID
		m["azpacr"] = "2"
		m["ver"] = "2.0"
	} else {
		m["iss"] = IssuerV1(tid)
		m["appid"] = c.AppID
		m["appidacr"] = "2"
		m["idp"] = IssuerV1(tid)
		m["ver"] = "1.0"
	}
	if c.Issuer != "" {
		m["iss"] = c.Issuer
	}
	for k, v := range c.Extra {
		m[k] = v
	}
	return m
}

func orDefault(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

// IssuerV1 is Entra's v1.0 issuer of tenant: the same on every host.
func IssuerV1(tenant string) string { return "https://sts.windows.net/" + tenant + "/" }

// IssuerV2 is this server's v2.0 issuer of tenant.
func (s *Server) IssuerV2(tenant string) string { return s.srv.URL + "/" + tenant + "/v2.0" }

// Mint signs the token c describes with the current signing key.
func (s *Server) Mint(c Claims) (string, error) { return s.MintWith(s.SigningKey(), c) }

// MintWith signs the token c describes with k, published or not.
func (s *Server) MintWith(k *SigningKey, c Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, s.MapClaims(c))
	t.Header["kid"] = k.KID
	if c.Version != 2 {
		t.Header["x5t"] = k.KID
	}
	return t.SignedString(k.key)
}

// ensureKeyLocked makes and publishes the first signing key on first use:
// a 2048-bit key takes tens of milliseconds, and most users of the stand-in
// (opaque tokens) never need one.
func (s *Server) ensureKeyLocked() {
	if s.signing != nil {
		return
	}
	k, err := NewSigningKey()
	if err != nil {
		panic(fmt.Sprintf("fakeentra: signing key: %v", err)) // crypto/rand failed: nothing works then
	}
	s.signing = k
	s.published = append([]*SigningKey{k}, s.published...)
}

// SigningKey is the key new tokens are signed with.
func (s *Server) SigningKey() *SigningKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureKeyLocked()
	return s.signing
}

// PublishKey adds k to the published keys.
func (s *Server) PublishKey(k *SigningKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureKeyLocked()
	for _, p := range s.published {
		if p.KID == k.KID {
			return
		}
	}
	s.published = append(s.published, k)
}

// UnpublishKey removes the key with kid from the published keys.
func (s *Server) UnpublishKey(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureKeyLocked()
	kept := s.published[:0]
	for _, p := range s.published {
		if p.KID != kid {
			kept = append(kept, p)
		}
	}
	s.published = kept
}

// RotateKey publishes a new key and signs with it from now on; the previous
// key stays published.
func (s *Server) RotateKey() (*SigningKey, error) {
	k, err := NewSigningKey()
	if err != nil {
		return nil, err
	}
	s.PublishKey(k) // publishes the first key too, if there was none yet
	s.mu.Lock()
	s.signing = k
	s.mu.Unlock()
	return k, nil
}

// KeysRequests counts GETs of any keys endpoint.
func (s *Server) KeysRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keysRequests
}

// DiscoveryRequests counts GETs of either openid-configuration document.
func (s *Server) DiscoveryRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discoveryRequests
}

// FailDiscovery makes the next n discovery or keys requests answer 503.
func (s *Server) FailDiscovery(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metadataFailures += n
}

// metadataFailure takes one injected discovery/keys failure, if any is left.
func (s *Server) metadataFailure() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.metadataFailures > 0 {
		s.metadataFailures--
		return true
	}
	return false
}

func (s *Server) openIDConfigurationV1(w http.ResponseWriter, tenant string) {
	if !s.knownTenant(tenant) {
		writeAADError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	base := s.srv.URL + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                IssuerV1(tenant),
		"authorization_endpoint":                base + "/oauth2/authorize",
		"token_endpoint":                        base + "/oauth2/token",
		"jwks_uri":                              s.srv.URL + "/common/discovery/keys",
		"response_types_supported":              []string{"code", "id_token", "code id_token", "token id_token", "token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
	})
}

// keys writes the published keys; issuer is set on each for the v2 endpoint.
func (s *Server) keys(w http.ResponseWriter, issuer string) {
	s.mu.Lock()
	s.ensureKeyLocked()
	published := append([]*SigningKey(nil), s.published...)
	s.mu.Unlock()
	keys := make([]map[string]any, 0, len(published))
	for _, k := range published {
		jwk := map[string]any{
			"kty": "RSA",
			"use": "sig",
			"kid": k.KID,
			"x5t": k.KID,
			"n":   base64.RawURLEncoding.EncodeToString(k.key.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.key.E)).Bytes()),
			"x5c": []string{base64.StdEncoding.EncodeToString(k.cert)},
		}
		if issuer != "" {
			jwk["issuer"] = issuer
		}
		keys = append(keys, jwk)
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// accessToken issues the token of a client-credentials grant when
// Options.SignedTokens is set: the resource of the scope as audience, the
// client as appid/azp.
func (s *Server) accessToken(tenant, clientID, scope string) (string, error) {
	if tenant == "organizations" || tenant == "common" {
		tenant = s.opts.TenantID
	}
	resource := scope[:len(scope)-len("/.default")]
	return s.Mint(Claims{Version: s.opts.AccessTokenVersion, TenantID: tenant, Audience: resource, AppID: clientID})
}

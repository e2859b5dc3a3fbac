package fakeentra

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/golang-jwt/jwt/v5"
)

func getJSON(t *testing.T, s *Server, url string, v any) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: s.Bundle().ClientTLSConfig()}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

type discoveryDoc struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

type keySet struct {
	Keys []struct {
		KID    string   `json:"kid"`
		N      string   `json:"n"`
		E      string   `json:"e"`
		X5C    []string `json:"x5c"`
		Issuer string   `json:"issuer"`
	} `json:"keys"`
}

// publishedKeys reads the keys behind a discovery document, by kid.
func publishedKeys(t *testing.T, s *Server, doc discoveryDoc) map[string]*rsa.PublicKey {
	t.Helper()
	var ks keySet
	getJSON(t, s, doc.JWKSURI, &ks)
	out := map[string]*rsa.PublicKey{}
	for _, k := range ks.Keys {
		n, _ := base64.RawURLEncoding.DecodeString(k.N)
		e, _ := base64.RawURLEncoding.DecodeString(k.E)
		out[k.KID] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return out
}

func verify(t *testing.T, token string, keys map[string]*rsa.PublicKey) (jwt.MapClaims, error) {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		k, ok := keys[tok.Header["kid"].(string)]
		if !ok {
			return nil, errors.New("unknown kid")
		}
		return k, nil
	}, jwt.WithValidMethods([]string{"RS256"}))
	return claims, err
}

func TestDiscoveryV1AndV2PublishTheSigningKeys(t *testing.T) {
	s := start(t)
	var v1, v2 discoveryDoc
	getJSON(t, s, s.URL()+tenant+"/.well-known/openid-configuration", &v1)
	getJSON(t, s, s.URL()+tenant+"/v2.0/.well-known/openid-configuration", &v2)
	if v1.Issuer != "https://sts.windows.net/"+tenant+"/" {
		t.Fatalf("v1 issuer = %q", v1.Issuer)
	}
	if v2.Issuer != s.IssuerV2(tenant) {
		t.Fatalf("v2 issuer = %q, want %q", v2.Issuer, s.IssuerV2(tenant))
	}
	for version, doc := range map[int]discoveryDoc{1: v1, 2: v2} {
		token, err := s.Mint(Claims{Version: version, Audience: "https://hooks.example/api", AppID: client})
		if err != nil {
			t.Fatal(err)
		}
		claims, err := verify(t, token, publishedKeys(t, s, doc))
		if err != nil {
			t.Fatalf("v%d token does not verify against its discovery document's keys: %v", version, err)
		}
		if claims["iss"] != doc.Issuer || claims["tid"] != tenant || claims["aud"] != "https://hooks.example/api" {
			t.Fatalf("v%d claims = %v", version, claims)
		}
		appClaim := map[int]string{1: "appid", 2: "azp"}[version]
		if claims[appClaim] != client {
			t.Fatalf("v%d %s = %v", version, appClaim, claims[appClaim])
		}
	}
	if s.DiscoveryRequests() != 2 || s.KeysRequests() != 2 {
		t.Fatalf("discovery/keys requests = %d/%d, want 2/2", s.DiscoveryRequests(), s.KeysRequests())
	}
}

func TestRotateAndUnpublish(t *testing.T) {
	s := start(t)
	var v2 discoveryDoc
	getJSON(t, s, s.URL()+tenant+"/v2.0/.well-known/openid-configuration", &v2)
	old := s.SigningKey()
	rotated, err := s.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.Mint(Claims{Version: 2, Audience: "a", AppID: client})
	if err != nil {
		t.Fatal(err)
	}
	keys := publishedKeys(t, s, v2)
	if _, ok := keys[old.KID]; !ok {
		t.Fatal("the old key is no longer published right after a rotation")
	}
	if _, err := verify(t, token, keys); err != nil {
		t.Fatalf("token signed after rotation: %v", err)
	}
	parsed, _, _ := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if parsed.Header["kid"] != rotated.KID {
		t.Fatalf("kid = %v, want the rotated key %s", parsed.Header["kid"], rotated.KID)
	}

	s.UnpublishKey(rotated.KID)
	if _, err := verify(t, token, publishedKeys(t, s, v2)); err == nil {
		t.Fatal("a token of an unpublished key verified")
	}
	unknown, err := NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := s.MintWith(unknown, Claims{Audience: "a", AppID: client})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, foreign, publishedKeys(t, s, v2)); err == nil {
		t.Fatal("a token of a never-published key verified")
	}
}

func TestClaimsDefaultsAndOverrides(t *testing.T) {
	s := start(t)
	exp := time.Now().Add(-time.Hour).Truncate(time.Second)
	m := s.MapClaims(Claims{TenantID: "other", ExpiresAt: exp, Extra: map[string]any{"roles": []string{"x"}}})
	if m["iss"] != "https://sts.windows.net/other/" || m["tid"] != "other" || m["ver"] != "1.0" {
		t.Fatalf("claims = %v", m)
	}
	if m["exp"] != exp.Unix() || m["roles"] == nil {
		t.Fatalf("claims = %v", m)
	}
}

func TestSignedTokensFromTheTokenEndpoint(t *testing.T) {
	s, err := New(Options{TenantID: tenant, ClientID: client, ClientSecret: secret, SignedTokens: true, AccessTokenVersion: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	tok, err := newCredential(t, s, secret).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://hooks.example/api/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	var v2 discoveryDoc
	getJSON(t, s, s.URL()+tenant+"/v2.0/.well-known/openid-configuration", &v2)
	claims, err := verify(t, tok.Token, publishedKeys(t, s, v2))
	if err != nil {
		t.Fatal(err)
	}
	if claims["aud"] != "https://hooks.example/api" || claims["azp"] != client || claims["iss"] != v2.Issuer {
		t.Fatalf("claims = %v", claims)
	}
	if !s.Valid(tok.Token) {
		t.Fatal("signed token not recorded as issued")
	}
}

func TestFailDiscovery(t *testing.T) {
	s := start(t)
	s.FailDiscovery(1)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: s.Bundle().ClientTLSConfig()}}
	resp, err := c.Get(s.URL() + tenant + "/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	var doc discoveryDoc
	getJSON(t, s, s.URL()+tenant+"/v2.0/.well-known/openid-configuration", &doc)
}

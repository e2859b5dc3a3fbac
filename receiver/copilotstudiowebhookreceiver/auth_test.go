package copilotstudiowebhookreceiver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeentra"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

const unauthorizedBody = `{"errorCode":4011,"message":"Unauthorized","httpStatus":401}`

func TestKeysAreReadAtStart(t *testing.T) {
	f := newFixture(t, consumertest.NewNop(), fixtureOptions{})
	// Both discovery documents of the one tenant, and both key sets they
	// point to, before any call.
	assert.Equal(t, 2, f.entra.DiscoveryRequests())
	assert.Equal(t, 2, f.entra.KeysRequests())
	before := f.entra.KeysRequests()
	require.Equal(t, http.StatusOK, f.analyze(webhookclient.Example()).Status)
	assert.Equal(t, before, f.entra.KeysRequests(), "a call read the keys again")
}

func TestGoodTokensAccepted(t *testing.T) {
	sink := new(consumertest.LogsSink)
	f := newFixture(t, sink, fixtureOptions{})
	for name, claims := range map[string]fakeentra.Claims{
		"v1, audience the base URL":      {Version: 1, Audience: testAudience, AppID: testAppID},
		"v2, audience the client id":     {Version: 2, Audience: testAppID, AppID: testAppID},
		"app id in another letter case":  {Audience: testAudience, AppID: strings.ToUpper(testAppID)},
		"expired less than the skew ago": {Audience: testAudience, AppID: testAppID, ExpiresAt: time.Now().Add(-20 * time.Second)},
	} {
		t.Run(name, func(t *testing.T) {
			a, err := f.withToken(f.mint(claims)).Analyze(context.Background(), webhookclient.Example())
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, a.Status)
			assert.JSONEq(t, `{"blockAction":false}`, string(a.Body))
			v, err := f.withToken(f.mint(claims)).Validate(context.Background())
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, v.Status)
		})
	}
	assert.Len(t, sink.AllLogs(), 4)
}

func TestBadTokensRefused(t *testing.T) {
	sink := new(consumertest.LogsSink)
	f := newFixture(t, sink, fixtureOptions{})
	now := time.Now()
	neverPublished, err := fakeentra.NewSigningKey()
	require.NoError(t, err)
	good := f.mint(f.good)
	parts := strings.Split(good, ".")

	// Tokens whose header and claims are good but whose algorithm is not
	// RS256: none, and HS256 keyed with the RSA public key (the classic
	// key-confusion forgery).
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, f.entra.MapClaims(f.good)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, f.entra.MapClaims(f.good))
	hs.Header["kid"] = f.entra.SigningKey().KID
	hs256, err := hs.SignedString(f.entra.SigningKey().Public().N.Bytes())
	require.NoError(t, err)
	// The good token with another payload under the same signature.
	tampered := parts[0] + "." + strings.Split(f.mint(fakeentra.Claims{Audience: testAudience, AppID: "11111111-2222-3333-4444-555555555555"}), ".")[1] + "." + parts[2]

	for _, c := range []struct {
		name, header, reason string
	}{
		{"no Authorization header", "", authMissing},
		{"not a bearer token", "Basic dXNlcjpwYXNz", authMissing},
		{"not a JWT", "Bearer not-a-jwt", authMalformed},
		{"expired", "Bearer " + f.mint(fakeentra.Claims{Audience: testAudience, AppID: testAppID, IssuedAt: now.Add(-2 * time.Hour), NotBefore: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-10 * time.Minute)}), authExpired},
		{"not yet valid", "Bearer " + f.mint(fakeentra.Claims{Audience: testAudience, AppID: testAppID, NotBefore: now.Add(10 * time.Minute)}), authNotYetValid},
		{"issued in the future", "Bearer " + f.mint(fakeentra.Claims{Audience: testAudience, AppID: testAppID, IssuedAt: now.Add(10 * time.Minute)}), authNotYetValid},
		{"wrong audience", "Bearer " + f.mint(fakeentra.Claims{Audience: "https://someone-else.example/api", AppID: testAppID}), authAudience},
		{"other tenant (v1 issuer)", "Bearer " + f.mint(fakeentra.Claims{TenantID: testOtherTenant, Audience: testAudience, AppID: testAppID}), authIssuer},
		{"other tenant (v2 issuer)", "Bearer " + f.mint(fakeentra.Claims{Version: 2, TenantID: testOtherTenant, Audience: testAudience, AppID: testAppID}), authIssuer},
		{"tid not the issuer's tenant", "Bearer " + f.mint(fakeentra.Claims{Audience: testAudience, AppID: testAppID, Extra: map[string]any{"tid": testOtherTenant}}), authTenant},
		{"wrong app id (v1 appid)", "Bearer " + f.mint(fakeentra.Claims{Audience: testAudience, AppID: "04b07795-8ddb-461a-bbee-02f9e1bf7b46"}), authAppID},
		{"wrong app id (v2 azp)", "Bearer " + f.mint(fakeentra.Claims{Version: 2, Audience: testAudience, AppID: "04b07795-8ddb-461a-bbee-02f9e1bf7b46"}), authAppID},
		{"no app id", "Bearer " + f.mint(fakeentra.Claims{Audience: testAudience}), authAppID},
		{"no exp", "Bearer " + f.mint(fakeentra.Claims{Audience: testAudience, AppID: testAppID, Extra: map[string]any{"exp": nil}}), authMalformed},
		{"unknown key id", "Bearer " + mintWith(t, f, neverPublished), authSignature},
		{"alg none", "Bearer " + none, authSignature},
		{"HS256 with the public key", "Bearer " + hs256, authSignature},
		{"tampered payload", "Bearer " + tampered, authSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := f.sum("copilotstudio_webhook_auth_failures", attribute.String("reason", c.reason))
			for _, endpoint := range []string{"/validate", "/analyze-tool-execution"} {
				req, err := http.NewRequest(http.MethodPost, f.client.BaseURL+endpoint+"?api-version=2025-05-01", strings.NewReader(string(webhookclient.Example())))
				require.NoError(t, err)
				if c.header != "" {
					req.Header.Set("Authorization", c.header)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				body := readAll(t, resp)
				assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, endpoint)
				// The same body whatever was wrong: no hint for the caller.
				assert.Equal(t, unauthorizedBody, body, endpoint)
				assert.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
			}
			assert.Equal(t, before+2, f.sum("copilotstudio_webhook_auth_failures", attribute.String("reason", c.reason)))
			if token, ok := strings.CutPrefix(c.header, "Bearer "); ok && len(token) > 20 {
				assert.NotContains(t, f.everyLogText(), token, "the token reached the log")
				assert.NotContains(t, f.everyLogText(), token[len(token)-20:], "the token's signature reached the log")
			}
		})
	}
	assert.Empty(t, sink.AllLogs(), "a refused call made a record")
	assert.Equal(t, int64(18), f.calls(endpointAnalyze, outcomeUnauthenticated))
	assert.Equal(t, int64(18), f.calls(endpointValidate, outcomeUnauthenticated))
	// Why is in the log, for the operator.
	assert.NotEmpty(t, f.logged("bearer token is not accepted"))
}

func mintWith(t *testing.T, f *fixture, k *fakeentra.SigningKey) string {
	t.Helper()
	token, err := f.entra.MintWith(k, f.good)
	require.NoError(t, err)
	return token
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestRotatedKeyAcceptedAfterOneRefresh(t *testing.T) {
	f := newFixture(t, consumertest.NewNop(), fixtureOptions{})
	readAtStart := f.entra.KeysRequests()

	// Entra starts signing with a key the receiver has not read yet.
	_, err := f.entra.RotateKey()
	require.NoError(t, err)
	a := f.analyze(webhookclient.Example())
	require.Equal(t, http.StatusOK, a.Status, "a token of the rotated-in key was refused")
	refreshed := f.entra.KeysRequests()
	assert.Greater(t, refreshed, readAtStart, "the unknown key id did not make the receiver read the keys")

	// More calls with the new key: no further reads.
	for range 3 {
		require.Equal(t, http.StatusOK, f.analyze(webhookclient.Example()).Status)
	}
	assert.Equal(t, refreshed, f.entra.KeysRequests())

	// A key id that is nowhere: refused, and within the cooldown it does not
	// cost a read of the keys, however often it comes.
	unknown, err := fakeentra.NewSigningKey()
	require.NoError(t, err)
	for range 5 {
		a, err := f.withToken(mintWith(t, f, unknown)).Analyze(context.Background(), webhookclient.Example())
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, a.Status)
	}
	assert.Equal(t, refreshed, f.entra.KeysRequests(), "unknown key ids read the keys during the cooldown")
}

func TestUnknownKeyReadsTheKeysAtMostOncePerCooldown(t *testing.T) {
	f := newFixture(t, consumertest.NewNop(), fixtureOptions{})
	readAtStart := f.entra.KeysRequests()
	unknown, err := fakeentra.NewSigningKey()
	require.NoError(t, err)
	a, err := f.withToken(mintWith(t, f, unknown)).Analyze(context.Background(), webhookclient.Example())
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, a.Status)
	afterFirst := f.entra.KeysRequests()
	assert.Greater(t, afterFirst, readAtStart, "the first unknown key id did not read the keys")

	// The key is published now, but the cooldown has started: refused until
	// it ends or the hourly refresh reads it.
	f.entra.PublishKey(unknown)
	a, err = f.withToken(mintWith(t, f, unknown)).Analyze(context.Background(), webhookclient.Example())
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, a.Status)
	assert.Equal(t, afterFirst, f.entra.KeysRequests())
}

func TestDiscoveryRetriedUntilItWorks(t *testing.T) {
	clk := newStepClock()
	f := newFixture(t, consumertest.NewNop(), fixtureOptions{clock: clk, noStart: true})
	f.entra.FailDiscovery(1)
	f.start()

	a := f.analyze(webhookclient.Example())
	assert.Equal(t, http.StatusServiceUnavailable, a.Status)
	assert.JSONEq(t, `{"errorCode":5031,"message":"Service unavailable: the receiver cannot check tokens yet","httpStatus":503}`, string(a.Body))
	assert.Equal(t, int64(1), f.calls(endpointAnalyze, outcomeUnavailable))
	assert.NotEmpty(t, f.logged("cannot read Entra ID's discovery documents"))

	clk.wakeNext(t)
	select {
	case <-f.rcv.auth.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the keys were not loaded after the retry")
	}
	assert.Equal(t, http.StatusOK, f.analyze(webhookclient.Example()).Status)
}

func TestSecondTenant(t *testing.T) {
	f := newFixture(t, consumertest.NewNop(), fixtureOptions{configure: func(c *Config) {
		c.EntraID.TenantIDs = []string{testTenant, testOtherTenant}
	}})
	for _, version := range []int{1, 2} {
		token := f.mint(fakeentra.Claims{Version: version, TenantID: testOtherTenant, Audience: testAudience, AppID: testAppID})
		a, err := f.withToken(token).Analyze(context.Background(), webhookclient.Example())
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, a.Status, "v%d token of the second tenant", version)
	}
	assert.Equal(t, 4, f.entra.DiscoveryRequests())
}

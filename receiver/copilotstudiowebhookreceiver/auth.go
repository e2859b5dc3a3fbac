package copilotstudiowebhookreceiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
)

// Reasons a bearer token is refused (attribute "reason" of auth_failures).
// The caller only ever hears 401; the reason goes to metrics and the log.
const (
	authMissing     = "missing"
	authMalformed   = "malformed"
	authSignature   = "signature" // unknown key id, bad signature, alg other than RS256
	authExpired     = "expired"
	authNotYetValid = "not_yet_valid"
	authIssuer      = "issuer"
	authTenant      = "tenant"
	authAudience    = "audience"
	authAppID       = "app_id"
)

// errKeysUnavailable: discovery or the first read of the signing keys has
// not succeeded yet, so no token can be checked.
var errKeysUnavailable = errors.New("the Entra ID signing keys are not loaded yet")

// authFailure is a refused token: why (a metric attribute) and what to log.
// detail never holds the token.
type authFailure struct {
	reason string
	detail string
}

func (f *authFailure) Error() string { return f.reason + ": " + f.detail }

// entraClaims are the claims checked besides the registered ones. appid is
// the client application in v1.0 tokens, azp in v2.0 ones.
type entraClaims struct {
	jwt.RegisteredClaims
	AppID    string `json:"appid"`
	AZP      string `json:"azp"`
	TenantID string `json:"tid"`
}

// verifier is what discovery found: the accepted issuers (v1 and v2 form of
// each configured tenant, as the tenant's discovery documents name them) and
// the signing keys behind them.
type verifier struct {
	issuers map[string]string // issuer -> its tenant id, lower case
	keys    keyfunc.Keyfunc
}

// authenticator checks Entra ID bearer tokens: RS256 signatures against the
// keys of OIDC discovery (read at start, refreshed every
// keys_refresh_interval and, at most once per unknown_key_cooldown, when a
// token names a key id not seen yet), issuer, tid, aud, appid/azp, exp, nbf
// and iat (with clock_skew). The JWT handling is golang-jwt's and keyfunc's
// (with jwkset), nothing hand-written.
type authenticator struct {
	cfg    *EntraIDConfig
	logger *zap.Logger
	clock  clock.Clock
	appIDs map[string]bool // lower case
	parser *jwt.Parser

	client  *http.Client
	current atomic.Pointer[verifier]
	// ready is closed once the first verifier is in place.
	ready     chan struct{}
	readyOnce sync.Once

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newAuthenticator(cfg *EntraIDConfig, logger *zap.Logger, clk clock.Clock) *authenticator {
	appIDs := map[string]bool{}
	for _, id := range cfg.AppIDs {
		appIDs[strings.ToLower(id)] = true
	}
	return &authenticator{
		cfg: cfg, logger: logger, clock: clk, appIDs: appIDs, ready: make(chan struct{}),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
			jwt.WithLeeway(cfg.ClockSkew),
			jwt.WithTimeFunc(clk.Now),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithAudience(cfg.Audiences...),
		),
	}
}

// start reads discovery and the keys once, within entra_id.timeout, so the
// first call does not wait for them; if that fails it keeps trying in the
// background (calls are answered 503 meanwhile) instead of failing the
// collector's start, which would stop its other pipelines too.
func (a *authenticator) start(ctx context.Context) error {
	tlsCfg, err := a.cfg.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return fmt.Errorf("entra_id.tls: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	a.client = &http.Client{Transport: transport, Timeout: a.cfg.Timeout}

	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	firstCtx, cancelFirst := context.WithTimeout(ctx, a.cfg.Timeout)
	err = a.load(runCtx, firstCtx)
	cancelFirst()
	if err == nil {
		return nil
	}
	a.logger.Warn("cannot read Entra ID's discovery documents or signing keys yet; calls are answered 503 until they are read (retrying in the background)",
		zap.String("authority_host", a.cfg.authorityHost()), zap.Error(err))
	a.wg.Add(1)
	go a.retry(runCtx)
	return nil
}

func (a *authenticator) retry(ctx context.Context) {
	defer a.wg.Done()
	wait := time.Second
	for {
		if a.clock.Sleep(ctx, wait) != nil {
			return
		}
		attemptCtx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
		err := a.load(ctx, attemptCtx)
		cancel()
		if err == nil {
			a.logger.Info("Entra ID signing keys loaded; calls are checked from now on")
			return
		}
		if ctx.Err() != nil {
			return
		}
		a.logger.Warn("still cannot read Entra ID's discovery documents or signing keys", zap.Duration("next_attempt_in", wait), zap.Error(err))
		wait = min(2*wait, time.Minute)
	}
}

func (a *authenticator) shutdown() {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
}

// load reads the v1 and v2 discovery documents of every tenant, then the
// keys they point to. runCtx bounds the key storage's life (its refresh
// goroutines), attemptCtx this attempt.
func (a *authenticator) load(runCtx, attemptCtx context.Context) error {
	issuers := map[string]string{}
	var keyURLs []string
	host := strings.TrimRight(a.cfg.authorityHost(), "/")
	for _, tenant := range a.cfg.TenantIDs {
		tenant = strings.ToLower(tenant)
		for _, path := range []string{"/.well-known/openid-configuration", "/v2.0/.well-known/openid-configuration"} {
			doc, err := a.discover(attemptCtx, host+"/"+tenant+path)
			if err != nil {
				return err
			}
			// The issuer names the tenant; one that does not is not this
			// tenant's, whatever document it came from.
			if !strings.Contains(strings.ToLower(doc.Issuer), tenant) {
				return fmt.Errorf("the discovery document of tenant %s names issuer %q, which is not that tenant's", tenant, doc.Issuer)
			}
			issuers[doc.Issuer] = tenant
			if !slices.Contains(keyURLs, doc.JWKSURI) {
				keyURLs = append(keyURLs, doc.JWKSURI)
			}
		}
	}

	storageCtx, cancelStorage := context.WithCancel(runCtx)
	stopOnAttemptEnd := context.AfterFunc(attemptCtx, cancelStorage) // an abandoned attempt leaves no goroutine behind
	noErrorFirst := false
	keys, err := keyfunc.NewDefaultOverrideCtx(storageCtx, keyURLs, keyfunc.Override{
		Client:                    a.client,
		HTTPTimeout:               a.cfg.Timeout,
		RefreshInterval:           a.cfg.KeysRefreshInterval,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(a.cfg.UnknownKeyCooldown), 1),
		RateLimitWaitMax:          a.cfg.Timeout,
		NoErrorReturnFirstHTTPReq: &noErrorFirst,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				a.logger.Warn("reading Entra ID's signing keys failed; the keys read before stay in use", zap.String("url", u), zap.Error(err))
			}
		},
	})
	if !stopOnAttemptEnd() || err != nil {
		cancelStorage()
		if err == nil {
			err = attemptCtx.Err()
		}
		return fmt.Errorf("reading the signing keys: %w", err)
	}
	a.current.Store(&verifier{issuers: issuers, keys: keys})
	a.readyOnce.Do(func() { close(a.ready) })
	return nil
}

type discoveryDocument struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

func (a *authenticator) discover(ctx context.Context, url string) (discoveryDocument, error) {
	var doc discoveryDocument
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return doc, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return doc, fmt.Errorf("OIDC discovery: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return doc, fmt.Errorf("OIDC discovery %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return doc, fmt.Errorf("OIDC discovery %s: HTTP %d: %.300s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Issuer == "" || doc.JWKSURI == "" {
		return doc, fmt.Errorf("OIDC discovery %s: not a discovery document with issuer and jwks_uri", url)
	}
	return doc, nil
}

// authenticate checks the Authorization header. It returns nil,
// errKeysUnavailable or an *authFailure.
func (a *authenticator) authenticate(ctx context.Context, header string) error {
	v := a.current.Load()
	if v == nil {
		return errKeysUnavailable
	}
	scheme, raw, ok := strings.Cut(strings.TrimSpace(header), " ")
	raw = strings.TrimSpace(raw)
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return &authFailure{reason: authMissing, detail: "no bearer token in the Authorization header"}
	}
	var claims entraClaims
	// A key read this causes must not end when the caller hangs up, or the
	// cooldown would be spent for nothing.
	_, err := a.parser.ParseWithClaims(raw, &claims, v.keys.KeyfuncCtx(context.WithoutCancel(ctx)))
	if err != nil {
		f := &authFailure{reason: parseFailureReason(err), detail: err.Error()}
		if f.reason == authAudience {
			// The signature held (golang-jwt checks it before the claims), so
			// the audience is Entra's word: worth logging for the fix.
			f.detail = fmt.Sprintf("audience %q is not in entra_id.audiences", []string(claims.Audience))
		}
		return f
	}
	tenant, ok := v.issuers[claims.Issuer]
	if !ok {
		return &authFailure{reason: authIssuer, detail: fmt.Sprintf("issuer %q is not one of the configured tenants' (entra_id.tenant_ids)", claims.Issuer)}
	}
	if !strings.EqualFold(claims.TenantID, tenant) {
		return &authFailure{reason: authTenant, detail: fmt.Sprintf("tid %q does not match issuer %q", claims.TenantID, claims.Issuer)}
	}
	app := claims.AppID
	if app == "" {
		app = claims.AZP
	}
	if !a.appIDs[strings.ToLower(app)] {
		return &authFailure{reason: authAppID, detail: fmt.Sprintf("application %q is not in entra_id.app_ids", app)}
	}
	return nil
}

// parseFailureReason names what golang-jwt refused, the signature first: a
// token whose signature does not hold says nothing true about its claims.
func parseFailureReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return authMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return authSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return authExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return authNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return authAudience
	}
	return authMalformed
}

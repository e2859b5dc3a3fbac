// Package webhookclient plays Copilot Studio's side of the external threat
// detection webhook: it calls {base}/validate and
// {base}/analyze-tool-execution the way Copilot Studio does (bearer token,
// x-ms-correlation-id, api-version 2025-05-01, JSON body), with realistic
// bodies (calls.go) and real Entra ID tokens (from the fakeentra stand-in
// or any azcore credential). For tests, make run and the fault suite.
package webhookclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeentra"
)

// APIVersion is the api-version Copilot Studio sends.
const APIVersion = "2025-05-01"

// RecordHeader is the receiver's response header saying what became of the
// call's record (the receiver's RecordHeader).
const RecordHeader = "Otelcol-Record"

// TokenSource gives the bearer token of one call.
type TokenSource func(ctx context.Context) (string, error)

// Client calls one webhook endpoint.
type Client struct {
	// BaseURL is the Endpoint link, e.g. https://127.0.0.1:8443/api/agentSecurity.
	BaseURL string
	HTTP    *http.Client
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token TokenSource
	// APIVersion defaults to APIVersion.
	APIVersion string
}

// Answer is the webhook's answer to one call.
type Answer struct {
	Status int
	Body   []byte
	// Record is the RecordHeader value: accepted, deadline, refused or
	// overloaded ("" on errors).
	Record        string
	CorrelationID string
	// Latency is from sending the request to reading the whole answer.
	Latency time.Duration
}

// Validate sends what Copilot Studio sends when an admin saves the set-up:
// an empty POST to {base}/validate.
func (c *Client) Validate(ctx context.Context) (Answer, error) {
	return c.post(ctx, "/validate", nil)
}

// Analyze sends one tool call's body to {base}/analyze-tool-execution.
func (c *Client) Analyze(ctx context.Context, body []byte) (Answer, error) {
	return c.post(ctx, "/analyze-tool-execution", body)
}

func (c *Client) post(ctx context.Context, path string, body []byte) (Answer, error) {
	version := c.APIVersion
	if version == "" {
		version = APIVersion
	}
	url := strings.TrimRight(c.BaseURL, "/") + path + "?api-version=" + version
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	a := Answer{CorrelationID: newGUID()}
	req.Header.Set("x-ms-correlation-id", a.CorrelationID)
	if c.Token != nil {
		token, err := c.Token(ctx)
		if err != nil {
			return Answer{}, fmt.Errorf("getting a token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	httpClient := c.HTTP
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	started := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	a.Body, err = io.ReadAll(resp.Body)
	a.Latency = time.Since(started)
	a.Status = resp.StatusCode
	a.Record = resp.Header.Get(RecordHeader)
	return a, err
}

// FakeEntraTokens mints a fresh token for every call from the stand-in,
// with claims (audience and app id as Copilot Studio's federated app gets
// them).
func FakeEntraTokens(s *fakeentra.Server, claims fakeentra.Claims) TokenSource {
	return func(context.Context) (string, error) { return s.Mint(claims) }
}

// CredentialTokens gets tokens for scope (the base URL + "/.default") from
// cred, as Copilot Studio's federated credential does; azidentity caches
// them until they near expiry.
func CredentialTokens(cred azcore.TokenCredential, scope string) TokenSource {
	return func(ctx context.Context) (string, error) {
		t, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
		return t.Token, err
	}
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

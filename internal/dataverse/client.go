// Package dataverse reads the Copilot Studio agents of one Dataverse environment
// (the bots table of its Web API), so that telemetry rows, which name an agent
// only loosely, can say which agent, in which environment, how it authenticates
// its users and whether it is published.
package dataverse

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/retryafter"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// Agent is one row of the bots table, reduced to what a security analyst needs.
type Agent struct {
	ID                 string
	Name               string // display name: what telemetry calls cloud_RoleInstance
	SchemaName         string // e.g. cr44e_hrAgent: the prefix of telemetry's TopicName
	EnvironmentID      string
	AuthenticationMode string // one of schema.Auth*
	PublishedState     string // one of schema.PublishedState*
}

// Unauthenticated reports whether anyone who knows the agent's id can use it.
func (a Agent) Unauthenticated() bool { return a.AuthenticationMode == schema.AuthNone }

// PutResource writes what Dataverse knows of the agent onto the resource of
// its records (the copilotstudio.agent.* attributes of internal/schema).
func (a Agent) PutResource(res pcommon.Map) {
	res.PutStr(schema.AgentID, a.ID)
	res.PutStr(schema.AgentSchemaName, a.SchemaName)
	res.PutStr(schema.AgentEnvironmentID, a.EnvironmentID)
	res.PutStr(schema.AgentAuthenticationMode, a.AuthenticationMode)
	res.PutStr(schema.AgentPublishedState, a.PublishedState)
	res.PutBool(schema.AgentUnauthenticated, a.Unauthenticated())
}

const (
	apiPath = "/api/data/v9.2"
	// botsQuery asks only for the columns we use: Dataverse rows are wide.
	botsQuery = "/bots?$select=botid,name,schemaname,authenticationmode,publishedon,statecode"
	// currentOrgQuery names the environment the URL belongs to.
	currentOrgQuery = "/RetrieveCurrentOrganization(AccessType=@p1)?@p1=Microsoft.Dynamics.CRM.EndpointAccessType'Default'"

	defaultPageSize    = 500
	maxThrottleRetries = 5

	// MaxRetryWait caps a Retry-After: a longer throttle ends the read,
	// which the next refresh or poll tries again.
	MaxRetryWait = 5 * time.Minute
	// maxAgentPages bounds the pages of one read of the agents: at
	// defaultPageSize a page, a million agents, far more than any
	// environment holds; a server that keeps sending next links ends there.
	maxAgentPages = 2000
	// maxAgentPageBytes bounds one page of agents (about 500 rows of six
	// short columns: well under 1 MB).
	maxAgentPageBytes = 16 << 20
)

// Client reads agents from https://<org>.crm.dynamics.com with a bearer token
// for the scope {url}/.default.
type Client struct {
	baseURL  string
	scope    string
	cred     azcore.TokenCredential
	http     *http.Client
	pageSize int
	// wait sleeps between throttled attempts and now reads the time, on
	// the caller's clock (UseClock); tests replace wait to stay instant.
	wait func(ctx context.Context, d time.Duration) error
	now  func() time.Time
	// offset is Dataverse's clock less the caller's, in nanoseconds, as the
	// latest answer's Date header told; offsetKnown once one did.
	offset      atomic.Int64
	offsetKnown atomic.Bool
}

// UseClock makes the client wait out throttling and read the time on clk.
func (c *Client) UseClock(clk clock.Clock) {
	c.wait, c.now = clk.Sleep, clk.Now
}

// ClockOffset is how far the environment's clock is ahead of the caller's
// (negative: behind), as its latest answer's Date header told: the header
// is whole seconds and stamped before the answer arrived, so this is at
// most the true offset, and at least it less a second and the network
// delay. false before the first answer with a Date.
func (c *Client) ClockOffset() (time.Duration, bool) {
	return time.Duration(c.offset.Load()), c.offsetKnown.Load()
}

// noteDate learns the clock offset from an answer that just arrived.
func (c *Client) noteDate(resp *http.Response) {
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		c.offset.Store(int64(t.Sub(c.now())))
		c.offsetKnown.Store(true)
	}
}

// NewClient checks the environment URL and returns a client for it.
func NewClient(environmentURL string, cred azcore.TokenCredential, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(environmentURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("dataverse url %q is not an absolute URL like https://<org>.crm.dynamics.com", environmentURL)
	}
	base := u.Scheme + "://" + u.Host
	return &Client{
		baseURL: base,
		scope:   base + "/.default",
		cred:    cred,
		// A redirect would take the bearer token to wherever it points.
		http:     azureauth.RefuseRedirects(httpClient),
		pageSize: defaultPageSize,
		wait:     clock.System.Sleep,
		now:      clock.System.Now,
	}, nil
}

// Scope is the token scope the client asks for.
func (c *Client) Scope() string { return c.scope }

// Agents reads every agent of the environment, following the server's paging.
func (c *Client) Agents(ctx context.Context) ([]Agent, error) {
	var org struct {
		Detail struct {
			EnvironmentID string `json:"EnvironmentId"`
		} `json:"Detail"`
	}
	if err := c.getJSON(ctx, c.baseURL+apiPath+currentOrgQuery, &org); err != nil {
		return nil, fmt.Errorf("reading the environment id: %w", err)
	}
	var agents []Agent
	paging := c.NewPaging(maxAgentPages)
	next := c.baseURL + apiPath + botsQuery
	for next != "" {
		if err := paging.Next(next); err != nil {
			return nil, fmt.Errorf("reading agents (bots): %w", err)
		}
		var page struct {
			Value    []botRow `json:"value"`
			NextLink string   `json:"@odata.nextLink"`
		}
		if err := c.getJSON(ctx, next, &page); err != nil {
			return nil, fmt.Errorf("reading agents (bots): %w", err)
		}
		for _, b := range page.Value {
			agents = append(agents, b.agent(org.Detail.EnvironmentID))
		}
		// The next link is followed exactly as given: its skip token is opaque.
		next = page.NextLink
	}
	return agents, nil
}

// ErrPageLimit is returned (wrapped) when a read reaches its page limit.
var ErrPageLimit = errors.New("page limit reached")

// Paging guards one read that follows @odata.nextLink: every page is on
// the environment's own scheme and host (the bearer token goes nowhere
// else), no link comes twice (a server answering a page with a link to
// itself would loop for ever), and a read takes at most its page limit.
type Paging struct {
	client *Client
	max    int
	seen   map[[sha256.Size]byte]struct{}
}

// NewPaging guards a read of at most maxPages pages.
func (c *Client) NewPaging(maxPages int) *Paging {
	return &Paging{client: c, max: maxPages, seen: map[[sha256.Size]byte]struct{}{}}
}

// Next checks the URL of the read's next page, the first page's included.
func (p *Paging) Next(pageURL string) error {
	if err := p.client.sameHost(pageURL); err != nil {
		return err
	}
	key := sha256.Sum256([]byte(pageURL))
	if _, again := p.seen[key]; again {
		return fmt.Errorf("the next link %q came a second time in one read: refusing to loop over the same pages", redactQuery(pageURL))
	}
	if len(p.seen) >= p.max {
		return fmt.Errorf("%w: %d pages in one read", ErrPageLimit, p.max)
	}
	p.seen[key] = struct{}{}
	return nil
}

type botRow struct {
	BotID              string `json:"botid"`
	Name               string `json:"name"`
	SchemaName         string `json:"schemaname"`
	AuthenticationMode *int   `json:"authenticationmode"`
	PublishedOn        string `json:"publishedon"`
	StateCode          int    `json:"statecode"`
}

func (b botRow) agent(environmentID string) Agent {
	return Agent{
		ID:                 b.BotID,
		Name:               b.Name,
		SchemaName:         b.SchemaName,
		EnvironmentID:      environmentID,
		AuthenticationMode: authenticationMode(b.AuthenticationMode),
		PublishedState:     publishedState(b.PublishedOn, b.StateCode),
	}
}

// authenticationMode maps the bots.authenticationmode choice: 1 None,
// 2 Integrated ("Authenticate with Microsoft"), 3 Custom Azure Active Directory
// and 4 Generic OAuth2 (both "Authenticate manually"), 0 Unspecified.
func authenticationMode(v *int) string {
	if v == nil {
		return schema.AuthUnspecified
	}
	switch *v {
	case 1:
		return schema.AuthNone
	case 2:
		return schema.AuthEntraID
	case 3, 4:
		return schema.AuthManual
	default:
		return schema.AuthUnspecified
	}
}

// publishedState: statecode 1 is Inactive; otherwise an agent with a publish
// time has been published.
func publishedState(publishedOn string, stateCode int) string {
	switch {
	case stateCode == 1:
		return schema.PublishedStateInactive
	case publishedOn != "":
		return schema.PublishedStatePublished
	default:
		return schema.PublishedStateUnpublished
	}
}

// StatusError is a non-2xx answer from Dataverse, with its OData error text.
type StatusError struct {
	StatusCode int
	Code       string
	Message    string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("dataverse answered %d", e.StatusCode)
	if e.Code != "" || e.Message != "" {
		msg += fmt.Sprintf(" (%s: %s)", e.Code, e.Message)
	}
	switch e.StatusCode {
	case http.StatusUnauthorized:
		msg += "; check the credential and that the token scope is the environment URL + /.default"
	case http.StatusForbidden:
		msg += "; the app registration needs an application user in the environment with read access to the bots table"
	}
	return msg
}

func (c *Client) getJSON(ctx context.Context, target string, out any) error {
	for attempt := 0; ; attempt++ {
		retryAfter, err := c.getOnce(ctx, target, out)
		if err == nil {
			return nil
		}
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests || attempt >= maxThrottleRetries {
			return err
		}
		// Dataverse's service protection limits ask for the whole
		// Retry-After; one longer than MaxRetryWait ends the read.
		if retryAfter > MaxRetryWait {
			return fmt.Errorf("%w; Retry-After %v is over the %v a read waits: the next read tries again", err, retryAfter, MaxRetryWait)
		}
		if err := c.wait(ctx, retryAfter); err != nil {
			return err
		}
	}
}

func (c *Client) getOnce(ctx context.Context, target string, out any) (time.Duration, error) {
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	if err != nil {
		return 0, fmt.Errorf("getting a token for %s: %w", c.scope, err)
	}
	req, err := newWebAPIRequest(ctx, target, tok.Token, c.pageSize)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	c.noteDate(resp)
	if resp.StatusCode/100 == 3 {
		return 0, errors.New(azureauth.DescribeRedirect("dataverse", resp) + "; check the environment URL")
	}
	if resp.StatusCode/100 != 2 {
		return retryAfter(resp.Header.Get("Retry-After")), statusError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAgentPageBytes+1))
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", req.URL.Path, err)
	}
	if len(body) > maxAgentPageBytes {
		return 0, fmt.Errorf("the answer to %s is over %d bytes: not read", req.URL.Path, maxAgentPageBytes)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return 0, fmt.Errorf("decoding %s: %w", req.URL.Path, err)
	}
	return 0, nil
}

// retryAfter reads Retry-After as seconds (what Dataverse sends) or an HTTP
// date; without one it waits a second rather than hammering.
func retryAfter(v string) time.Duration {
	if d, ok := retryafter.Parse(v, time.Now()); ok && d > 0 {
		return d
	}
	return time.Second
}

// newWebAPIRequest is a GET of the Web API with the bearer token and the
// OData headers; pageSize > 0 asks for pages of at most that many rows.
func newWebAPIRequest(ctx context.Context, target, token string, pageSize int) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-MaxVersion", "4.0")
	req.Header.Set("OData-Version", "4.0")
	if pageSize > 0 {
		req.Header.Set("Prefer", "odata.maxpagesize="+strconv.Itoa(pageSize))
	}
	return req, nil
}

// statusError reads a failed answer's Web API error body (its first 64 KiB).
func statusError(resp *http.Response) *StatusError {
	se := &StatusError{StatusCode: resp.StatusCode}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body) == nil {
		se.Code, se.Message = body.Error.Code, body.Error.Message
	}
	return se
}

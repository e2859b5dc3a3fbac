// Package dataverse reads the Copilot Studio agents of one Dataverse environment
// (the bots table of its Web API), so that telemetry rows, which name an agent
// only loosely, can say which agent, in which environment, how it authenticates
// its users and whether it is published.
package dataverse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
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

const (
	apiPath = "/api/data/v9.2"
	// botsQuery asks only for the columns we use: Dataverse rows are wide.
	botsQuery = "/bots?$select=botid,name,schemaname,authenticationmode,publishedon,statecode"
	// currentOrgQuery names the environment the URL belongs to.
	currentOrgQuery = "/RetrieveCurrentOrganization(AccessType=@p1)?@p1=Microsoft.Dynamics.CRM.EndpointAccessType'Default'"

	defaultPageSize    = 500
	maxThrottleRetries = 5
)

// Client reads agents from https://<org>.crm.dynamics.com with a bearer token
// for the scope {url}/.default.
type Client struct {
	baseURL  string
	scope    string
	cred     azcore.TokenCredential
	http     *http.Client
	pageSize int
	// wait sleeps between throttled attempts; tests replace it to stay instant.
	wait func(ctx context.Context, d time.Duration) error
}

// NewClient checks the environment URL and returns a client for it.
func NewClient(environmentURL string, cred azcore.TokenCredential, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(environmentURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("dataverse url %q is not an absolute URL like https://<org>.crm.dynamics.com", environmentURL)
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	base := u.Scheme + "://" + u.Host
	return &Client{
		baseURL:  base,
		scope:    base + "/.default",
		cred:     cred,
		http:     httpClient,
		pageSize: defaultPageSize,
		wait:     clock.Sleep,
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
	next := c.baseURL + apiPath + botsQuery
	for next != "" {
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
		// Dataverse's service protection limits ask for the whole Retry-After.
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-MaxVersion", "4.0")
	req.Header.Set("OData-Version", "4.0")
	req.Header.Set("Prefer", "odata.maxpagesize="+strconv.Itoa(c.pageSize))
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
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
		return retryAfter(resp.Header.Get("Retry-After")), se
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return 0, fmt.Errorf("decoding %s: %w", req.URL.Path, err)
	}
	return 0, nil
}

// retryAfter reads Retry-After as seconds (what Dataverse sends) or an HTTP
// date; without one it waits a second rather than hammering.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return time.Second
}

package appinsights

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/retryafter"
)

// Settings configure a Client.
type Settings struct {
	// Endpoint is the query API's base URL, e.g. https://api.applicationinsights.io.
	// The token scope is derived from it.
	Endpoint      string
	ApplicationID string
	Auth          *azureauth.Config
	// HTTP carries the queries and the token requests.
	HTTP *http.Client
	// TokenRetry is azidentity's retry of token requests; zero means its default.
	TokenRetry policy.RetryOptions
	// MaxResponseBytes bounds one answer's body and MaxCellBytes one value
	// in it; zero means DefaultMaxResponseBytes and DefaultMaxCellBytes.
	MaxResponseBytes int64
	MaxCellBytes     int
}

// Defaults and bounds of the answer limits. The query API returns at most
// about 100 MB per result; its JSON (customDimensions is a string of JSON,
// every quote escaped) is somewhat larger. One cell holds one column of one
// row: Application Insights keeps custom property values to 8,192
// characters each, so even a row with every property full is a few MB.
const (
	DefaultMaxResponseBytes = 256 << 20
	DefaultMaxCellBytes     = 16 << 20
	// MaxLimitBytes bounds both limits: a row's cells are addressed with
	// int32 offsets.
	MaxLimitBytes = 1 << 30
)

// Client sends queries to one Application Insights resource.
type Client struct {
	http      *http.Client
	maxBody   int64
	maxCell   int
	url       string // {endpoint}/v1/apps/{application_id}/query
	appID     string
	auth      authorizer
	authLabel string // the credential described, for rejected-credential messages
}

// NewClient builds the configured credential and a client of the resource.
func NewClient(s Settings) (*Client, error) {
	// Neither the queries nor the token requests follow a redirect: it would
	// take the credential (and the query) to another host.
	httpClient := azureauth.RefuseRedirects(s.HTTP)
	auth, err := newAuthorizer(s.Auth, s.Endpoint, httpClient, s.TokenRetry)
	if err != nil {
		return nil, err
	}
	maxBody, maxCell := s.MaxResponseBytes, s.MaxCellBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxResponseBytes
	}
	if maxCell <= 0 {
		maxCell = DefaultMaxCellBytes
	}
	return &Client{
		http:      httpClient,
		maxBody:   min(maxBody, MaxLimitBytes),
		maxCell:   min(maxCell, MaxLimitBytes),
		url:       strings.TrimRight(s.Endpoint, "/") + "/v1/apps/" + url.PathEscape(s.ApplicationID) + "/query",
		appID:     s.ApplicationID,
		auth:      auth,
		authLabel: s.Auth.Describe(),
	}, nil
}

// Failure is a failed query: retryable (throttling, 5xx, transport,
// unreadable body, partial result) or not (bad request, unknown app).
type Failure struct {
	msg        string
	retryable  bool
	retryAfter time.Duration // from Retry-After, when the service sent one
	partial    bool
	// tooLarge is the limit an answer went over (TooLargeResponse or
	// TooLargeCell), "" for other failures.
	tooLarge string
}

// What an answer over a limit went over (TooLarge).
const (
	TooLargeResponse = "response"
	TooLargeCell     = "cell"
)

func (e *Failure) Error() string { return e.msg }

// AuthError is a credential problem: the token could not be had, or the API
// refused it. Retrying at once would fail the same way.
type AuthError struct{ msg string }

func (e *AuthError) Error() string { return e.msg }

// Query runs q and streams each row of the result to onRow, in order. It
// returns *AuthError for credential problems and *Failure for the rest; a
// 200 carrying an "error" object is a retryable *Failure that IsPartial.
// Rows passed to onRow before an error belong to a result that must not be
// taken as complete.
func (c *Client) Query(ctx context.Context, q Query, onRow func(*Row)) (Result, error) {
	body, err := json.Marshal(map[string]string{"query": q.KQL(), "timespan": q.Timespan()})
	if err != nil {
		return Result{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := c.auth.authorize(ctx, req); err != nil {
		return Result{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, &Failure{msg: "query request failed: " + err.Error(), retryable: true}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
	}()
	serverTime := serverDate(resp)

	if resp.StatusCode != http.StatusOK {
		return Result{ServerTime: serverTime}, c.statusFailure(resp)
	}
	limited := &limitedReader{r: resp.Body, left: c.maxBody}
	res, err := DecodeLimited(limited, c.maxCell, func(row *Row) error { onRow(row); return nil })
	res.ServerTime = serverTime
	if err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		switch {
		case errors.Is(err, errResponseTooLarge):
			return res, &Failure{msg: fmt.Sprintf("the query answer is over %d bytes (after %d complete rows)", c.maxBody, res.Rows), tooLarge: TooLargeResponse}
		case errors.Is(err, ErrValueTooLarge):
			return res, &Failure{msg: fmt.Sprintf("a value in the query answer is over %d bytes (after %d complete rows)", c.maxCell, res.Rows), tooLarge: TooLargeCell}
		}
		return res, &Failure{msg: "unreadable query response: " + err.Error(), retryable: true}
	}
	if res.Partial != nil {
		return res, &Failure{msg: "query returned partial results: " + res.Partial.String(), retryable: true, partial: true}
	}
	return res, nil
}

func (c *Client) statusFailure(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var envelope ErrorBody
	detail := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &envelope) == nil && envelope.Error != nil {
		detail = envelope.Error.String()
	}
	if len(detail) > 2000 {
		detail = detail[:2000] + "..."
	}
	status := resp.Status
	if resp.StatusCode/100 == 3 {
		return &Failure{msg: azureauth.DescribeRedirect("the query API", resp) + "; check endpoint"}
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &AuthError{msg: fmt.Sprintf("the query API rejected the credential (%s: %s) for application_id %s with %s; check that the app registration has the API permission \"Application Insights API / Data.Read\" with admin consent and the Reader role on the Application Insights resource, and that the token is for this endpoint's cloud",
			status, detail, c.appID, c.authLabel)}
	case http.StatusNotFound:
		return &Failure{msg: fmt.Sprintf("the query API does not know application_id %s (%s: %s); check application_id (the Application ID on the resource's API Access page) and endpoint", c.appID, status, detail)}
	case http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return &Failure{msg: fmt.Sprintf("query API answered %s: %s", status, detail), retryable: true,
			retryAfter: retryAfterOf(resp)}
	}
	return &Failure{msg: fmt.Sprintf("query API answered %s: %s", status, detail)}
}

// IsAuthError reports a credential problem.
func IsAuthError(err error) bool {
	var ae *AuthError
	return errors.As(err, &ae)
}

// IsRetryable reports a failure worth retrying within the poll.
func IsRetryable(err error) bool {
	var f *Failure
	return errors.As(err, &f) && f.retryable
}

// RetryAfter is the wait the service asked for, 0 when it named none.
func RetryAfter(err error) time.Duration {
	var f *Failure
	if errors.As(err, &f) {
		return f.retryAfter
	}
	return 0
}

// TooLarge reports an answer over a limit, and which (TooLargeResponse or
// TooLargeCell). The rows passed to onRow before it are complete rows, in
// the answer's order.
func TooLarge(err error) (what string, ok bool) {
	var f *Failure
	if errors.As(err, &f) && f.tooLarge != "" {
		return f.tooLarge, true
	}
	return "", false
}

// serverDate is the answer's Date header: the service's clock when it
// answered (whole seconds); zero when absent or unreadable.
func serverDate(resp *http.Response) time.Time {
	t, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return time.Time{}
	}
	return t
}

var errResponseTooLarge = errors.New("response over its size limit")

// limitedReader reads at most left bytes, then fails: an answer is never
// read past the limit, nor taken as complete when cut there.
type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more says whether the body really goes on.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// IsPartial reports a 200 whose rows are incomplete.
func IsPartial(err error) bool {
	var f *Failure
	return errors.As(err, &f) && f.partial
}

// retryAfterOf is the answer's Retry-After; 0 (the caller's own backoff)
// when absent or unreadable.
func retryAfterOf(resp *http.Response) time.Duration {
	d, _ := retryafter.Parse(resp.Header.Get("Retry-After"), time.Now())
	return d
}

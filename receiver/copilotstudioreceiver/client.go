package copilotstudioreceiver

import (
	"bytes"
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
)

// queryClient sends one KQL query to the Application Insights query API.
type queryClient struct {
	http      *http.Client
	url       string // {endpoint}/v1/apps/{application_id}/query
	appID     string
	auth      authorizer
	authLabel string // describeCredential, for rejected-credential messages
}

func newQueryClient(cfg *Config, httpClient *http.Client, auth authorizer) *queryClient {
	return &queryClient{
		http:      httpClient,
		url:       strings.TrimRight(cfg.Endpoint, "/") + "/v1/apps/" + url.PathEscape(cfg.ApplicationID) + "/query",
		appID:     cfg.ApplicationID,
		auth:      auth,
		authLabel: cfg.Auth.Describe(),
	}
}

// queryFailure is a failed query: retryable (throttling, 5xx, transport,
// unreadable body, partial result) or not (bad request, unknown app).
type queryFailure struct {
	msg        string
	retryable  bool
	retryAfter time.Duration // from Retry-After, when the service sent one
	partial    bool
}

func (e *queryFailure) Error() string { return e.msg }

// query runs kql over timespan and streams each row to onRow. It returns
// *authError for credential problems and *queryFailure for the rest; a 200
// carrying an "error" object is a retryable *queryFailure with partial set.
func (c *queryClient) query(ctx context.Context, kql, timespan string, onRow func(*resultRow)) (decodedResult, error) {
	body, err := json.Marshal(map[string]string{"query": kql, "timespan": timespan})
	if err != nil {
		return decodedResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return decodedResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := c.auth.authorize(ctx, req); err != nil {
		return decodedResult{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return decodedResult{}, ctx.Err()
		}
		return decodedResult{}, &queryFailure{msg: "query request failed: " + err.Error(), retryable: true}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
	}()

	if resp.StatusCode != http.StatusOK {
		return decodedResult{}, c.statusFailure(resp)
	}
	res, err := decodeResponse(resp.Body, func(row *resultRow) error { onRow(row); return nil })
	if err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return res, &queryFailure{msg: "unreadable query response: " + err.Error(), retryable: true}
	}
	if res.partial != nil {
		return res, &queryFailure{msg: "query returned partial results: " + res.partial.String(), retryable: true, partial: true}
	}
	return res, nil
}

func (c *queryClient) statusFailure(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var envelope struct {
		Error *queryError `json:"error"`
	}
	detail := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &envelope) == nil && envelope.Error != nil {
		detail = envelope.Error.String()
	}
	if len(detail) > 2000 {
		detail = detail[:2000] + "..."
	}
	status := resp.Status
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &authError{msg: fmt.Sprintf("the query API rejected the credential (%s: %s) for application_id %s with %s; check that the app registration has the API permission \"Application Insights API / Data.Read\" with admin consent and the Reader role on the Application Insights resource, and that the token is for this endpoint's cloud",
			status, detail, c.appID, c.authLabel)}
	case http.StatusNotFound:
		return &queryFailure{msg: fmt.Sprintf("the query API does not know application_id %s (%s: %s); check application_id (the Application ID on the resource's API Access page) and endpoint", c.appID, status, detail)}
	case http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return &queryFailure{msg: fmt.Sprintf("query API answered %s: %s", status, detail), retryable: true,
			retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	return &queryFailure{msg: fmt.Sprintf("query API answered %s: %s", status, detail)}
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func isAuthError(err error) bool {
	var ae *authError
	return errors.As(err, &ae)
}

func isRetryable(err error) bool {
	var qf *queryFailure
	return errors.As(err, &qf) && qf.retryable
}

func retryAfterOf(err error) time.Duration {
	var qf *queryFailure
	if errors.As(err, &qf) {
		return qf.retryAfter
	}
	return 0
}

func isPartial(err error) bool {
	var qf *queryFailure
	return errors.As(err, &qf) && qf.partial
}

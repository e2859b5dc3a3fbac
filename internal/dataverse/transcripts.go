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

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
)

// Copilot Studio's conversation transcripts (the conversationtranscript
// table): the query the transcripts receiver sends, and its paging.

// TranscriptColumns are the columns read: content and metadata are up to
// 1 MB each, so nothing else is asked for.
var TranscriptColumns = []string{
	"conversationtranscriptid", "name", "content", "metadata", "conversationstarttime", "createdon", "_bot_conversationtranscriptid_value",
}

// TranscriptsOrder is the order rows are read in: the cursor's column,
// ties by row id, so paging and the cursor agree on what comes after what.
const TranscriptsOrder = "createdon asc,conversationtranscriptid asc"

// TranscriptRow is one row as the Web API returns it.
type TranscriptRow struct {
	ID                string    `json:"conversationtranscriptid"`
	Name              string    `json:"name"`
	Content           string    `json:"content"`
	Metadata          string    `json:"metadata"`
	ConversationStart string    `json:"conversationstarttime"`
	CreatedOn         time.Time `json:"createdon"`
	BotID             string    `json:"_bot_conversationtranscriptid_value"`
}

// TranscriptPage is one page of rows and the link to the next (empty on
// the last page).
type TranscriptPage struct {
	Rows     []TranscriptRow
	NextLink string
	// Bytes is the size of the response body.
	Bytes int
	// PageSizeApplied is the page size Dataverse says it applied
	// (Preference-Applied), 0 when it did not say.
	PageSizeApplied int
}

// TranscriptReader reads pages of transcripts with the service protection
// limits respected: 429 waits out Retry-After (capped at MaxRetryWait; a
// longer one ends the read), 502/503/504 are retried with backoff, up to
// MaxAttempts tries per page.
type TranscriptReader struct {
	Client *Client
	// PageSize is sent as Prefer: odata.maxpagesize. Rows are up to 1 MB
	// each: keep it small.
	PageSize int
	// MaxPageBytes bounds one response body; a larger one is an error
	// naming the page size to lower.
	MaxPageBytes int64
	MaxAttempts  int
	MaxRetryWait time.Duration
	Clock        clock.Clock
	// OnRetry, when set, hears of each retry before its wait.
	OnRetry func(attempt int, wait time.Duration, err error)
}

// FirstPageURL is the query for rows created at or after from (createdon
// ge: Dataverse keeps whole seconds, and the caller de-duplicates what it
// read before), of the given agents (bot ids; none: every agent), oldest
// first.
func (c *Client) FirstPageURL(from time.Time, agentIDs []string) string {
	filter := "createdon ge " + from.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")
	if len(agentIDs) > 0 {
		parts := make([]string, len(agentIDs))
		for i, id := range agentIDs {
			parts[i] = "_bot_conversationtranscriptid_value eq " + id
		}
		filter += " and (" + strings.Join(parts, " or ") + ")"
	}
	q := "$select=" + strings.Join(TranscriptColumns, ",") +
		"&$filter=" + url.PathEscape(filter) +
		"&$orderby=" + url.PathEscape(TranscriptsOrder)
	return c.baseURL + apiPath + "/conversationtranscripts?" + q
}

// ErrPageTooLarge is returned (wrapped) for a response over MaxPageBytes.
var ErrPageTooLarge = errors.New("dataverse page too large")

// Page reads one page: the first page's URL or a next link. A next link is
// followed only on the environment's own host, so the bearer token never
// goes elsewhere.
func (r *TranscriptReader) Page(ctx context.Context, pageURL string) (*TranscriptPage, error) {
	if err := r.Client.sameHost(pageURL); err != nil {
		return nil, err
	}
	clk := r.Clock
	if clk == nil {
		clk = clock.System
	}
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		page, wait, err := r.pageOnce(ctx, pageURL)
		if err == nil {
			return page, nil
		}
		if wait < 0 || attempt >= max(r.MaxAttempts, 1) || ctx.Err() != nil {
			return nil, err
		}
		if wait == 0 {
			wait, backoff = backoff, min(backoff*2, time.Minute)
		}
		if r.MaxRetryWait > 0 && wait > r.MaxRetryWait {
			return nil, fmt.Errorf("%w; Retry-After %v is over the %v the reader waits: the next poll tries again", err, wait, r.MaxRetryWait)
		}
		if r.OnRetry != nil {
			r.OnRetry(attempt, wait, err)
		}
		if err := clk.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// sameHost refuses a URL outside the environment.
func (c *Client) sameHost(target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Scheme+"://"+u.Host != c.baseURL {
		return fmt.Errorf("refusing to follow %q: not on the environment %s (a next link must stay on its host)", redactQuery(target), c.baseURL)
	}
	return nil
}

func redactQuery(target string) string {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[:i] + "?..."
	}
	return target
}

// pageOnce makes one request. wait is how long to wait before a retry
// (0: the caller's backoff), or -1 when the error is not worth a retry.
func (r *TranscriptReader) pageOnce(ctx context.Context, pageURL string) (*TranscriptPage, time.Duration, error) {
	c := r.Client
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	if err != nil {
		return nil, -1, &TokenError{Scope: c.scope, Err: err}
	}
	req, err := newWebAPIRequest(ctx, pageURL, tok.Token, r.PageSize)
	if err != nil {
		return nil, -1, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("reading transcripts: %w", err) // network: retried
	}
	defer resp.Body.Close()
	c.noteDate(resp)
	if resp.StatusCode/100 == 3 {
		return nil, -1, errors.New(azureauth.DescribeRedirect("dataverse", resp) + "; check url")
	}
	if resp.StatusCode/100 != 2 {
		err := &TranscriptStatusError{statusError(resp)}
		switch resp.StatusCode {
		case http.StatusTooManyRequests:
			return nil, retryAfter(resp.Header.Get("Retry-After")), err
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if v := resp.Header.Get("Retry-After"); v != "" {
				return nil, retryAfter(v), err
			}
			return nil, 0, err
		}
		return nil, -1, err
	}
	limit := r.MaxPageBytes
	if limit <= 0 {
		limit = 1 << 40
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading transcripts: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, -1, fmt.Errorf("%w: the response is over %d bytes with %d rows a page requested; lower max_page_size (rows hold up to 1 MB of content each) or raise max_page_bytes",
			ErrPageTooLarge, limit, r.PageSize)
	}
	var page struct {
		Value    []TranscriptRow `json:"value"`
		NextLink string          `json:"@odata.nextLink"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		// A body cut in transit reads as unexpected end: worth another try.
		return nil, 0, fmt.Errorf("decoding a transcripts page (%d bytes): %w", len(body), err)
	}
	out := &TranscriptPage{Rows: page.Value, NextLink: page.NextLink, Bytes: len(body)}
	if v, ok := strings.CutPrefix(resp.Header.Get("Preference-Applied"), "odata.maxpagesize="); ok {
		out.PageSizeApplied, _ = strconv.Atoi(v)
	}
	return out, 0, nil
}

// TokenError is a failure to get a token: a credential problem, not
// retried within a poll.
type TokenError struct {
	Scope string
	Err   error
}

func (e *TokenError) Error() string { return fmt.Sprintf("getting a token for %s: %v", e.Scope, e.Err) }
func (e *TokenError) Unwrap() error { return e.Err }

// TranscriptStatusError is a non-2xx answer to a transcripts request; its
// message says what to fix for the transcripts table.
type TranscriptStatusError struct{ *StatusError }

func (e *TranscriptStatusError) Unwrap() error { return e.StatusError }

func (e *TranscriptStatusError) Error() string {
	msg := fmt.Sprintf("dataverse answered %d to a transcripts request", e.StatusCode)
	if e.Code != "" || e.Message != "" {
		msg += fmt.Sprintf(" (%s: %s)", e.Code, e.Message)
	}
	switch e.StatusCode {
	case http.StatusUnauthorized:
		msg += "; check the credential and that the token scope is the environment URL + /.default"
	case http.StatusForbidden:
		msg += "; the app registration needs an application user in the environment with Organization-level Read on the conversationtranscript and bot tables (for example the Bot Transcript Viewer role)"
	case http.StatusTooManyRequests:
		msg += "; Dataverse's service protection limits: waited out Retry-After"
	}
	return msg
}

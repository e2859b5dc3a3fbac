package appinsights_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
)

const (
	appID  = "9f3c5d2e-0000-4000-8000-00000000a001"
	apiKey = "legacy-key-for-the-stand-in"
)

var t0 = time.Date(2026, 2, 18, 12, 0, 0, 0, time.UTC)

// standIn serves rows over plain HTTP with an API key (the Entra ID flow is
// covered by the receiver's tests) and a client of it.
func standIn(t *testing.T, key string, rows ...fakeappinsights.Row) (*fakeappinsights.Server, *appinsights.Client) {
	t.Helper()
	srv, err := fakeappinsights.New(fakeappinsights.Options{AppID: appID, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	srv.SetNow(t0)
	srv.AddRows(rows...)
	c, err := appinsights.NewClient(appinsights.Settings{
		Endpoint: srv.URL(), ApplicationID: appID, HTTP: http.DefaultClient,
		Auth: &azureauth.Config{Type: azureauth.APIKey, APIKey: configopaque.String(key)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func message(id string, ingest time.Time, agent string) fakeappinsights.Row {
	return fakeappinsights.Row{
		Timestamp: ingest.Add(-time.Second), IngestionTime: ingest, Name: "BotMessageReceived", ItemID: id,
		CustomDimensions: `{"conversationId":"c"}`, RoleInstance: agent,
	}
}

// TestQueryRoundTrip: the stand-in parses the query the client builds and
// answers in the shape the decoder reads: ordered by ingestion time then
// item id, one row more than the limit, only the agents asked for.
func TestQueryRoundTrip(t *testing.T) {
	var rows []fakeappinsights.Row
	for i := range 5 {
		rows = append(rows, message(fmt.Sprintf("m%d", 4-i), t0.Add(-time.Hour), "HR Agent"))
	}
	rows = append(rows, message("other", t0.Add(-time.Hour), "IT Agent"), message("late", t0.Add(-time.Minute), "HR Agent"))
	srv, c := standIn(t, apiKey, rows...)

	q := appinsights.Query{EventNames: []string{"BotMessageReceived"}, Agents: []string{"HR Agent"},
		Lower: t0.Add(-2 * time.Hour), Upper: t0.Add(-3 * time.Minute), Limit: 3}
	var ids []string
	res, err := c.Query(context.Background(), q, func(r *appinsights.Row) { ids = append(ids, string(r.Bytes(r.ItemID))) })
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids, ","); got != "m0,m1,m2,m3" || res.Rows != 4 {
		t.Fatalf("rows %s (%d), want m0,m1,m2,m3: ordered by item id within one instant, limit+1, HR Agent only, before Upper", got, res.Rows)
	}
	req := srv.Requests()[0]
	if req.Take != q.Limit+1 || !req.IngestLower.Equal(q.Lower) || !req.IngestUpper.Equal(q.Upper) || req.Timespan != q.Timespan() {
		t.Fatalf("the stand-in read %+v", req)
	}
}

func TestQueryFailures(t *testing.T) {
	q := appinsights.Query{EventNames: []string{"BotMessageReceived"}, Lower: t0.Add(-time.Hour), Upper: t0, Limit: 10}
	cases := []struct {
		name                     string
		key                      string
		fault                    fakeappinsights.FaultKind
		auth, retryable, partial bool
		retryAfter               time.Duration
		wantText                 string
	}{
		{name: "refused key", key: "wrong", auth: true, wantText: "Data.Read"},
		{name: "throttled", key: apiKey, fault: fakeappinsights.Throttle, retryable: true, retryAfter: 7 * time.Second, wantText: "ThrottledError"},
		{name: "unavailable", key: apiKey, fault: fakeappinsights.Unavailable, retryable: true, wantText: "503"},
		{name: "partial", key: apiKey, fault: fakeappinsights.PartialResult, retryable: true, partial: true, wantText: appinsights.ErrorCodePartial},
		{name: "cut off", key: apiKey, fault: fakeappinsights.MalformedJSON, retryable: true, wantText: "unreadable query response"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := standIn(t, tc.key, message("a", t0.Add(-time.Minute), "A"), message("b", t0.Add(-time.Minute), "A"))
			if tc.fault != 0 {
				srv.InjectFault(1, fakeappinsights.Fault{Kind: tc.fault, RetryAfter: tc.retryAfter})
			}
			_, err := c.Query(context.Background(), q, func(*appinsights.Row) {})
			if err == nil || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("err = %v, want one naming %q", err, tc.wantText)
			}
			if appinsights.IsAuthError(err) != tc.auth || appinsights.IsRetryable(err) != tc.retryable ||
				appinsights.IsPartial(err) != tc.partial || appinsights.RetryAfter(err) != tc.retryAfter {
				t.Fatalf("err %v: auth %v retryable %v partial %v retry after %v", err,
					appinsights.IsAuthError(err), appinsights.IsRetryable(err), appinsights.IsPartial(err), appinsights.RetryAfter(err))
			}
		})
	}
}

func TestUnknownApplicationIsNotRetried(t *testing.T) {
	srv, _ := standIn(t, apiKey)
	c, err := appinsights.NewClient(appinsights.Settings{
		Endpoint: srv.URL(), ApplicationID: "someone-else", HTTP: http.DefaultClient,
		Auth: &azureauth.Config{Type: azureauth.APIKey, APIKey: apiKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Query(context.Background(), appinsights.Query{EventNames: []string{"x"}, Upper: t0, Limit: 1}, func(*appinsights.Row) {})
	if err == nil || appinsights.IsRetryable(err) || !strings.Contains(err.Error(), "does not know application_id someone-else") {
		t.Fatalf("err = %v, want a 404 naming application_id, not retryable", err)
	}
}

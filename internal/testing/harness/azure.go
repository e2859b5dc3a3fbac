package harness

import (
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeentra"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/localtls"
)

// The identity the stand-ins accept. Not secrets: they exist only in tests
// and in `make run`.
const (
	StandInAppID        = "00000000-0000-4000-8000-00000000a991"
	StandInTenantID     = "00000000-0000-4000-8000-0000000e7a17"
	StandInClientID     = "00000000-0000-4000-8000-00000000c11e"
	StandInClientSecret = "stand-in-client-secret" // #nosec G101 -- a test fixture
)

// Azure is the Application Insights query API and the Entra ID token endpoint
// stand-ins, both HTTPS with one throwaway CA. The collector authenticates
// with the real azidentity client-secret flow against the token endpoint and
// presents the token to the query API, which checks it.
type Azure struct {
	AppInsights *fakeappinsights.Server
	Entra       *fakeentra.Server
	// CAFile is the CA both stand-ins' certificates chain to (for AZURE_CA_FILE).
	CAFile string
}

// StartAzure starts both stand-ins and writes their CA to dir/stand-in-ca.pem.
func StartAzure(dir string) (*Azure, error) {
	bundle, err := localtls.New()
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "stand-in-ca.pem")
	if err := bundle.WriteCAFile(caFile); err != nil {
		return nil, err
	}
	entra, err := fakeentra.New(fakeentra.Options{
		TenantID: StandInTenantID, ClientID: StandInClientID, ClientSecret: StandInClientSecret, TLS: bundle,
	})
	if err != nil {
		return nil, err
	}
	appInsights, err := fakeappinsights.New(fakeappinsights.Options{
		AppID: StandInAppID, TokenValidator: entra.Valid, TLS: bundle,
	})
	if err != nil {
		entra.Close()
		return nil, err
	}
	return &Azure{AppInsights: appInsights, Entra: entra, CAFile: caFile}, nil
}

// Close stops both stand-ins.
func (a *Azure) Close() {
	a.AppInsights.Close()
	a.Entra.Close()
}

// Env points collector-config.yaml's receiver at the stand-ins.
func (a *Azure) Env() map[string]string {
	return map[string]string{
		"APPINSIGHTS_APP_ID":   StandInAppID,
		"APPINSIGHTS_ENDPOINT": a.AppInsights.URL(),
		"AZURE_TENANT_ID":      StandInTenantID,
		"AZURE_CLIENT_ID":      StandInClientID,
		"AZURE_CLIENT_SECRET":  StandInClientSecret,
		"AZURE_AUTHORITY_HOST": strings.TrimSuffix(a.Entra.URL(), "/") + "/",
		"AZURE_CA_FILE":        a.CAFile,
	}
}

// FastEnv tunes collector-config.yaml for a local run: poll every second,
// no ingestion delay (the stand-in's rows are queryable at once), turns
// emitted a few seconds after their conversation goes quiet.
func FastEnv() map[string]string {
	return map[string]string{
		"POLL_INTERVAL":   "1s",
		"INGESTION_DELAY": "0s",
		"REPLY_TIMEOUT":   "5s",
		"REORDER_WINDOW":  "0s",
		"LOG_LEVEL":       "info",
	}
}

// Env merges environment maps; later ones win.
func Env(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// CursorPassed reports whether the receiver has read, delivered and
// committed every row ingested at or before t: a successful answer's
// delivery moved its cursor past t, and a later query has started. The
// receiver issues its next query only after the pipeline accepted the
// previous window and the cursor was stored, so from then on a SIGKILL
// cannot make it fetch those rows as new.
func (a *Azure) CursorPassed(t time.Time) bool {
	reqs := a.AppInsights.Requests()
	for i := 0; i+1 < len(reqs); i++ { // the last request has no later one
		if deliveredUpTo(reqs[i]).After(t) {
			return true
		}
	}
	return false
}

// AnsweredUpTo is the furthest ingestion time up to which an answer of the
// stand-in gave the receiver every row (zero before any): rows ingested
// from then on have not been read yet, they wait in Application Insights.
func (a *Azure) AnsweredUpTo() time.Time {
	var furthest time.Time
	for _, req := range a.AppInsights.Requests() {
		if end := deliveredUpTo(req); end.After(furthest) {
			furthest = end
		}
	}
	return furthest
}

// deliveredUpTo is the exclusive end of what the receiver delivers of the
// answer to req (zero if it was not answered in full): the query's upper
// bound, or for an over-full answer the ingestion time of its last row. The
// receiver asks for one row more than max_rows_per_query, and when that row
// comes back it delivers only the rows ingested before it and moves its
// cursor there, not to the upper bound.
func deliveredUpTo(req fakeappinsights.Request) time.Time {
	switch {
	case req.Status != http.StatusOK || req.Fault != 0:
		return time.Time{}
	case req.Take > 0 && req.Rows == req.Take:
		return req.LastIngest
	default:
		return req.IngestUpper
	}
}

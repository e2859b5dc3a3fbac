package copilotstudioreceiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/cursor"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeentra"
)

var ctx = context.Background()

func TestClientSecretFlowOverHTTPSAndBearerChecked(t *testing.T) {
	h := newHarness(t)
	rows := spread("a", 5, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	r := h.start()
	r.poll(ctx)

	wantEachOnce(t, h.sink.itemIDs(), rows)
	if h.entra.TokenRequests() == 0 {
		t.Fatal("no token was requested from the Entra stand-in")
	}
	for _, req := range h.ai.Requests() {
		if req.Status != 200 {
			t.Fatalf("query answered %d: the stand-in did not accept the bearer token", req.Status)
		}
	}
	rec := h.sink.records()[0]
	if v, _ := rec.resource.Get(schema.AppInsightsAppID); v.Str() != testAppID {
		t.Errorf("resource app id = %q", v.Str())
	}
	if v, _ := rec.resource.Get(schema.AgentName); v.Str() != "HR Agent" {
		t.Errorf("resource agent = %q", v.Str())
	}
	if got := h.counter("polls", "outcome", outcomeSuccess); got != 1 {
		t.Errorf("successful polls = %d, want 1", got)
	}
	if got := h.counter("rows_received", "", ""); got != 5 {
		t.Errorf("rows received = %d, want 5", got)
	}
}

func TestTokenEndpointUntrustedWithoutCAFile(t *testing.T) {
	h := newHarness(t)
	h.ai.AddRows(spread("a", 2, t0.Add(-time.Hour))...)
	h.cfg.TLS = configtls.ClientConfig{}
	r := h.start()
	r.poll(ctx)
	if n := len(h.sink.records()); n != 0 {
		t.Fatalf("%d records delivered over an untrusted TLS connection", n)
	}
	if got := h.counter("polls", "outcome", outcomeAuth); got != 1 {
		t.Fatalf("auth_error polls = %d, want 1", got)
	}
}

func TestRestartResumesFromStoredCursor(t *testing.T) {
	h := newHarness(t)
	first := spread("a", 10, t0.Add(-2*time.Hour))
	// Inside the overlap of the first cursor (t0-3m): fetched again after
	// the restart and recognised by the item ids stored with the cursor.
	inOverlap := userMessage("overlap-1", t0.Add(-3*time.Minute-20*time.Second), "conv-o", "again?")
	first = append(first, inOverlap)
	h.ai.AddRows(first...)

	r1 := h.start()
	r1.poll(ctx)
	cursor := r1.state.Cursor
	if want := t0.Add(-h.cfg.IngestionDelay); !cursor.Equal(want) {
		t.Fatalf("cursor after first poll = %v, want %v", cursor, want)
	}
	if err := r1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	second := spread("b", 10, t0.Add(time.Minute))
	late := userMessage("late-1", cursor.Add(-30*time.Second), "conv-l", "I arrived late")
	h.ai.AddRows(append(second, late)...)
	h.ai.Advance(20 * time.Minute)
	before := h.ai.RequestCount()

	r2 := h.start()
	if !r2.state.Cursor.Equal(cursor) {
		t.Fatalf("restarted receiver resumed at %v, want %v", r2.state.Cursor, cursor)
	}
	r2.poll(ctx)

	wantEachOnce(t, h.sink.itemIDs(), first, second, []fakeappinsights.Row{late})
	q := h.ai.Requests()[before].Query
	if !strings.Contains(q, appinsights.KQLTime(cursor.Add(-h.cfg.Overlap))) {
		t.Errorf("first query after restart does not start at cursor - overlap:\n%s", q)
	}
	if got := h.counter("rows_dropped", "reason", reasonDuplicate); got != 1 {
		t.Errorf("duplicates dropped after restart = %d, want 1 (the overlap row)", got)
	}
}

func TestLateRowInsideOverlapDeliveredOnce(t *testing.T) {
	h := newHarness(t)
	early := []fakeappinsights.Row{
		userMessage("a", t0.Add(-3*time.Minute-40*time.Second), "conv-1", "first"),
		userMessage("b", t0.Add(-10*time.Minute), "conv-1", "second"),
	}
	h.ai.AddRows(early...)
	r := h.start()
	r.poll(ctx)

	// Ingested before the cursor (t0-3m) but only visible now.
	late := userMessage("late", t0.Add(-3*time.Minute-10*time.Second), "conv-1", "late")
	h.ai.AddRows(late)
	h.ai.Advance(10 * time.Minute)
	r.poll(ctx)

	wantEachOnce(t, h.sink.itemIDs(), early, []fakeappinsights.Row{late})
	if got := h.counter("rows_dropped", "reason", reasonDuplicate); got != 1 {
		t.Errorf("duplicates dropped = %d, want 1 (row a, fetched again by the overlap)", got)
	}
}

func TestWindowOverMaxRowsSplitAndFullyDelivered(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxRowsPerQuery = 10
	rows := spread("a", 35, t0.Add(-time.Hour))
	// Four rows share one ingestion instant that straddles a cut.
	same := t0.Add(-time.Hour + 9*time.Second)
	for i := range 4 {
		rows = append(rows, userMessage(fmt.Sprintf("same-%d", i), same, "conv-s", "x"))
	}
	h.ai.AddRows(rows...)
	r := h.start()
	r.poll(ctx)

	wantEachOnce(t, h.sink.itemIDs(), rows)
	overflowed := false
	for _, req := range h.ai.Requests() {
		if req.Rows > h.cfg.MaxRowsPerQuery+1 {
			t.Fatalf("a query returned %d rows: take is not max_rows_per_query+1", req.Rows)
		}
		overflowed = overflowed || req.Rows == h.cfg.MaxRowsPerQuery+1
	}
	if !overflowed {
		t.Fatal("no query overflowed: the window was never split")
	}
	// An over-full result is used up to its cut, not fetched again: 39 rows
	// at up to 10 per query take 5 queries (the last one not over-full).
	if n := h.ai.RequestCount(); n > 5 {
		t.Errorf("%d queries for 39 rows at 10 per query: over-full windows were fetched twice", n)
	}
	if got := h.counter("polls", "outcome", outcomeSuccess); got != 1 {
		t.Errorf("successful polls = %d, want 1", got)
	}
}

func TestMoreRowsInOneInstantThanMaxRowsStillDelivered(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxRowsPerQuery = 3
	var rows []fakeappinsights.Row
	for i := range 5 {
		rows = append(rows, userMessage(fmt.Sprintf("same-%d", i), t0.Add(-time.Hour), "conv-s", "x"))
	}
	rows = append(rows, spread("after", 2, t0.Add(-30*time.Minute))...)
	h.ai.AddRows(rows...)
	r := h.start()
	r.poll(ctx)

	wantEachOnce(t, h.sink.itemIDs(), rows)
	if h.logs.FilterMessageSnippet("share one ingestion time").Len() == 0 {
		t.Error("no warning about rows sharing one ingestion time")
	}
}

func TestThrottleRetryAfterHonoured(t *testing.T) {
	h := newHarness(t)
	rows := spread("a", 3, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	h.ai.InjectFault(1, fakeappinsights.Fault{Kind: fakeappinsights.Throttle, RetryAfter: 7 * time.Second})
	r := h.start()
	r.poll(ctx)

	wantEachOnce(t, h.sink.itemIDs(), rows)
	if s := h.clock.sleepsSoFar(); len(s) != 1 || s[0] != 7*time.Second {
		t.Fatalf("waits = %v, want [7s] from Retry-After", s)
	}
}

func TestServerErrorsRetriedWithBackoff(t *testing.T) {
	h := newHarness(t)
	rows := spread("a", 3, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	h.ai.InjectFault(1, fakeappinsights.Fault{Kind: fakeappinsights.InternalError})
	h.ai.InjectFault(1, fakeappinsights.Fault{Kind: fakeappinsights.GatewayTimeout})
	h.ai.InjectFault(1, fakeappinsights.Fault{Kind: fakeappinsights.Unavailable})
	r := h.start()
	r.poll(ctx)

	wantEachOnce(t, h.sink.itemIDs(), rows)
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}
	if s := h.clock.sleepsSoFar(); fmt.Sprint(s) != fmt.Sprint(want) {
		t.Fatalf("waits = %v, want %v", s, want)
	}
}

func TestRetriesExhaustedKeepCursorForNextPoll(t *testing.T) {
	h := newHarness(t)
	rows := spread("a", 3, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	h.ai.InjectFault(maxQueryAttempts, fakeappinsights.Fault{Kind: fakeappinsights.InternalError})
	r := h.start()
	r.poll(ctx)
	if n := len(h.sink.records()); n != 0 || !r.state.Cursor.IsZero() {
		t.Fatalf("after failed poll: %d records, cursor %v; want none and no cursor", n, r.state.Cursor)
	}
	if got := h.counter("polls", "outcome", outcomeQuery); got != 1 {
		t.Fatalf("query_error polls = %d, want 1", got)
	}
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), rows)
}

func TestPartialResultIsNotTakenAsComplete(t *testing.T) {
	h := newHarness(t)
	rows := spread("a", 8, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	h.ai.InjectFault(maxQueryAttempts, fakeappinsights.Fault{Kind: fakeappinsights.PartialResult})
	r := h.start()
	r.poll(ctx)

	if n := len(h.sink.records()); n != 0 {
		t.Fatalf("%d records of a partial result delivered", n)
	}
	if !r.state.Cursor.IsZero() {
		t.Fatalf("cursor moved to %v on a partial result", r.state.Cursor)
	}
	if got := h.counter("polls", "outcome", outcomePartial); got != 1 {
		t.Fatalf("partial_result polls = %d, want 1", got)
	}
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), rows)
}

func TestPartialResultRetriedWithinPoll(t *testing.T) {
	h := newHarness(t)
	rows := spread("a", 8, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	h.ai.InjectFault(1, fakeappinsights.Fault{Kind: fakeappinsights.PartialResult})
	r := h.start()
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), rows)
	if h.sink.calls != 1 {
		t.Fatalf("consumer called %d times, want once (the partial answer must not be delivered)", h.sink.calls)
	}
}

func TestMalformedJSONBodyRetried(t *testing.T) {
	h := newHarness(t)
	rows := spread("a", 6, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	h.ai.InjectFault(1, fakeappinsights.Fault{Kind: fakeappinsights.MalformedJSON})
	r := h.start()
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), rows)
	retries := h.logs.FilterMessageSnippet("retrying").Filter(func(e observer.LoggedEntry) bool {
		return strings.Contains(entryText(e), "unreadable query response")
	})
	if retries.Len() != 1 {
		t.Error("the malformed body was not reported as unreadable before the retry")
	}
}

func TestAuthFailureNamesCredentialNotSecret(t *testing.T) {
	h := newHarness(t)
	rows := spread("a", 2, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	h.entra.FailNext(1, fakeentra.InvalidSecret)
	r := h.start()
	r.poll(ctx)

	if n := len(h.sink.records()); n != 0 {
		t.Fatalf("%d records delivered without a token", n)
	}
	if got := h.counter("polls", "outcome", outcomeAuth); got != 1 {
		t.Fatalf("auth_error polls = %d, want 1", got)
	}
	errs := h.logs.FilterMessageSnippet("authentication failed").All()
	if len(errs) != 1 {
		t.Fatalf("want one authentication error log, got %d", len(errs))
	}
	text := entryText(errs[0])
	for _, want := range []string{"client_secret", testTenant, testClientID, "AADSTS7000215", "Value (not its Secret ID)"} {
		if !strings.Contains(text, want) {
			t.Errorf("auth error lacks %q:\n%s", want, text)
		}
	}
	assertSecretAbsent(t, h.logs, testSecret)

	// Retried at the next poll.
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), rows)
}

func TestWrongSecretNeverLogged(t *testing.T) {
	h := newHarness(t)
	const wrong = "Wr0ng~secret.value-ALSO-PRIVATE"
	h.cfg.Auth.ClientSecret = configopaque.String(wrong)
	h.ai.AddRows(spread("a", 2, t0.Add(-time.Hour))...)
	r := h.start()
	r.poll(ctx)
	if got := h.counter("polls", "outcome", outcomeAuth); got != 1 {
		t.Fatalf("auth_error polls = %d, want 1", got)
	}
	assertSecretAbsent(t, h.logs, wrong)
	if s := fmt.Sprintf("%+v", h.cfg); strings.Contains(s, wrong) {
		t.Fatal("the secret is printed with the config")
	}
}

func TestRejectedAPIKeyExplainsPermissionsAndWarnsDeprecated(t *testing.T) {
	h := newHarness(t)
	const key = "legacy-api-key-0123456789abcdef"
	h.cfg.Auth = azureauth.Config{Type: azureauth.APIKey, APIKey: configopaque.String(key)}
	h.ai.AddRows(spread("a", 2, t0.Add(-time.Hour))...)
	r := h.start()
	if h.logs.FilterMessageSnippet("deprecated").Len() != 1 {
		t.Error("no deprecation warning for api_key")
	}
	r.poll(ctx)
	errs := h.logs.FilterMessageSnippet("authentication failed").All()
	if len(errs) != 1 || !strings.Contains(entryText(errs[0]), "Data.Read") || !strings.Contains(entryText(errs[0]), "403") {
		t.Fatalf("want one error naming 403 and the Data.Read permission, got %v", errs)
	}
	assertSecretAbsent(t, h.logs, key)
}

func TestConsumerErrorKeepsCursor(t *testing.T) {
	h := newHarness(t)
	rows := spread("a", 4, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	h.sink.refuseNext(1)
	r := h.start()
	r.poll(ctx)

	if got := h.counter("polls", "outcome", outcomeConsumer); got != 1 {
		t.Fatalf("consumer_error polls = %d, want 1", got)
	}
	if !r.state.Cursor.IsZero() {
		t.Fatalf("cursor moved to %v although the consumer refused the window", r.state.Cursor)
	}
	if cp := h.storedCheckpoint(r); cp != nil {
		t.Fatalf("a cursor was stored although the consumer refused the window: %+v", cp)
	}
	h.ai.Advance(10 * time.Minute)
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), rows)
	if cp := h.storedCheckpoint(r); cp == nil || !cp.Cursor.Equal(h.ai.Now().Add(-h.cfg.IngestionDelay)) {
		t.Fatalf("stored cursor after delivery = %+v", cp)
	}
}

func TestStalledQueryEndsWhenPollIsCancelled(t *testing.T) {
	h := newHarness(t)
	h.ai.AddRows(spread("a", 2, t0.Add(-time.Hour))...)
	h.ai.InjectFault(1, fakeappinsights.Fault{Kind: fakeappinsights.Stall})
	r := h.start()
	pollCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.poll(pollCtx); close(done) }()
	waitFor(t, func() bool { return h.ai.RequestCount() == 1 })
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // failure guard only
		t.Fatal("poll did not end after cancellation")
	}
	if len(h.sink.records()) != 0 || !r.state.Cursor.IsZero() {
		t.Fatal("a cancelled poll delivered rows or moved the cursor")
	}
}

func TestStartPollsInBackgroundAndShutdownStops(t *testing.T) {
	h := newHarness(t)
	rows := spread("a", 3, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	r, err := newLogsReceiver(h.cfg, receiverSettings(t), h.sink)
	if err != nil {
		t.Fatal(err)
	}
	r.clock = standInTime{clock.System, h.ai}
	if err := r.Start(ctx, h.host); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(h.sink.records()) == 3 })
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wantEachOnce(t, h.sink.itemIDs(), rows)
}

func TestAgentFilterWithQuotedName(t *testing.T) {
	h := newHarness(t)
	odd := `Ops "Night" Agent\1`
	keep := userMessage("keep", t0.Add(-time.Hour), "c1", "x")
	keep.RoleInstance = odd
	other := userMessage("other", t0.Add(-time.Hour), "c2", "y")
	h.ai.AddRows(keep, other)
	h.cfg.Agents = []string{odd}
	r := h.start()
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), []fakeappinsights.Row{keep})
}

// standInTime is the real clock reading the stand-in's time.
type standInTime struct {
	clock.Clock
	ai *fakeappinsights.Server
}

func (c standInTime) Now() time.Time { return c.ai.Now() }

// storageClient opens the client the receiver uses, on the same extension.
func (h *harness) storageClient() storage.Client {
	h.t.Helper()
	ext := h.host.Extension.(storage.Extension)
	c, err := ext.GetClient(ctx, component.KindReceiver, component.MustNewID("copilotstudio"), "")
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) storedCheckpoint(r *logsReceiver) *cursor.Checkpoint {
	h.t.Helper()
	cp, err := cursor.Load(ctx, r.storage, storageKey(testAppID))
	if err != nil {
		h.t.Fatal(err)
	}
	return cp
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // failure guard only
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// entryText is a log entry's message and fields as text.
func entryText(e observer.LoggedEntry) string {
	var b strings.Builder
	b.WriteString(e.Message)
	for k, v := range e.ContextMap() {
		fmt.Fprintf(&b, " %s=%v", k, v)
	}
	return b.String()
}

func assertSecretAbsent(t *testing.T, logs *observer.ObservedLogs, secret string) {
	t.Helper()
	for _, e := range logs.All() {
		if strings.Contains(entryText(e), secret) {
			t.Fatalf("secret found in log entry: %q", e.Message)
		}
	}
}

func TestWorkloadIdentityFlow(t *testing.T) {
	h := newHarness(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testFederatedToken), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cfg.Auth = azureauth.Config{
		Type: azureauth.WorkloadIdentity, TenantID: testTenant, ClientID: testClientID,
		FederatedTokenFile: tokenFile, AuthorityHost: h.entra.URL(),
	}
	rows := spread("a", 3, t0.Add(-time.Hour))
	h.ai.AddRows(rows...)
	r := h.start()
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), rows)

	// A token the federated credential does not match is an auth error.
	if err := os.WriteFile(tokenFile, []byte("someone-else"), 0o600); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t)
	h2.cfg.Auth = h.cfg.Auth
	h2.cfg.Auth.AuthorityHost = h2.entra.URL()
	h2.ai.AddRows(rows...)
	r2 := h2.start()
	r2.poll(ctx)
	if got := h2.counter("polls", "outcome", outcomeAuth); got != 1 {
		t.Fatalf("auth_error polls = %d, want 1", got)
	}
	if errs := h2.logs.FilterMessageSnippet("authentication failed").All(); len(errs) != 1 ||
		!strings.Contains(entryText(errs[0]), "AADSTS700213") || !strings.Contains(entryText(errs[0]), "federated") {
		t.Fatalf("want one error naming AADSTS700213 and the federated credential, got %v", errs)
	}
}

func TestStartFailsClearly(t *testing.T) {
	h := newHarness(t)
	missing := component.MustNewIDWithName("file_storage", "missing")
	h.cfg.StorageID = &missing
	r, err := newLogsReceiver(h.cfg, receiverSettings(t), h.sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, h.host); err == nil || !strings.Contains(err.Error(), `"file_storage/missing" is not configured`) {
		t.Fatalf("missing storage extension: %v", err)
	}

	h = newHarness(t)
	h.cfg.Auth = azureauth.Config{Type: azureauth.ClientCertificate, TenantID: testTenant, ClientID: testClientID,
		CertificatePath: filepath.Join(t.TempDir(), "nope.pem"), CertificatePassword: "pfx-password-123"}
	r, _ = newLogsReceiver(h.cfg, receiverSettings(t), h.sink)
	err = r.Start(ctx, h.host)
	if err == nil || !strings.Contains(err.Error(), "auth.certificate_path") || strings.Contains(err.Error(), "pfx-password-123") {
		t.Fatalf("unreadable certificate: %v", err)
	}
	_ = r.Shutdown(ctx)
}

func TestOverlapFullerThanMaxRows(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxRowsPerQuery = 10
	// 30 rows in the 40 s before the first cursor (t0-3m): all inside the
	// next poll's overlap, three times max_rows_per_query.
	first := spread("a", 30, t0.Add(-3*time.Minute-40*time.Second))
	for i := range first {
		first[i].IngestionTime = t0.Add(-3*time.Minute - 40*time.Second + time.Duration(i)*time.Second)
	}
	h.ai.AddRows(first...)
	r := h.start()
	r.poll(ctx)
	cursor := r.state.Cursor

	later := spread("b", 5, t0.Add(time.Minute))
	h.ai.AddRows(later...)
	h.ai.Advance(10 * time.Minute)
	r.poll(ctx)

	wantEachOnce(t, h.sink.itemIDs(), first, later)
	if got := h.counter("rows_dropped", "reason", reasonDuplicate); got != 30 {
		t.Errorf("duplicates = %d, want 30 (the whole overlap read again)", got)
	}
	if !r.state.Cursor.After(cursor) {
		t.Errorf("cursor %v did not move past %v", r.state.Cursor, cursor)
	}
	if got := h.storedCheckpoint(r); !got.Cursor.Equal(r.state.Cursor) {
		t.Errorf("stored cursor %v, in memory %v", got.Cursor, r.state.Cursor)
	}
}

func TestEventTimeLongBeforeIngestionStillInTimespan(t *testing.T) {
	h := newHarness(t)
	r := h.start()
	r.poll(ctx) // the cursor now stands at t0 - ingestion_delay
	old := userMessage("old", t0.Add(time.Minute), "conv-old", "sent offline, uploaded a day later")
	old.Timestamp = old.IngestionTime.Add(-30 * time.Hour)
	h.ai.AddRows(old)
	h.ai.Advance(10 * time.Minute)
	r.poll(ctx)
	wantEachOnce(t, h.sink.itemIDs(), []fakeappinsights.Row{old})
}

func TestTokenExchangeValueNeverLogged(t *testing.T) {
	h := newHarness(t)
	const token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.live-entra-token.signature"
	value := `{"id":"x","connectionName":"sso","token":"` + token + `"}`
	good := row("good", t0.Add(-time.Hour), schema.EventMessageReceived, map[string]string{
		"type": "invoke", "name": "signin/tokenExchange", "value": value, "conversationId": "c1",
	})
	// Malformed (no conversationId): logged by item id, its value never.
	bad := row("bad", t0.Add(-time.Hour), schema.EventMessageReceived, map[string]string{
		"type": "invoke", "name": "signin/tokenExchange", "value": value,
	})
	h.ai.AddRows(good, bad)
	r := h.start()
	r.poll(ctx)

	recs := h.sink.records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	if v, _ := recs[0].record.Attributes().Get(schema.ActivityValue); v.Str() != value {
		t.Fatalf("activity value = %q, want it verbatim", v.Str())
	}
	if h.logs.FilterField(zap.String("item_id", "bad")).Len() != 1 {
		t.Fatal("the malformed invoke was not logged by its item id")
	}
	assertSecretAbsent(t, h.logs, token)
}

// batchSizes returns the record count of each accepted ConsumeLogs call.
func (s *sink) batchSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	sizes := make([]int, len(s.batches))
	for i, ld := range s.batches {
		sizes[i] = ld.LogRecordCount()
	}
	return sizes
}

func (s *sink) itemIDsInOrder() []string {
	var ids []string
	for _, r := range s.records() {
		v, _ := r.record.Attributes().Get(schema.ItemID)
		ids = append(ids, v.Str())
	}
	return ids
}

func idsOf(rows []fakeappinsights.Row) []string {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ItemID
	}
	return ids
}

// noConversation is a message row without conversationId: dropped.
func noConversation(id string, ingest time.Time) fakeappinsights.Row {
	return row(id, ingest, schema.EventMessageReceived, map[string]string{"type": "message", "text": "x"})
}

func TestWindowPassedOnInBatchesInRowOrder(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxBatchSize = 3
	rows := spread("a", 10, t0.Add(-time.Hour))
	h.ai.AddRows(append(rows, noConversation("bad", t0.Add(-time.Hour+5500*time.Millisecond)))...)
	r := h.start()
	r.poll(ctx)

	// 10 records, 3 per batch; the dropped row takes no place in a batch.
	if got := fmt.Sprint(h.sink.batchSizes()); got != "[3 3 3 1]" {
		t.Fatalf("records per ConsumeLogs = %s, want [3 3 3 1]", got)
	}
	if got, want := strings.Join(h.sink.itemIDsInOrder(), ","), strings.Join(idsOf(rows), ","); got != want {
		t.Fatalf("records reached the consumer as\n%s\nwant the rows' order\n%s", got, want)
	}
	if cp := h.storedCheckpoint(r); cp == nil || !cp.Cursor.Equal(h.ai.Now().Add(-h.cfg.IngestionDelay)) {
		t.Fatalf("stored cursor after delivery = %+v", cp)
	}
	if got := h.counter("rows_dropped", "reason", reasonNoConversation); got != 1 {
		t.Errorf("rows dropped for no conversation id = %d, want 1", got)
	}
}

func TestRefusedBatchKeepsCursorAndWindowIsReadAgain(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxBatchSize = 3
	rows := spread("a", 8, t0.Add(-time.Hour))
	h.ai.AddRows(append(rows, noConversation("bad", t0.Add(-time.Hour+time.Second/2)))...)
	h.sink.refuseAfter(1, 1) // the second batch is refused
	r := h.start()
	r.poll(ctx)

	if got := h.counter("polls", "outcome", outcomeConsumer); got != 1 {
		t.Fatalf("consumer_error polls = %d, want 1", got)
	}
	if h.sink.calls != 2 {
		t.Errorf("ConsumeLogs called %d times, want 2: no batch goes on after a refused one", h.sink.calls)
	}
	if got := strings.Join(h.sink.itemIDsInOrder(), ","); got != "a-000,a-001,a-002" {
		t.Errorf("accepted before the refusal: %s", got)
	}
	if !r.state.Cursor.IsZero() || h.storedCheckpoint(r) != nil {
		t.Fatalf("cursor moved (%v) or was stored although a batch of the window was refused", r.state.Cursor)
	}
	if got := h.counter("rows_dropped", "", ""); got != 0 {
		t.Errorf("rows_dropped = %d before the window was committed, want 0", got)
	}

	h.ai.Advance(10 * time.Minute)
	r.poll(ctx)
	got := h.sink.itemIDs()
	for i, row := range rows {
		want := 1
		if i < 3 {
			want = 2 // the batch accepted before the refusal comes again with its window
		}
		if got[row.ItemID] != want {
			t.Errorf("item %s delivered %d times, want %d", row.ItemID, got[row.ItemID], want)
		}
	}
	if cp := h.storedCheckpoint(r); cp == nil || !cp.Cursor.Equal(h.ai.Now().Add(-h.cfg.IngestionDelay)) {
		t.Fatalf("stored cursor after delivery = %+v", cp)
	}
	if got := h.counter("rows_dropped", "reason", reasonNoConversation); got != 1 {
		t.Errorf("rows dropped for no conversation id = %d, want 1 (counted once, when the window is committed)", got)
	}
}

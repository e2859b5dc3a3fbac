package copilotstudioreceiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeentra"
	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/localtls"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudioreceiver/internal/metadatatest"
)

const (
	testAppID    = "9f3c5d2e-0000-4000-8000-00000000a001"
	testTenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testClientID = "3b1f6a9e-1111-4222-8333-444455556666"
	testSecret   = "Zx8Q~sup3r.s3cret-value_DO-NOT-LOG"
	// testFederatedToken stands for a Kubernetes service account token.
	testFederatedToken = "eyJhbGciOiJSUzI1NiJ9.service-account-token.sig"
)

// t0 is the stand-in's "now" when a harness starts.
var t0 = time.Date(2026, 2, 18, 12, 0, 0, 0, time.UTC)

// harness runs the receiver against the real azidentity flow (fakeentra over
// HTTPS, CA trusted through tls.ca_file), the query API stand-in, a real
// file_storage extension, an observed logger and test telemetry.
type harness struct {
	t       *testing.T
	entra   *fakeentra.Server
	ai      *fakeappinsights.Server
	cfg     *Config
	sink    *sink
	host    *testenv.StorageHost
	logs    *observer.ObservedLogs
	tel     *componenttest.Telemetry
	dataDir string
	tls     *localtls.Bundle
	// clock is the receiver's: the stand-in's time, stepped by its sleeps
	// (start) or moved by the test (startRunning).
	clock *fakeClock
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	bundle, err := localtls.New()
	if err != nil {
		t.Fatal(err)
	}
	entra, err := fakeentra.New(fakeentra.Options{
		TenantID: testTenant, ClientID: testClientID, ClientSecret: testSecret, FederatedToken: testFederatedToken, TLS: bundle,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(entra.Close)
	ai, err := fakeappinsights.New(fakeappinsights.Options{AppID: testAppID, TokenValidator: entra.Valid, TLS: bundle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ai.Close)
	ai.SetNow(t0)

	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := bundle.WriteCAFile(caFile); err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.ApplicationID = testAppID
	cfg.Endpoint = ai.URL()
	cfg.TLS.CAFile = caFile
	cfg.Auth = azureauth.Config{
		Type: azureauth.ClientSecret, TenantID: testTenant, ClientID: testClientID,
		ClientSecret: configopaque.String(testSecret), AuthorityHost: entra.URL(),
	}
	storageID := testenv.StorageID
	cfg.StorageID = &storageID
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, entra: entra, ai: ai, cfg: cfg, sink: &sink{}, dataDir: filepath.Join(dir, "storage"), tls: bundle}
	h.host = h.newStorageHost()
	return h
}

func (h *harness) newStorageHost() *testenv.StorageHost {
	h.t.Helper()
	if err := os.MkdirAll(h.dataDir, 0o700); err != nil {
		h.t.Fatal(err)
	}
	return testenv.StartFileStorage(h.t, h.dataDir)
}

// start creates and starts a receiver with manual polling and the
// stand-in's clock; a sleep advances that clock instead of waiting.
func (h *harness) start() *logsReceiver {
	h.t.Helper()
	h.clock = newFakeClock(h.ai, true)
	return h.startWith(true)
}

// startRunning creates and starts a receiver that polls (and reads
// Dataverse) on its own, on the stand-in's clock, which only the test moves
// (h.clock.Advance).
func (h *harness) startRunning() *logsReceiver {
	h.t.Helper()
	h.clock = newFakeClock(h.ai, false)
	return h.startWith(false)
}

func (h *harness) startWith(manualPolling bool) *logsReceiver {
	h.t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	h.tel = componenttest.NewTelemetry()
	h.t.Cleanup(func() { _ = h.tel.Shutdown(context.Background()) })
	set := metadatatest.NewSettings(h.tel)
	set.Logger = zap.New(core)
	r, err := newLogsReceiver(h.cfg, set, h.sink)
	if err != nil {
		h.t.Fatal(err)
	}
	r.manualPolling = manualPolling
	r.tokenRetry = policy.RetryOptions{MaxRetries: -1}
	r.clock = h.clock
	if err := r.Start(context.Background(), h.host); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return r
}

// counter sums an int counter's data points whose attribute key has value
// (all points when key is "").
func (h *harness) counter(name, key, value string) int64 {
	h.t.Helper()
	m, err := h.tel.GetMetric("otelcol_copilotstudio_" + name)
	if err != nil {
		return 0
	}
	var total int64
	for _, dp := range sumPoints(m) {
		if key == "" {
			total += dp.Value
			continue
		}
		if v, ok := dp.Attributes.Value(attrKey(key)); ok && v.AsString() == value {
			total += dp.Value
		}
	}
	return total
}

// sink is a logs consumer that records what it accepted and can be told to
// refuse the next calls.
type sink struct {
	mu      sync.Mutex
	batches []plog.Logs
	refuse  int
	// accept is how many calls are accepted before refuse applies.
	accept int
	calls  int
}

func (s *sink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *sink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.accept > 0 {
		s.accept--
	} else if s.refuse > 0 {
		s.refuse--
		return fmt.Errorf("downstream queue is full")
	}
	s.batches = append(s.batches, ld)
	return nil
}

// refuseAfter accepts the next accepted calls, then refuses n.
func (s *sink) refuseAfter(accepted, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accept, s.refuse = accepted, n
}

func (s *sink) refuseNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse += n
}

// records returns every accepted record with its resource.
func (s *sink) records() []recordWithResource {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []recordWithResource
	for _, ld := range s.batches {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, recordWithResource{rl.Resource().Attributes(), lrs.At(k)})
				}
			}
		}
	}
	return out
}

// itemIDs counts accepted records per item id.
func (s *sink) itemIDs() map[string]int {
	ids := map[string]int{}
	for _, r := range s.records() {
		v, _ := r.record.Attributes().Get(schema.ItemID)
		ids[v.Str()]++
	}
	return ids
}

type recordWithResource struct {
	resource pcommon.Map
	record   plog.LogRecord
}

func attrKey(k string) attribute.Key { return attribute.Key(k) }

func sumPoints(m metricdata.Metrics) []metricdata.DataPoint[int64] {
	if s, ok := m.Data.(metricdata.Sum[int64]); ok {
		return s.DataPoints
	}
	return nil
}

// row makes a message row: ingested at ingest, event 2s earlier.
func row(id string, ingest time.Time, name string, dims map[string]string) fakeappinsights.Row {
	return fakeappinsights.Row{
		Timestamp: ingest.Add(-2 * time.Second), IngestionTime: ingest, Name: name, ItemID: id,
		CustomDimensions: fakeappinsights.Dimensions(dims), RoleInstance: "HR Agent",
	}
}

// userMessage is a BotMessageReceived row in conversation conv.
func userMessage(id string, ingest time.Time, conv, text string) fakeappinsights.Row {
	return row(id, ingest, schema.EventMessageReceived, map[string]string{
		"type": "message", "channelId": "msteams", "conversationId": conv, "activityId": "act-" + id,
		"fromId": "29:user", "text": text, "DesignMode": "False",
	})
}

// spread makes n user messages ingested one second apart from first.
func spread(prefix string, n int, first time.Time) []fakeappinsights.Row {
	rows := make([]fakeappinsights.Row, n)
	for i := range rows {
		rows[i] = userMessage(fmt.Sprintf("%s-%03d", prefix, i), first.Add(time.Duration(i)*time.Second), "conv-"+prefix, "hello")
	}
	return rows
}

func wantEachOnce(t *testing.T, got map[string]int, rows ...[]fakeappinsights.Row) {
	t.Helper()
	want := 0
	for _, rs := range rows {
		for _, r := range rs {
			want++
			if got[r.ItemID] != 1 {
				t.Errorf("item %s delivered %d times, want once", r.ItemID, got[r.ItemID])
			}
		}
	}
	if len(got) != want {
		t.Errorf("delivered %d distinct items, want %d", len(got), want)
	}
}

func receiverSettings(t *testing.T) receiver.Settings {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return metadatatest.NewSettings(tel)
}

package copilotstudiotranscriptsreceiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeentra"
	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/localtls"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiotranscriptsreceiver/internal/metadatatest"
)

const (
	testTenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testClientID = "3b1f6a9e-1111-4222-8333-444455556666"
	testSecret   = "Zx8Q~sup3r.s3cret-value_DO-NOT-LOG"

	botHR = "198eca5f-0000-4000-8000-0000000000a1"
	botIT = "198eca5f-0000-4000-8000-0000000000b2"
	// botGone is in transcripts but no longer in the bots table.
	botGone = "198eca5f-0000-4000-8000-0000000000c3"
)

// t0 is the stand-in's "now" when a harness starts.
var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

var testBots = []fakedataverse.Bot{
	{BotID: botHR, Name: "HR Agent", SchemaName: "cr44e_hrAgent", AuthenticationMode: 2, PublishedOn: "2026-02-01T09:00:00Z"},
	{BotID: botIT, Name: "IT Helpdesk", SchemaName: "crx_helpdesk", AuthenticationMode: 1, PublishedOn: "2026-02-02T09:00:00Z"},
}

// harness runs the receiver against the real azidentity flow (fakeentra over
// HTTPS, CA trusted through tls.ca_file), the Dataverse stand-in, a real
// file_storage extension, an observed logger and test telemetry.
type harness struct {
	t       *testing.T
	entra   *fakeentra.Server
	dv      *fakedataverse.Server
	cfg     *Config
	sink    *sink
	host    *testenv.StorageHost
	logs    *observer.ObservedLogs
	tel     *componenttest.Telemetry
	dataDir string

	mu     sync.Mutex
	sleeps []time.Duration
	// skew is how far the receiver's clock is ahead of the stand-in's.
	skew time.Duration
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	bundle, err := localtls.New()
	if err != nil {
		t.Fatal(err)
	}
	entra, err := fakeentra.New(fakeentra.Options{TenantID: testTenant, ClientID: testClientID, ClientSecret: testSecret, TLS: bundle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(entra.Close)
	dv := fakedataverse.New(fakedataverse.Options{TokenValidator: entra.Valid, EnvironmentID: "env-0001", TLS: bundle.ServerTLSConfig()}, testBots...)
	t.Cleanup(dv.Close)
	dv.SetNow(t0)

	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := bundle.WriteCAFile(caFile); err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.URL = dv.URL
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
	h := &harness{t: t, entra: entra, dv: dv, cfg: cfg, sink: &sink{}, dataDir: filepath.Join(dir, "storage")}
	if err := os.MkdirAll(h.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	h.host = testenv.StartFileStorage(t, h.dataDir)
	return h
}

// standInClock is the stand-in's clock: a sleep advances it instead of waiting.
type standInClock struct{ h *harness }

func (c standInClock) Now() time.Time { return c.h.dv.Now().Add(c.h.skew) }
func (c standInClock) Sleep(ctx context.Context, d time.Duration) error {
	c.h.mu.Lock()
	c.h.sleeps = append(c.h.sleeps, d)
	c.h.mu.Unlock()
	c.h.dv.Advance(d)
	return ctx.Err()
}
func (c standInClock) NewTicker(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }

// start creates and starts a receiver with manual polling.
func (h *harness) start() *logsReceiver {
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
	r.manualPolling = true
	r.tokenRetry = policy.RetryOptions{MaxRetries: -1}
	r.clock = standInClock{h}
	if err := r.Start(context.Background(), h.host); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return r
}

// restart shuts r down and starts another receiver on the same storage.
func (h *harness) restart(r *logsReceiver) *logsReceiver {
	h.t.Helper()
	if err := r.Shutdown(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return h.start()
}

func (h *harness) sleepsSoFar() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.sleeps...)
}

// counter sums an int counter's points whose attribute key has value (all when key is "").
func (h *harness) counter(name, key, value string) int64 {
	h.t.Helper()
	m, err := h.tel.GetMetric("otelcol_copilotstudio_transcripts_" + name)
	if err != nil {
		return 0
	}
	var total int64
	if s, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, dp := range s.DataPoints {
			if v, ok := dp.Attributes.Value(attribute.Key(key)); key == "" || (ok && v.AsString() == value) {
				total += dp.Value
			}
		}
	}
	return total
}

// sink records what it accepted and can be told to refuse the next calls.
type sink struct {
	mu      sync.Mutex
	batches []plog.Logs
	refuse  int
}

func (s *sink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *sink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse > 0 {
		s.refuse--
		return fmt.Errorf("downstream queue is full")
	}
	s.batches = append(s.batches, ld)
	return nil
}

type recordWithResource struct {
	resource pcommon.Map
	record   plog.LogRecord
}

func (s *sink) records() []recordWithResource {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []recordWithResource
	for _, ld := range s.batches {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out = append(out, recordWithResource{rl.Resource().Attributes(), lr})
				}
			}
		}
	}
	return out
}

// transcriptIDs counts accepted records per transcript row.
func (s *sink) transcriptIDs() map[string]int {
	ids := map[string]int{}
	for _, r := range s.records() {
		v, _ := r.record.Attributes().Get(schema.TranscriptID)
		ids[v.Str()]++
	}
	return ids
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

// conversation is a small transcript: a user message, a plan with one
// action step, the answer. Its activities are out of array order.
func conversation(n int, start time.Time) string {
	ms := start.UnixMilli()
	user := fmt.Sprintf("u-%d", n)
	return fmt.Sprintf(`{"activities":[`+
		`{"type":"message","id":"m-%[1]d","timestampMs":%[3]d,"from":{"id":"b","role":0},"replyToId":"%[2]s","channelId":"msteams","text":"Ticket %[1]d is closed."},`+
		`{"type":"trace","valueType":"ConversationInfo","timestampMs":%[4]d,"from":{"role":0},"value":{"isDesignMode":false,"locale":"en-US"}},`+
		`{"type":"message","id":"%[2]s","timestampMs":%[5]d,"from":{"id":"29:u","aadObjectId":"11111111-aaaa-bbbb-cccc-000000000001","role":1},"channelId":"msteams","text":"Is ticket %[1]d closed?"},`+
		`{"type":"event","name":"DynamicPlanStepTriggered","valueType":"DynamicPlanStepTriggered","id":"e-%[1]d","timestampMs":%[6]d,"from":{"role":0},"replyToId":"%[2]s","value":{"planIdentifier":"p-%[1]d","stepId":"s-%[1]d","taskDialogId":"crx_helpdesk.action.GetTicket","state":1,"type":"Action"}}`+
		`]}`, n, user, ms+3000, ms, ms+1000, ms+2000)
}

func row(id int, bot string, created time.Time) fakedataverse.Transcript {
	return fakedataverse.Transcript{
		ID: fmt.Sprintf("a0a0a0a0-0000-4000-8000-%012d", id), Name: fmt.Sprintf("conv-%d_%s", id, bot),
		Content: conversation(id, created.Add(-40*time.Minute)), BotID: bot,
		Metadata:          fmt.Sprintf(`{"BotId":"%s","AADTenantId":"%s","BotName":"cr_meta%d","BatchId":0}`, bot, testTenant, id),
		ConversationStart: created.Add(-40 * time.Minute), CreatedOn: created,
	}
}

func rowID(id int) string { return fmt.Sprintf("a0a0a0a0-0000-4000-8000-%012d", id) }

// wantEachOnce checks every listed row delivered its 4 records exactly once, and nothing else.
func wantEachOnce(t *testing.T, got map[string]int, ids ...int) {
	t.Helper()
	for _, id := range ids {
		if got[rowID(id)] != 4 {
			t.Errorf("row %d delivered %d records, want its 4 once", id, got[rowID(id)])
		}
	}
	if len(got) != len(ids) {
		var extra []string
		for k := range got {
			extra = append(extra, k)
		}
		t.Errorf("delivered rows %s, want %d rows", strings.Join(extra, ", "), len(ids))
	}
}

package aktoexporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/copilotwatch/otelcol-copilotstudio/exporter/aktoexporter/internal/metadatatest"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeakto"
)

const testToken = "akto-ingestion-token-0123456789" // #nosec G101 -- a test fixture

// akto is a started exporter with its telemetry and logs observed.
type akto struct {
	*aktoExporter
	tel  *componenttest.Telemetry
	logs *observer.ObservedLogs
}

func newAkto(t *testing.T, cfg *Config) *akto {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	core, logs := observer.New(zap.DebugLevel)
	set.Logger = zap.New(core)
	e, err := newExporter(set, cfg)
	require.NoError(t, err)
	require.NoError(t, e.start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, e.shutdown(context.Background())) })
	return &akto{aktoExporter: e, tel: tel, logs: logs}
}

func configFor(s *fakeakto.Server) *Config {
	cfg := createDefaultConfig()
	cfg.ClientConfig.Endpoint = s.URL()
	cfg.Token = testToken
	return cfg
}

// trafficRecord is an Akto traffic record as the activitypair processor
// writes it, padded to about size bytes.
func trafficRecord(turn string, size int) []byte {
	rec := fmt.Sprintf(`{"path":"/copilot/conversation/c-%s/message/1","method":"POST","requestHeaders":"{\"host\":\"copilot.microsoft.com\",\"x-akto-message-id\":\"%s\"}","requestPayload":"{\"text\":\"`, turn, turn)
	end := `\"}","responsePayload":"{\"text\":\"ok\"}","statusCode":"200","tag":"{\"source\":\"COPILOT_STUDIO\"}"}`
	pad := max(size-len(rec)-len(end), 0)
	return []byte(rec + strings.Repeat("x", pad) + end)
}

// turns is a batch of n records with turn ids <prefix>-0..n-1, spread over
// two resources as the processor's output is.
func turns(prefix string, n, size int) plog.Logs {
	ld := plog.NewLogs()
	var sl plog.ScopeLogs
	for i := range n {
		if i%7 == 0 {
			sl = ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
		}
		lr := sl.LogRecords().AppendEmpty()
		id := fmt.Sprintf("%s-%d", prefix, i)
		lr.Attributes().PutStr(schema.TurnID, id)
		lr.Body().SetEmptyBytes().FromRaw(trafficRecord(id, size))
	}
	return ld
}

func bodies(ld plog.Logs) [][]byte {
	var out [][]byte
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if lr.Body().Type() == pcommon.ValueTypeBytes {
					out = append(out, lr.Body().Bytes().AsRaw())
				}
			}
		}
	}
	return out
}

func statusClass2xx(n int64) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Value: n, Attributes: attribute.NewSet(attribute.String("status_class", "2xx"))}
}

func TestSendsEachRecordAsIsInRequestsOf50(t *testing.T) {
	s := fakeakto.New(fakeakto.Options{Token: testToken})
	defer s.Close()
	a := newAkto(t, configFor(s))

	ld := turns("t", 120, 600)
	// A string body and a record without a turn id are sent too.
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	lr.Body().SetStr("  " + string(trafficRecord("string-body", 300)) + "\n")
	require.NoError(t, a.pushLogs(context.Background(), ld))

	want := bodies(ld)
	want = append(want[:7], append([][]byte{trafficRecord("string-body", 300)}, want[7:]...)...)
	assert.Equal(t, want, s.Records(), "every record, byte for byte, in order")
	var sizes []int
	for _, r := range s.Requests() {
		sizes = append(sizes, r.Records)
	}
	assert.Equal(t, []int{50, 50, 21}, sizes)
	metadatatest.AssertEqualAktoExporterRecordsSent(t, a.tel, []metricdata.DataPoint[int64]{{Value: 121}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualAktoExporterRequests(t, a.tel, []metricdata.DataPoint[int64]{statusClass2xx(3)}, metricdatatest.IgnoreTimestamp())
}

func TestSplitsRequestsByBytes(t *testing.T) {
	s := fakeakto.New(fakeakto.Options{MaxBodyBytes: 4096})
	defer s.Close()
	cfg := configFor(s)
	cfg.Token = ""
	cfg.MaxRequestBytes = 4096
	a := newAkto(t, cfg)

	require.NoError(t, a.pushLogs(context.Background(), turns("t", 30, 1000)))
	require.Len(t, s.Records(), 30)
	var sizes []int
	for _, r := range s.Requests() {
		assert.Equal(t, 200, r.Status, r.Reason)
		assert.LessOrEqual(t, r.Bytes, 4096)
		sizes = append(sizes, r.Records)
	}
	// Four records of 1000 bytes fit 4096 with the envelope and commas; five do not.
	assert.Equal(t, []int{4, 4, 4, 4, 4, 4, 4, 2}, sizes)
}

func TestDropsWhatCannotBeSent(t *testing.T) {
	s := fakeakto.New(fakeakto.Options{Token: testToken, MaxBodyBytes: 8192, MaxStringBytes: 2000})
	defer s.Close()
	cfg := configFor(s)
	cfg.MaxRequestBytes, cfg.MaxStringBytes = 8192, 2000
	a := newAkto(t, cfg)

	ld := turns("good", 3, 500)
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	bad := func(id string) plog.LogRecord {
		lr := sl.LogRecords().AppendEmpty()
		lr.Attributes().PutStr(schema.TurnID, id)
		return lr
	}
	bad("map-body").Body().SetEmptyMap().PutStr("path", "/")
	bad("array-body").Body().SetEmptyBytes().FromRaw([]byte(`[{"path":"/"}]`))
	bad("cut-body").Body().SetStr(`{"path":"/copilot`)
	bad("empty-body")
	bad("over-request").Body().SetEmptyBytes().FromRaw(trafficRecord("over-request", 9000))
	// 3,000 bytes fit a request, but its request text is a string over 2,000.
	bad("over-string").Body().SetEmptyBytes().FromRaw(trafficRecord("over-string", 3000))
	// Escaped, 1,900 quotes take 3,800 bytes; decoded they are 1,900: sent.
	quotes := []byte(`{"requestPayload":"` + strings.Repeat(`\"`, 1900) + `"}`)
	bad("escaped").Body().SetEmptyBytes().FromRaw(quotes)

	require.NoError(t, a.pushLogs(context.Background(), ld), "dropping bad records is not a failure of the call")
	require.Len(t, s.Records(), 4)
	assert.Equal(t, quotes, s.Records()[3])

	dropped := map[string]string{}
	for _, e := range a.logs.FilterMessageSnippet("dropped").All() {
		dropped[e.ContextMap()["turn_id"].(string)] = e.ContextMap()["reason"].(string)
	}
	assert.Equal(t, map[string]string{
		"map-body": reasonInvalidBody, "array-body": reasonInvalidBody, "cut-body": reasonInvalidBody, "empty-body": reasonInvalidBody,
		"over-request": reasonTooLarge, "over-string": reasonTooLarge,
	}, dropped)
	metadatatest.AssertEqualAktoExporterRecordsDropped(t, a.tel, []metricdata.DataPoint[int64]{
		{Value: 4, Attributes: attribute.NewSet(attribute.String("reason", reasonInvalidBody))},
		{Value: 2, Attributes: attribute.NewSet(attribute.String("reason", reasonTooLarge))},
	}, metricdatatest.IgnoreTimestamp())
}

func TestBisectsToTheRefusedRecord(t *testing.T) {
	s := fakeakto.New(fakeakto.Options{Token: testToken})
	defer s.Close()
	s.SetRefuse(func(r []byte) bool { return bytes.Contains(r, []byte(`"x-akto-message-id\":\"t-37\"`)) })
	a := newAkto(t, configFor(s))

	require.NoError(t, a.pushLogs(context.Background(), turns("t", 50, 300)))
	got := s.Records()
	require.Len(t, got, 49)
	for _, r := range got {
		assert.NotContains(t, string(r), `t-37\"`)
	}
	// Halving 50 finds one record in at most 2*log2(50) more requests.
	assert.LessOrEqual(t, len(s.Requests()), 1+2*6)

	logged := a.logs.FilterMessageSnippet("refused this record").All()
	require.Len(t, logged, 1)
	assert.Equal(t, "t-37", logged[0].ContextMap()["turn_id"])
	assert.EqualValues(t, 422, logged[0].ContextMap()["status"])
	metadatatest.AssertEqualAktoExporterRecordsDropped(t, a.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", reasonRefused))},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualAktoExporterRecordsSent(t, a.tel, []metricdata.DataPoint[int64]{{Value: 49}}, metricdatatest.IgnoreTimestamp())
}

// A record refused while nothing else is accepted may be the service
// failing (it answers 422 when it cannot write to its Kafka): it is sent
// again refused_record_retries times, then dropped; and a call stops after
// two such refusals instead of sending every record alone.
func TestLoneRefusalIsRetriedBeforeItIsDropped(t *testing.T) {
	s := fakeakto.New(fakeakto.Options{Token: testToken})
	defer s.Close()
	s.SetRefuse(func([]byte) bool { return true })
	cfg := configFor(s)
	cfg.RefusedRecordRetries = 2
	a := newAkto(t, cfg)

	ld := turns("alone", 50, 300)
	for attempt := 1; attempt <= 2; attempt++ {
		before := len(s.Requests())
		err := a.pushLogs(context.Background(), ld)
		require.Error(t, err, "attempt %d", attempt)
		assert.False(t, consumererror.IsPermanent(err))
		var retry consumererror.Logs
		require.True(t, errors.As(err, &retry))
		assert.Equal(t, 50, retry.Data().LogRecordCount(), "nothing dropped yet")
		ld = retry.Data()
		// Halving down to one record, then its neighbour: 8 requests, not 99.
		assert.Equal(t, 8, len(s.Requests())-before, "attempt %d", attempt)
	}
	assert.Empty(t, a.logs.FilterMessageSnippet("dropped").All())

	// The third refusal of each record alone drops it.
	err := a.pushLogs(context.Background(), ld)
	var retry consumererror.Logs
	require.True(t, errors.As(err, &retry))
	assert.Equal(t, 48, retry.Data().LogRecordCount())
	dropped := a.logs.FilterMessageSnippet("refused this record").All()
	require.Len(t, dropped, 2)
	assert.Equal(t, "alone-0", dropped[0].ContextMap()["turn_id"])
	assert.EqualValues(t, 3, dropped[0].ContextMap()["refusals"])

	// Once the service takes records again, one it still refuses goes at once.
	s.SetRefuse(func(r []byte) bool { return bytes.Contains(r, []byte(`again-1\"`)) })
	require.NoError(t, a.pushLogs(context.Background(), turns("again", 3, 300)))
	assert.Len(t, s.Records(), 2)
	assert.Len(t, a.logs.FilterMessageSnippet("refused this record").All(), 3)
}

func TestRetryKeepsOnlyWhatWasNotAccepted(t *testing.T) {
	s := fakeakto.New(fakeakto.Options{Token: testToken})
	defer s.Close()
	// The second request of the call fails.
	s.Inject(fakeakto.Fault{Status: http.StatusServiceUnavailable, Count: 1, Skip: 1, RetryAfter: 3 * time.Second})
	a := newAkto(t, configFor(s))

	ld := turns("t", 120, 300)
	err := a.pushLogs(context.Background(), ld)
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err))
	assert.Contains(t, err.Error(), "Throttle (3s)", "Retry-After reaches exporterhelper's retry")
	var retry consumererror.Logs
	require.True(t, errors.As(err, &retry))
	assert.Equal(t, bodies(ld)[50:], bodies(retry.Data()), "the first 50 were accepted; the rest, in order")

	require.NoError(t, a.pushLogs(context.Background(), retry.Data()))
	assert.Equal(t, bodies(ld), s.Records(), "every record once, in order")
}

func TestRefusedTokenIsRetriedAndExplained(t *testing.T) {
	s := fakeakto.New(fakeakto.Options{Token: "the-service-token"})
	defer s.Close()
	a := newAkto(t, configFor(s))

	err := a.pushLogs(context.Background(), turns("t", 3, 300))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "401 is retried: nothing is lost while the token is fixed")
	logged := a.logs.FilterMessageSnippet("refused the token").All()
	require.Len(t, logged, 1)
	assert.Equal(t, zap.ErrorLevel, logged[0].Level)
	assert.Contains(t, logged[0].Message, "AKTO_INGESTION_TOKEN")
	for _, e := range a.logs.All() {
		assert.NotContains(t, fmt.Sprint(e.Message, e.ContextMap()), testToken)
	}
	assert.NotContains(t, err.Error(), testToken)

	cfg := configFor(s)
	cfg.Token = ""
	b := newAkto(t, cfg)
	require.Error(t, b.pushLogs(context.Background(), turns("t", 1, 300)))
	assert.Len(t, b.logs.FilterMessageSnippet("none is configured").All(), 1)

	assert.Empty(t, s.Records())
}

func TestWrongEndpointIsRetriedAndExplained(t *testing.T) {
	s := fakeakto.New(fakeakto.Options{})
	defer s.Close()
	cfg := configFor(s)
	cfg.ClientConfig.Endpoint = s.URL() + "/ingest"
	a := newAkto(t, cfg)
	err := a.pushLogs(context.Background(), turns("t", 1, 300))
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err))
	assert.Len(t, a.logs.FilterMessageSnippet("AKTO_INGESTION_URL").All(), 1)
}

func TestTimeoutIsRetried(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-release // never answers while the test runs
	}))
	defer hung.Close()
	defer close(release)
	cfg := createDefaultConfig()
	cfg.ClientConfig.Endpoint = hung.URL
	cfg.ClientConfig.Timeout = 50 * time.Millisecond
	a := newAkto(t, cfg)

	ld := turns("t", 2, 300)
	err := a.pushLogs(context.Background(), ld)
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err))
	var retry consumererror.Logs
	require.True(t, errors.As(err, &retry))
	assert.Equal(t, 2, retry.Data().LogRecordCount())
	metadatatest.AssertEqualAktoExporterRequests(t, a.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("status_class", "no_response"))},
	}, metricdatatest.IgnoreTimestamp())
}

// Through exporterhelper, as the collector runs it: a 503 stretch and a
// revoked token are ridden out, and every record arrives exactly once.
func TestThroughExporterhelper(t *testing.T) {
	s := fakeakto.New(fakeakto.Options{Token: testToken})
	defer s.Close()
	cfg := configFor(s)
	cfg.QueueBatchConfig = configoptional.None[exporterhelper.QueueBatchConfig]() // ConsumeLogs returns when done
	cfg.BackOffConfig.InitialInterval, cfg.BackOffConfig.MaxInterval = 5*time.Millisecond, 10*time.Millisecond
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	exp, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tel), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, exp.Shutdown(context.Background())) }()

	s.Inject(fakeakto.Fault{Status: http.StatusServiceUnavailable, Count: 3, Skip: 1})
	first := turns("first", 120, 300)
	require.NoError(t, exp.ConsumeLogs(context.Background(), first))

	// The token is rotated; it is set back once the exporter was refused twice.
	s.SetToken("rotated")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		_ = s.WaitUntil(ctx, func(_ [][]byte, reqs []fakeakto.Request) bool { return count(reqs, 401) >= 2 })
		s.SetToken(testToken)
	}()
	second := turns("second", 10, 300)
	require.NoError(t, exp.ConsumeLogs(ctx, second))

	assert.Equal(t, append(bodies(first), bodies(second)...), s.Records(), "every record once, in order")
	assert.Equal(t, 3, count(s.Requests(), 503))
	assert.GreaterOrEqual(t, count(s.Requests(), 401), 2)
}

func count(reqs []fakeakto.Request, status int) int {
	n := 0
	for _, r := range reqs {
		if r.Status == status {
			n++
		}
	}
	return n
}

func TestLongestString(t *testing.T) {
	assert.Equal(t, 5, longestString([]byte(`{"a":"12345","bb":{"c":["1"]},"d":1}`)))
	assert.Equal(t, 3, longestString([]byte(`{"a":"\"\"\""}`)), "decoded, not escaped")
	assert.Equal(t, 4, longestString([]byte(`{"a":"\u00e9\u00e9"}`)), "UTF-8 bytes")
}

func metadataSettings(t testing.TB) exporter.Settings {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	return metadatatest.NewSettings(tel)
}

func TestTurnIDOfNamesTurnsAndToolCalls(t *testing.T) {
	lr := plog.NewLogRecord()
	assert.Equal(t, "", turnIDOf(lr))
	lr.Attributes().PutStr(schema.ToolCallRecordID, "call-1")
	assert.Equal(t, "call-1", turnIDOf(lr), "a tool-call record is named by its record id")
	lr.Attributes().PutStr(schema.TurnID, "turn-1")
	assert.Equal(t, "turn-1", turnIDOf(lr))
}

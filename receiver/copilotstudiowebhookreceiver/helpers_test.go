package copilotstudiowebhookreceiver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeentra"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiowebhookreceiver/internal/metadata"
)

const (
	// The tenant of the app registration and of the agents (the generated
	// calls' default agent tenant), and another organisation's.
	testTenant      = "8a2b7c4d-1e3f-4a5b-9c6d-7e8f9a0b1c2d"
	testOtherTenant = "5f0e1d2c-3b4a-4968-8776-655443322110"
	testAppID       = "3c1d9a77-4e2b-4f60-9a1c-2b7e5d8f0a13"
	testAudience    = "https://hooks.contoso.example/api/agentSecurity"
	testBasePath    = "/api/agentSecurity"
)

type fixture struct {
	t      testing.TB
	entra  *fakeentra.Server
	rcv    *webhookReceiver
	tel    *componenttest.Telemetry
	logs   *observer.ObservedLogs
	client *webhookclient.Client
	// good are the claims of a token Copilot Studio would send.
	good fakeentra.Claims
}

type fixtureOptions struct {
	configure func(*Config)
	clock     clock.Clock
	// noStart leaves Start to the test.
	noStart bool
}

func newFixture(t testing.TB, next consumer.Logs, o fixtureOptions) *fixture {
	t.Helper()
	entra, err := fakeentra.New(fakeentra.Options{TenantID: testTenant, Tenants: []string{testOtherTenant}})
	require.NoError(t, err)
	t.Cleanup(entra.Close)

	cfg := createDefaultConfig()
	cfg.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.BasePath = testBasePath
	cfg.EntraID.TenantIDs = []string{testTenant}
	cfg.EntraID.Audiences = []string{testAudience, testAppID}
	cfg.EntraID.AppIDs = []string{testAppID}
	cfg.EntraID.AuthorityHost = entra.URL()
	cfg.EntraID.TLS.CAPem = configopaque.String(entra.Bundle().CAPEM)
	// The longest deadline, so that a busy test machine does not turn an
	// expected "accepted" into "deadline"; the deadline tests set their own.
	cfg.AnswerDeadline = maxAnswerDeadline
	if o.configure != nil {
		o.configure(cfg)
	}
	require.NoError(t, cfg.Validate())

	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	core, logs := observer.New(zap.InfoLevel)
	set.Logger = zap.New(core)

	rcv, err := newReceiver(cfg, set, next)
	require.NoError(t, err)
	if o.clock != nil {
		rcv.clock = o.clock
		rcv.auth.clock = o.clock
	}
	f := &fixture{t: t, entra: entra, rcv: rcv, tel: tel, logs: logs,
		good: fakeentra.Claims{Audience: testAudience, AppID: testAppID}}
	if !o.noStart {
		f.start()
	}
	return f
}

func (f *fixture) start() {
	f.t.Helper()
	require.NoError(f.t, f.rcv.Start(context.Background(), componenttest.NewNopHost()))
	f.t.Cleanup(func() { require.NoError(f.t, f.rcv.Shutdown(context.Background())) })
	f.client = &webhookclient.Client{
		BaseURL: "http://" + f.rcv.addr.String() + testBasePath,
		Token:   webhookclient.FakeEntraTokens(f.entra, f.good),
	}
}

// withToken is the fixture's client sending token instead.
func (f *fixture) withToken(token string) *webhookclient.Client {
	c := *f.client
	c.Token = func(context.Context) (string, error) { return token, nil }
	return &c
}

func (f *fixture) mint(c fakeentra.Claims) string {
	f.t.Helper()
	token, err := f.entra.Mint(c)
	require.NoError(f.t, err)
	return token
}

func (f *fixture) analyze(body []byte) webhookclient.Answer {
	f.t.Helper()
	a, err := f.client.Analyze(context.Background(), body)
	require.NoError(f.t, err)
	return a
}

// sum is the value of an int counter (or up-down counter) for the data
// point with exactly attrs; 0 when there is none.
func (f *fixture) sum(name string, attrs ...attribute.KeyValue) int64 {
	f.t.Helper()
	m, err := f.tel.GetMetric("otelcol_" + name)
	if err != nil {
		return 0
	}
	want := attribute.NewSet(attrs...)
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value
		}
	}
	return 0
}

func (f *fixture) calls(endpoint, outcome string) int64 {
	return f.sum("copilotstudio_webhook_calls", attribute.String("endpoint", endpoint), attribute.String("outcome", outcome))
}

// logged reports the log lines whose message contains s.
func (f *fixture) logged(s string) []observer.LoggedEntry {
	return f.logs.FilterMessageSnippet(s).All()
}

// everyLogField is each logged message and field value, for "never
// logged" checks.
func (f *fixture) everyLogText() string {
	var b strings.Builder
	for _, e := range f.logs.All() {
		b.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			b.WriteString(" " + k + "=")
			if s, ok := v.(string); ok {
				b.WriteString(s)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// onlyRecord is the one log record the sink holds.
func onlyRecord(t *testing.T, sink *consumertest.LogsSink) (plog.ResourceLogs, plog.LogRecord) {
	t.Helper()
	all := sink.AllLogs()
	require.Len(t, all, 1, "ConsumeLogs calls")
	require.Equal(t, 1, all[0].LogRecordCount())
	rl := all[0].ResourceLogs().At(0)
	return rl, rl.ScopeLogs().At(0).LogRecords().At(0)
}

// gate is a consumer that holds every batch until the test releases it.
type gate struct {
	entered chan plog.Logs
	release chan error
}

func newGate() *gate { return &gate{entered: make(chan plog.Logs, 16), release: make(chan error, 16)} }

func (g *gate) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (g *gate) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	g.entered <- ld
	select {
	case err := <-g.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stepClock is the system clock whose Sleep waits for the test to let it go.
type stepClock struct {
	clock.Clock
	mu     sync.Mutex
	sleeps chan chan struct{}
}

func newStepClock() *stepClock {
	return &stepClock{Clock: clock.System, sleeps: make(chan chan struct{}, 4)}
}

func (c *stepClock) Sleep(ctx context.Context, _ time.Duration) error {
	wake := make(chan struct{})
	c.sleeps <- wake
	select {
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wakeNext lets the next Sleep return.
func (c *stepClock) wakeNext(t *testing.T) {
	t.Helper()
	select {
	case wake := <-c.sleeps:
		close(wake)
	case <-time.After(10 * time.Second):
		t.Fatal("nothing went to sleep")
	}
}

var errQueueFull = errors.New("sending queue is full")

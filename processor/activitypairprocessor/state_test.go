package activitypairprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadata"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadatatest"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudioreceiver"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiotranscriptsreceiver"
)

// storedValue reads one key of the processor's storage, as the next
// start would find it.
func storedValue(t *testing.T, host *testenv.StorageHost, key string) []byte {
	t.Helper()
	client, err := host.Extension.(storage.Extension).GetClient(context.Background(), component.KindProcessor, component.NewID(metadata.Type), "")
	require.NoError(t, err)
	defer func() { require.NoError(t, client.Close(context.Background())) }()
	v, err := client.Get(context.Background(), key)
	require.NoError(t, err)
	return v
}

// startProcessor starts a processor on host and returns Start's error.
func startProcessor(t *testing.T, cfg *Config, host component.Host) error {
	t.Helper()
	p, err := newProcessor(metadatatest.NewSettings(newTelemetry(t)), cfg, nil, newFakeClock())
	require.NoError(t, err)
	err = p.Start(context.Background(), host)
	if err == nil {
		require.NoError(t, p.Shutdown(context.Background()))
	}
	return err
}

// Stored state that cannot be read holds open turns whose rows the
// receiver will not deliver again: by default Start fails, says so and
// what to do, and leaves the state as it is, however often it is started.
func TestUnreadableStateStopsTheStartAndIsKept(t *testing.T) {
	host := newFileStorage(t)
	h := newHarness(t, storageConfig(), host)
	h.consume(c1m1, c1t1)
	h.kill()
	manifestBefore := storedValue(t, host, manifestKey)
	chunk := storedValue(t, host, chunkKey(1))
	require.NotNil(t, chunk)
	client, err := host.Extension.(storage.Extension).GetClient(context.Background(), component.KindProcessor, component.NewID(metadata.Type), "")
	require.NoError(t, err)
	require.NoError(t, client.Set(context.Background(), chunkKey(1), chunk[:len(chunk)-5])) // torn
	require.NoError(t, client.Close(context.Background()))

	for range 2 {
		err := startProcessor(t, storageConfig(), host)
		require.Error(t, err)
		for _, want := range []string{"cannot be read", "does not start", "already acknowledged", "Keep the storage directory",
			"run the version that wrote the state", "on_unreadable_state: discard", "initial_lookback"} {
			assert.ErrorContains(t, err, want)
		}
		assert.Equal(t, manifestBefore, storedValue(t, host, manifestKey), "the state is left as it is")
		assert.Equal(t, chunk[:len(chunk)-5], storedValue(t, host, chunkKey(1)))
	}
}

// With on_unreadable_state: discard the processor starts without the
// state, counting it, and leaves it in storage until it has new state to
// save: a start that saves nothing (stopped at once, or killed) keeps it
// for a later start with stop, or a build that can read it.
func TestDiscardKeepsTheUnreadableStateUntilNewStateIsSaved(t *testing.T) {
	host := newFileStorage(t)
	client, err := host.Extension.(storage.Extension).GetClient(context.Background(), component.KindProcessor, component.NewID(metadata.Type), "")
	require.NoError(t, err)
	unreadable := []byte{99, 1, 1}
	require.NoError(t, client.Set(context.Background(), manifestKey, unreadable))
	require.NoError(t, client.Close(context.Background()))

	h := newHarness(t, discardConfig(), host)
	metadatatest.AssertEqualActivitypairStateRestoreFailures(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	require.NoError(t, h.p.sweep(context.Background()))
	h.shutdown()
	assert.Equal(t, unreadable, storedValue(t, host, manifestKey), "nothing new to save: the state is still there")
	require.Error(t, startProcessor(t, storageConfig(), host), "and stops a start with stop")

	h.start(discardConfig(), host)
	h.consume(c1m1, c1t1)
	h.kill()
	m := storedValue(t, host, manifestKey)
	require.NotEmpty(t, m)
	assert.Equal(t, byte(stateVersion), m[0], "the first save of new state replaced it")
	h.start(storageConfig(), host)
	h.consume(c1x1, c1r1a, c1r1b, c1m2)
	assert.Equal(t, []summary{c1Turn1}, h.summaries())
}

// State of format 1 is neither read nor dropped silently: Start stops and
// says what it is.
func TestFormatVersion1StopsTheStart(t *testing.T) {
	host := newFileStorage(t)
	client, err := host.Extension.(storage.Extension).GetClient(context.Background(), component.KindProcessor, component.NewID(metadata.Type), "")
	require.NoError(t, err)
	require.NoError(t, client.Set(context.Background(), manifestKey, []byte{1, 4, 5}))
	require.NoError(t, client.Close(context.Background()))
	err = startProcessor(t, storageConfig(), host)
	require.ErrorContains(t, err, "format 1")
	assert.ErrorContains(t, err, "on_unreadable_state: discard")
	assert.Equal(t, []byte{1, 4, 5}, storedValue(t, host, manifestKey))
}

// State in format 2 (the previous one, testdata/state-v2) is read, and the
// first save writes it again in this build's format: the next start reads
// that, with the same open turns.
func TestFormatVersion2IsMigrated(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", "state-v2", "processor_activitypair_"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "processor_activitypair_"), data, 0o600))
	host := testenv.StartFileStorage(t, dir)
	require.Equal(t, byte(formatV2), storedValue(t, host, manifestKey)[0])

	h := newHarness(t, storageConfig(), host)
	rows, emitted := h.p.core.BufferedRows(), h.p.core.EmittedIDs()
	require.Positive(t, rows)
	h.consume(compatAfter[0]...) // already emitted: nothing changes, nothing is written
	h.kill()
	assert.Equal(t, byte(formatV2), storedValue(t, host, manifestKey)[0])
	h.start(storageConfig(), host)
	h.consume(msg("new", "n1", 200*s, "n1", "a new conversation"))
	h.kill()
	assert.Equal(t, byte(stateVersion), storedValue(t, host, manifestKey)[0], "written again in this format")

	h.start(storageConfig(), host)
	assert.Equal(t, rows+1, h.p.core.BufferedRows())
	assert.Equal(t, emitted, h.p.core.EmittedIDs())
}

// withApp puts every resource of ld under another Application Insights
// application: another source, with a replay_from of its own.
func withApp(ld plog.Logs, app string) plog.Logs {
	for _, rl := range ld.ResourceLogs().All() {
		rl.Resource().Attributes().PutStr(schema.AppInsightsAppID, app)
	}
	return ld
}

// Each source's replay_from is stored with the ids it protects: after a
// restart, a batch of another source must not make the core forget the ids
// of a window the first source will read again.
func TestReplayFromOfEachSourceSurvivesARestart(t *testing.T) {
	cfg := storageConfig()
	cfg.EmittedIDsTTL = time.Minute
	host := newFileStorage(t)
	h := newHarness(t, cfg, host)
	next := &refusing{Logs: h.sink}
	h.p.next = next
	x := []testRow{msg("a", "a1", 0, "qa", "first"), reply("a", "a2", s, "qa", "A"), msg("b", "b1", time.Hour, "qb", "second")}
	sendX := func() error {
		return h.p.ConsumeLogs(context.Background(), stamped(withApp(logsOf(x...), "app-x"), base, 10*time.Minute))
	}
	require.NoError(t, sendX())
	next.refuse = true
	require.Error(t, h.p.ConsumeLogs(context.Background(),
		stamped(withApp(logsOf(reply("b", "b2", time.Hour+s, "qb", "B"), msg("c", "c1", 2*time.Hour, "qc", "third")), "app-x"), base, 10*time.Minute)))
	h.kill()

	h.start(cfg, host)
	h.p.next = next
	next.refuse = false
	y := logsOf(msg("e", "e1", 3*time.Hour, "qe", "other source"))
	require.NoError(t, h.p.ConsumeLogs(context.Background(), stamped(withApp(y, "app-y"), base.Add(3*time.Hour), 10*time.Minute)))
	require.NoError(t, sendX()) // source x reads its window again
	seen := map[string]int{}
	for _, turn := range h.summaries() {
		seen[turn.Conv]++
	}
	assert.Equal(t, 1, seen["a"], "turns of conversation a")
}

// On the first batch of each source, reply_timeout and emitted_ids_ttl
// are checked against the source's poll interval: an error names both
// keys and the fix, counted once per source and setting.
func TestSettingsAreCheckedAgainstEachSourcesPollInterval(t *testing.T) {
	cfg := testConfig()
	cfg.ReplyTimeout, cfg.EmittedIDsTTL = 5*time.Minute, 5*time.Minute
	core, logs := observer.New(zapcore.ErrorLevel)
	tel := newTelemetry(t)
	set := metadatatest.NewSettings(tel)
	set.Logger = zap.New(core)
	p, err := newProcessor(set, cfg, consumertest.NewNop(), newFakeClock())
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), nil))
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
	send := func(app string, poll time.Duration) {
		require.NoError(t, p.ConsumeLogs(context.Background(), stamped(withApp(logsOf(msg("c", "m-"+app, 0, "q", "hi")), app), base, poll)))
	}
	send("app-1", 10*time.Minute)
	send("app-1", 10*time.Minute)
	send("app-2", time.Minute) // fits
	send("app-3", 10*time.Minute)

	var messages []string
	for _, e := range logs.All() {
		messages = append(messages, e.Message)
		assert.Contains(t, []string{"appinsights app-1", "appinsights app-3"}, e.ContextMap()["source"])
	}
	require.Len(t, messages, 4, "two settings, for two sources, once each")
	assert.Contains(t, messages[0], "reply_timeout 5m0s is not above the receiver's poll_interval 10m0s")
	assert.Contains(t, messages[0], "set the processor's reply_timeout above the receiver's poll_interval")
	assert.Contains(t, messages[1], "emitted_ids_ttl 5m0s is shorter than the receiver's poll_interval 10m0s")
	metadatatest.AssertEqualActivitypairSettingsConflicts(t, tel, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(attribute.String("setting", "reply_timeout"))},
		{Value: 2, Attributes: attribute.NewSet(attribute.String("setting", "emitted_ids_ttl"))},
	}, metricdatatest.IgnoreTimestamp())
}

// The shipped configuration and every overlay give activitypair settings
// that fit each polling receiver they configure: reply_timeout above its
// poll_interval, emitted_ids_ttl at least its poll_interval plus overlap.
func TestShippedSettingsFitTheReceivers(t *testing.T) {
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	overlays, err := filepath.Glob(filepath.Join(root, "collector-config.*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, overlays)
	checked := map[string]bool{}
	for _, overlay := range append([]string{""}, overlays...) {
		paths := []string{testenv.CollectorConfigPath()}
		if overlay != "" {
			paths = append(paths, overlay)
		}
		t.Run(filepath.Base(paths[len(paths)-1]), func(t *testing.T) {
			conf, err := testenv.LoadCollectorConfig(paths...)
			require.NoError(t, err)
			sub, err := conf.Sub("processors::activitypair")
			require.NoError(t, err)
			cfg := createDefaultConfig().(*Config)
			require.NoError(t, sub.Unmarshal(cfg))
			for _, r := range []struct {
				key    string
				config func() (poll, overlap time.Duration, err error)
			}{
				{"receivers::copilotstudio", func() (time.Duration, time.Duration, error) {
					c := copilotstudioreceiver.NewFactory().CreateDefaultConfig().(*copilotstudioreceiver.Config)
					err := unmarshalSub(conf, "receivers::copilotstudio", c)
					return c.PollInterval, c.Overlap, err
				}},
				{"receivers::copilotstudio_transcripts", func() (time.Duration, time.Duration, error) {
					c := copilotstudiotranscriptsreceiver.NewFactory().CreateDefaultConfig().(*copilotstudiotranscriptsreceiver.Config)
					err := unmarshalSub(conf, "receivers::copilotstudio_transcripts", c)
					return c.PollInterval, c.Overlap, err
				}},
			} {
				if !conf.IsSet(r.key) {
					continue
				}
				poll, overlap, err := r.config()
				require.NoError(t, err)
				checked[r.key] = true
				for _, problem := range settingsProblems(cfg, poll, overlap) {
					t.Errorf("%s: %s", r.key, problem.message)
				}
			}
		})
	}
	assert.Len(t, checked, 2, "both polling receivers are in the shipped configurations")
}

func unmarshalSub(conf *confmap.Conf, key string, into any) error {
	sub, err := conf.Sub(key)
	if err != nil {
		return err
	}
	return sub.Unmarshal(into)
}

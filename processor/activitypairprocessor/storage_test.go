package activitypairprocessor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadata"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/metadatatest"
)

var storageID = testenv.StorageID

// newFileStorage starts a file_storage extension on a fresh directory.
func newFileStorage(t *testing.T) *testenv.StorageHost {
	t.Helper()
	return testenv.StartFileStorage(t, t.TempDir())
}

func storageConfig() *Config {
	cfg := testConfig()
	cfg.StorageID = &storageID
	return cfg
}

// kill stops the processor as SIGKILL would between two calls: nothing is
// flushed or saved beyond what ConsumeLogs already saved. (Closing the
// client only releases the database file so the next instance can open it.)
func (h *harness) kill() {
	h.t.Helper()
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shutDown = true
	p.stopTicker()
	close(p.done)
	require.NoError(h.t, p.store.client.Close(context.Background()))
}

func TestStorageKeepsOpenTurnsAcrossSIGKILL(t *testing.T) {
	host := newFileStorage(t)
	h := newHarness(t, storageConfig(), host)
	h.consume(c1m1, c1t1)
	h.kill()
	assert.Empty(t, h.turns())

	h.start(storageConfig(), host)
	metadatatest.AssertEqualActivitypairRowsBuffered(t, h.tel, []metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
	// The receiver had not moved its cursor past a window it was sending: it
	// sends it again, with the rest.
	h.consume(c1m1, c1t1, c1x1, c1r1a)
	h.consume(c1r1b, c1m2, c1r2)
	assert.Equal(t, []summary{c1Turn1}, h.summaries())
}

func TestStorageRemembersEmittedRowsAcrossRestart(t *testing.T) {
	host := newFileStorage(t)
	h := newHarness(t, storageConfig(), host)
	h.consume(c1All...)
	require.Equal(t, []summary{c1Turn1}, h.summaries())
	h.kill()

	h.start(storageConfig(), host)
	h.consume(c1All...) // the whole window again
	assert.Equal(t, []summary{c1Turn1}, h.summaries(), "rows already emitted are not emitted again")
	h.clock.Advance(time.Hour)
	require.NoError(t, h.p.sweep(context.Background()))
	assert.Equal(t, []summary{c1Turn1, c1Turn2}, h.summaries())
}

func TestStorageGracefulShutdownSavesInsteadOfFlushing(t *testing.T) {
	host := newFileStorage(t)
	h := newHarness(t, storageConfig(), host)
	h.consume(c1m1, c1t1, c1x1)
	h.shutdown()
	assert.Empty(t, h.turns(), "with storage, open turns wait for their replies across the restart")

	h.start(storageConfig(), host)
	h.consume(c1r1a, c1r1b, c1m2, c1r2)
	assert.Equal(t, []summary{c1Turn1}, h.summaries())
	// the restored conversation keeps counting its turns
	assert.Equal(t, "0", h.turns()[0].Index)
	h.shutdown()
	h.start(storageConfig(), host)
	h.clock.Advance(time.Hour)
	require.NoError(t, h.p.sweep(context.Background()))
	assert.Equal(t, []summary{c1Turn1, c1Turn2}, h.summaries())
	assert.Equal(t, "1", h.turns()[1].Index)
}

func TestStorageSnapshotReplacesSegments(t *testing.T) {
	host := newFileStorage(t)
	h := newHarness(t, storageConfig(), host)
	h.p.store.minSnapshot = 0 // a snapshot as soon as the segments outweigh the last one twice
	for _, r := range c1All[:5] {
		h.consume(r)
	}
	st := h.p.store
	assert.Greater(t, st.first, uint64(1), "older segments were replaced by a snapshot")
	h.kill()

	h.start(storageConfig(), host)
	h.consume(c1m2, c1r2)
	assert.Equal(t, []summary{c1Turn1}, h.summaries())
}

// storeSegments writes segments (unframed, as decodeSegment reads them)
// the way store.save does, after cut bytes are taken off the end.
func storeSegments(t *testing.T, c storage.Client, cut int, segs ...[]byte) {
	t.Helper()
	var rec []byte
	for _, seg := range segs {
		rec = binary.AppendUvarint(rec, uint64(len(seg)))
		rec = append(rec, seg...)
	}
	st := &store{client: c, first: 1, snapEnd: 1, next: 1}
	rec = rec[:len(rec)-cut]
	require.NoError(t, st.put(context.Background(), 1, rec, &manifest{1, 1, 1 + chunksOf(rec)}))
}

// discardConfig is storageConfig with on_unreadable_state: discard.
func discardConfig() *Config {
	cfg := storageConfig()
	cfg.OnUnreadableState = unreadableDiscard
	return cfg
}

// With on_unreadable_state: discard, unreadable state is counted, and the
// first save of new state replaces it.
func TestUnreadableStateIsCountedAndReplaced(t *testing.T) {
	delta := func() []byte {
		p := codecProcessor(t)
		p.add(logsOf(c1m1, c1t1), 0)
		return encodeDelta(p)
	}
	for name, corrupt := range map[string]func(t *testing.T, c storage.Client){
		"manifest of another version": func(t *testing.T, c storage.Client) {
			require.NoError(t, c.Set(context.Background(), manifestKey, []byte{99, 1, 1}))
		},
		"garbage segment": func(t *testing.T, c storage.Client) {
			storeSegments(t, c, 0, []byte{stateVersion, 0xff, 0xff, 0xff})
		},
		"manifest naming 2^40 chunks": func(t *testing.T, c storage.Client) {
			require.NoError(t, c.Set(context.Background(), manifestKey, manifest{1, 1, 1 << 40}.encode()))
		},
		"missing chunks": func(t *testing.T, c storage.Client) {
			require.NoError(t, c.Set(context.Background(), manifestKey, manifest{1, 1, 3}.encode()))
		},
		"truncated segment": func(t *testing.T, c storage.Client) {
			seg := delta()
			storeSegments(t, c, 0, seg[:len(seg)-3])
		},
		"last segment cut short": func(t *testing.T, c storage.Client) {
			storeSegments(t, c, 3, delta(), delta())
		},
	} {
		t.Run(name, func(t *testing.T) {
			host := newFileStorage(t)
			ext := host.Extension.(storage.Extension)
			client, err := ext.GetClient(context.Background(), component.KindProcessor, component.NewID(metadata.Type), "")
			require.NoError(t, err)
			corrupt(t, client)
			require.NoError(t, client.Close(context.Background()))

			h := newHarness(t, discardConfig(), host)
			metadatatest.AssertEqualActivitypairStateRestoreFailures(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
			h.consume(c1All...)
			assert.Equal(t, []summary{c1Turn1}, h.summaries(), "it starts clean and works")
			h.kill()
			h.start(storageConfig(), host)
			metadatatest.AssertEqualActivitypairStateRestoreFailures(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
			h.consume(c1All...)
			assert.Equal(t, []summary{c1Turn1}, h.summaries(), "the replaced state is readable")
		})
	}
}

// State written by format version 1 (one key per segment) is unreadable to
// this build: with on_unreadable_state: discard it starts clean, and the
// old keys go with the first snapshot, written with the first new state.
func TestFormatVersion1IsReplacedAndItsKeysDeleted(t *testing.T) {
	host := newFileStorage(t)
	ext := host.Extension.(storage.Extension)
	openClient := func() storage.Client {
		client, err := ext.GetClient(context.Background(), component.KindProcessor, component.NewID(metadata.Type), "")
		require.NoError(t, err)
		return client
	}
	client := openClient()
	require.NoError(t, client.Set(context.Background(), manifestKey, []byte{1, 4, 5}))
	for n := uint64(4); n <= 5; n++ {
		require.NoError(t, client.Set(context.Background(), legacySegmentKey(n), []byte{1, 0, 0, 0, 0}))
	}
	require.NoError(t, client.Close(context.Background()))

	h := newHarness(t, discardConfig(), host)
	metadatatest.AssertEqualActivitypairStateRestoreFailures(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	h.consume(c1m1)
	h.kill()
	client = openClient()
	for n := uint64(4); n <= 5; n++ {
		v, err := client.Get(context.Background(), legacySegmentKey(n))
		require.NoError(t, err)
		assert.Nil(t, v, "segment %d of the old format", n)
	}
	require.NoError(t, client.Close(context.Background()))
}

// A state of many chunks, more than one read brings back, is restored
// whole, and a snapshot deletes the chunks it replaces.
func TestStorageRestoresLargeStateAndSnapshotDeletesOldChunks(t *testing.T) {
	host := newFileStorage(t)
	h := newHarness(t, storageConfig(), host)
	long := strings.Repeat("a long question, ", 200) // about 3.4 KB
	const convs = 400
	var rows []testRow
	for i := range convs {
		conv := fmt.Sprintf("conv-%d", i)
		rows = append(rows, msg(conv, fmt.Sprintf("i%d", i), time.Minute, conv+"|a", long))
	}
	h.consume(rows...)
	st := h.p.store
	require.Greater(t, st.next-st.first, uint64(restoreBatch), "the state spans more chunks than one read")
	h.kill()

	h.start(storageConfig(), host)
	metadatatest.AssertEqualActivitypairRowsBuffered(t, h.tel, []metricdata.DataPoint[int64]{{Value: convs}}, metricdatatest.IgnoreTimestamp())
	st = h.p.store
	st.minSnapshot = 0
	st.sinceSnap = 3*st.snapBytes + 1 // due
	st.pieceBytes = 64 << 10          // in many batches
	oldFirst, oldNext := st.first, st.next
	calls := 0
	h.p.store.client = &countingBatches{Client: st.client, calls: &calls}
	h.consume(reply("conv-0", "r0", time.Minute+time.Second, "conv-0|a", "an answer"))
	require.Equal(t, oldNext, st.first, "the snapshot starts after the chunks it replaces")
	require.Greater(t, calls, 10, "the snapshot was written in pieces")
	h.kill()

	ext := host.Extension.(storage.Extension)
	client, err := ext.GetClient(context.Background(), component.KindProcessor, component.NewID(metadata.Type), "")
	require.NoError(t, err)
	for _, n := range []uint64{oldFirst, (oldFirst + oldNext) / 2, oldNext - 1} {
		v, err := client.Get(context.Background(), chunkKey(n))
		require.NoError(t, err)
		assert.Nil(t, v, "chunk %d was replaced by the snapshot", n)
	}
	v, err := client.Get(context.Background(), chunkKey(oldNext))
	require.NoError(t, err)
	assert.NotNil(t, v, "the snapshot's first chunk")
	require.NoError(t, client.Close(context.Background()))

	h.start(storageConfig(), host)
	metadatatest.AssertEqualActivitypairRowsBuffered(t, h.tel, []metricdata.DataPoint[int64]{{Value: convs + 1}}, metricdatatest.IgnoreTimestamp())
}

type countingBatches struct {
	storage.Client
	calls *int
}

func (c *countingBatches) Batch(ctx context.Context, ops ...*storage.Operation) error {
	*c.calls++
	return c.Client.Batch(ctx, ops...)
}

// A snapshot written in several batches that fails halfway leaves the
// stored state as it was: the manifest moves only with the last batch.
func TestStorageSnapshotFailingHalfwayKeepsTheState(t *testing.T) {
	fail := false
	files := newFileStorage(t)
	host := &testenv.StorageHost{Host: files.Host, Extension: flakyStorage{Extension: files.Extension.(storage.Extension), failNext: &fail}}
	h := newHarness(t, storageConfig(), host)
	long := strings.Repeat("a long question, ", 200)
	var rows []testRow
	for i := range 100 {
		conv := fmt.Sprintf("conv-%d", i)
		rows = append(rows, msg(conv, fmt.Sprintf("i%d", i), time.Minute, conv+"|a", long))
	}
	h.consume(rows...)
	st := h.p.store
	st.minSnapshot, st.sinceSnap, st.pieceBytes = 0, 3*st.snapBytes+1, 64<<10
	first, next := st.first, st.next
	calls := 0
	st.client = &countingBatches{Client: st.client, calls: &calls}
	// the second batch of the snapshot fails
	st.client = &failSecond{Client: st.client, fail: &fail}
	err := h.p.ConsumeLogs(context.Background(), logsOf(reply("conv-0", "r0", time.Minute+time.Second, "conv-0|a", "an answer")))
	require.ErrorContains(t, err, "disk is gone")
	require.Equal(t, 2, calls, "one piece written, the second failed")
	assert.Equal(t, [2]uint64{first, next}, [2]uint64{st.first, st.next}, "the live range did not move")
	h.kill()

	h.start(storageConfig(), host)
	metadatatest.AssertEqualActivitypairRowsBuffered(t, h.tel, []metricdata.DataPoint[int64]{{Value: 100}}, metricdatatest.IgnoreTimestamp())
	// the receiver sends the window again; the chunks of the failed snapshot are overwritten
	h.consume(reply("conv-0", "r0", time.Minute+time.Second, "conv-0|a", "an answer"))
	h.kill()
	h.start(storageConfig(), host)
	metadatatest.AssertEqualActivitypairRowsBuffered(t, h.tel, []metricdata.DataPoint[int64]{{Value: 101}}, metricdatatest.IgnoreTimestamp())
}

// failSecond sets fail before the second batch it passes on.
type failSecond struct {
	storage.Client
	fail  *bool
	calls int
}

func (c *failSecond) Batch(ctx context.Context, ops ...*storage.Operation) error {
	c.calls++
	if c.calls == 2 {
		*c.fail = true
	}
	return c.Client.Batch(ctx, ops...)
}

// flakyStorage fails the next storage batch when told to, as a crash
// between passing turns on and saving would leave things.
type flakyStorage struct {
	storage.Extension
	failNext *bool
}

func (f flakyStorage) GetClient(ctx context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	c, err := f.Extension.GetClient(ctx, kind, id, name)
	return &flakyClient{Client: c, failNext: f.failNext}, err
}

type flakyClient struct {
	storage.Client
	failNext *bool
}

func (c *flakyClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	if *c.failNext {
		*c.failNext = false
		return errors.New("disk is gone")
	}
	return c.Client.Batch(ctx, ops...)
}

// The receiver's side of the contract, with crashes at random points: a
// window is sent again until a ConsumeLogs for it returns nil (and sometimes
// once more, when the crash comes before the receiver saved its cursor).
// Every turn must come out, correctly paired; a repeat is allowed only with
// the turn id it had the first time.
func TestPropertyCrashesLoseNothing(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := workload.Generate(workload.DefaultConfig(seed, 300))
			rng := rand.New(rand.NewPCG(seed, 5))
			fail := false
			files := newFileStorage(t)
			host := &testenv.StorageHost{Host: files.Host, Extension: flakyStorage{Extension: files.Extension.(storage.Extension), failNext: &fail}}
			cfg := createDefaultConfig().(*Config)
			cfg.StorageID = &storageID
			h := newHarness(t, cfg, host)
			crashes := 0
			windows := splits(rng, w.Rows, 300)
			for k := 0; k < len(windows); {
				ld := workloadLogs(t, windows[k])
				switch r := rng.Float64(); {
				case r < 0.05: // crash after the turns went on, before the state was saved
					fail = true
					err := h.p.ConsumeLogs(context.Background(), ld)
					if fail { // nothing new to save: the window was all duplicates
						require.NoError(t, err)
						fail = false
					} else {
						require.ErrorContains(t, err, "disk is gone")
					}
					h.kill()
					h.start(cfg, host)
					crashes++
				case r < 0.10: // crash after ConsumeLogs returned, before the receiver saved its cursor
					require.NoError(t, h.p.ConsumeLogs(context.Background(), ld))
					h.kill()
					h.start(cfg, host)
					crashes++
				case r < 0.13: // graceful restart
					require.NoError(t, h.p.ConsumeLogs(context.Background(), ld))
					h.shutdown()
					h.start(cfg, host)
					k++
				default:
					require.NoError(t, h.p.ConsumeLogs(context.Background(), ld))
					k++
				}
			}
			h.clock.Advance(time.Hour) // every conversation idle: the rest goes out
			require.NoError(t, h.p.sweep(context.Background()))
			rep := workload.Verify(w.Turns, aktoValues(h))
			require.NoError(t, rep.Err(true), "after %d crashes", crashes)
			t.Logf("%d crashes, %d turns, %d repeated with their turn id", crashes, rep.Expected, rep.Duplicated)
		})
	}
}

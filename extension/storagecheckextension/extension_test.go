package storagecheckextension

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/copilotwatch/otelcol-copilotstudio/extension/storagecheckextension/internal/metadata"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
)

// fixedClock is clock.System with a fixed Now, for the moved-aside name.
type fixedClock struct {
	clock.Clock
	now time.Time
}

func (c fixedClock) Now() time.Time { return c.now }

var movedAt = time.Date(2026, 12, 6, 7, 8, 9, 0, time.FixedZone("CET", 3600))

func newCheck(t *testing.T, dir, onCorrupt string) (*storageCheck, *observer.ObservedLogs) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Directory, cfg.OnCorrupt = dir, onCorrupt
	require.NoError(t, cfg.Validate())
	core, logs := observer.New(zapcore.DebugLevel)
	set := extensiontest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	ext, err := NewFactory().Create(context.Background(), set, cfg)
	require.NoError(t, err)
	sc := ext.(*storageCheck)
	sc.clock = fixedClock{clock.System, movedAt}
	t.Cleanup(func() { require.NoError(t, sc.Shutdown(context.Background())) })
	return sc, logs
}

// shippedStores writes the three files the shipped pipeline keeps, through
// a real file_storage, and returns their contents by name.
func shippedStores(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, s := range []store{receiverFile, processorFile, queueFile} {
		path := write(t, dir, s, 200, 500)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		files[s.file] = data
	}
	return files
}

func TestSoundDirectoryStarts(t *testing.T) {
	for _, onCorrupt := range []string{OnCorruptStop, OnCorruptMoveAside} {
		t.Run(onCorrupt, func(t *testing.T) {
			dir := t.TempDir()
			files := shippedStores(t, dir)
			// Not file_storage's: never read, never moved.
			for _, other := range []string{"tempdb123456", "notes.txt", "exporter_kafka__logs.corrupt-20260101T000000Z", "exporter_kafka__logs.20260101T000000.000Z.backup"} {
				require.NoError(t, os.WriteFile(filepath.Join(dir, other), []byte("not bbolt"), 0o600))
			}
			sc, logs := newCheck(t, dir, onCorrupt)
			require.NoError(t, sc.Start(context.Background(), componenttest.NewNopHost()))
			for name, data := range files {
				got, err := os.ReadFile(filepath.Join(dir, name))
				require.NoError(t, err)
				assert.Equal(t, data, got, "%s changed", name)
			}
			assert.Equal(t, 3, logs.FilterMessage("Storage file is sound").Len())
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 7, "nothing moved, nothing added")
		})
	}
}

func TestNoDirectoryYet(t *testing.T) {
	sc, _ := newCheck(t, filepath.Join(t.TempDir(), "not-created-yet"), OnCorruptStop)
	require.NoError(t, sc.Start(context.Background(), componenttest.NewNopHost()))
}

// on_corrupt: stop: Start fails with a message that names the file, says
// what it holds and what is at stake, and gives the recovery steps; the
// file stays as it is.
func TestStopKeepsTheFileAndSaysWhatToDo(t *testing.T) {
	cases := []struct {
		store store
		holds string // what the message must say the file holds
		aside string // and what moving it aside costs
	}{
		{queueFile, "Kafka exporter's sending queue", "the turns in the queue are lost"},
		{processorFile, "activitypair processor's open turns", "the open turns are lost"},
		{receiverFile, "copilotstudio receiver's cursor", "reads again from INITIAL_LOOKBACK"},
	}
	for _, tc := range cases {
		t.Run(tc.store.file, func(t *testing.T) {
			dir := t.TempDir()
			files := shippedStores(t, dir)
			path := filepath.Join(dir, tc.store.file)
			overwrite(t, path, 4096, 8192, 7)
			damaged, err := os.ReadFile(path)
			require.NoError(t, err)

			sc, _ := newCheck(t, dir, OnCorruptStop)
			err = sc.Start(context.Background(), componenttest.NewNopHost())
			require.Error(t, err)
			msg := err.Error()
			for _, want := range []string{
				path + " is corrupt", tc.holds, "nothing in it is lost yet", "Keep the file",
				"restore it from a backup", "move it aside", "on_corrupt: move_aside", "STORAGE_ON_CORRUPT=move_aside", tc.aside,
			} {
				assert.Contains(t, msg, want)
			}
			// Only the damaged file is named.
			for name := range files {
				if name != tc.store.file {
					assert.NotContains(t, msg, name+" is corrupt")
				}
			}
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, damaged, got, "the corrupt file must stay as it is")
		})
	}
}

// on_corrupt: move_aside: the corrupt file is renamed, an error says what is
// lost, and the component then gets a fresh store from file_storage; the
// sound files stay.
func TestMoveAside(t *testing.T) {
	dir := t.TempDir()
	files := shippedStores(t, dir)
	path := filepath.Join(dir, processorFile.file)
	overwrite(t, path, 4096, 8192, 8)
	damaged, err := os.ReadFile(path)
	require.NoError(t, err)

	sc, logs := newCheck(t, dir, OnCorruptMoveAside)
	require.NoError(t, sc.Start(context.Background(), componenttest.NewNopHost()))

	aside := path + ".corrupt-20261206T060809Z"
	got, err := os.ReadFile(aside)
	require.NoError(t, err, "the corrupt file is kept under a new name")
	assert.Equal(t, damaged, got)
	assert.NoFileExists(t, path)
	moved := logs.FilterMessage("Corrupt storage file moved aside; its component starts with empty state")
	require.Equal(t, 1, moved.Len())
	entry := moved.All()[0]
	assert.Equal(t, zapcore.ErrorLevel, entry.Level)
	fields := entry.ContextMap()
	assert.Equal(t, path, fields["file"])
	assert.Equal(t, aside, fields["moved_to"])
	assert.Contains(t, fields["held"], "open turns")
	assert.Contains(t, fields["lost_or_repeated"], "the open turns are lost")
	assert.Contains(t, fields["corruption"], "Page expected to be")

	for name, data := range files {
		if name == processorFile.file {
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.Equal(t, data, got, "%s changed", name)
	}

	// file_storage now starts the processor on an empty store.
	c, err := client(t, dir, processorFile)
	require.NoError(t, err)
	v, err := c.Get(context.Background(), key(0))
	require.NoError(t, err)
	assert.Nil(t, v)
	require.NoError(t, c.Close(context.Background()))

	// The next start finds nothing wrong and leaves the moved file alone.
	again, _ := newCheck(t, dir, OnCorruptMoveAside)
	require.NoError(t, again.Start(context.Background(), componenttest.NewNopHost()))
	assert.FileExists(t, aside)
}

// A file that could not be checked is never moved aside.
func TestLockedFileStopsEvenWithMoveAside(t *testing.T) {
	dir := t.TempDir()
	shippedStores(t, dir)
	held, err := client(t, dir, queueFile) // another collector has it open
	require.NoError(t, err)
	defer held.Close(context.Background())

	sc, _ := newCheck(t, dir, OnCorruptMoveAside)
	err = sc.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "could not be checked")
	assert.Contains(t, err.Error(), "locked by another process")
	assert.FileExists(t, filepath.Join(dir, queueFile.file))
}

func TestDescribe(t *testing.T) {
	holds, _ := describe("receiver_copilotstudio_transcripts_")
	assert.Contains(t, holds, "copilotstudio_transcripts receiver's cursor")
	holds, _ = describe("receiver_copilotstudio_eu")
	assert.Contains(t, holds, "copilotstudio receiver's cursor")
	holds, aside := describe("exporter_akto_")
	assert.Equal(t, "the state the exporter akto keeps in file_storage", holds)
	assert.Contains(t, aside, "empty state")
	holds, _ = describe("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	assert.Contains(t, holds, "hash")
}

package storagecheckextension

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
)

// The files the shipped pipeline keeps, as file_storage names them.
var (
	receiverFile  = store{component.KindReceiver, component.MustNewID("copilotstudio"), "", "receiver_copilotstudio_"}
	processorFile = store{component.KindProcessor, component.MustNewID("activitypair"), "", "processor_activitypair_"}
	queueFile     = store{component.KindExporter, component.MustNewID("kafka"), "logs", "exporter_kafka__logs"}
)

type store struct {
	kind component.Kind
	id   component.ID
	name string
	file string // the name file_storage gives it
}

// shipped is file_storage as collector-config.yaml configures it, but
// without fsync, which changes when bytes reach the disk, not which: it
// would only make these tests slow.
func shipped(cfg *filestorage.Config) {
	cfg.Compaction.OnStart = true
}

// client opens s's client of a real file_storage extension on dir.
func client(t *testing.T, dir string, s store) (storage.Client, error) {
	t.Helper()
	host := harness.StartFileStorage(t, dir, shipped)
	return host.Extension.(storage.Extension).GetClient(context.Background(), s.kind, s.id, s.name)
}

// write fills s's file in dir through a real file_storage: n keys with
// values of size bytes, enough for branch pages above the leaves.
func write(t *testing.T, dir string, s store, n, size int) string {
	t.Helper()
	c, err := client(t, dir, s)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	for i := range n {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		require.NoError(t, c.Set(context.Background(), key(i), v))
	}
	require.NoError(t, c.Close(context.Background()))
	path := filepath.Join(dir, s.file)
	require.FileExists(t, path)
	return path
}

func key(i int) string { return fmt.Sprintf("item-%06d", i) }

// overwrite replaces length bytes at offset with seeded random bytes.
func overwrite(t *testing.T, path string, offset, length int64, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	junk := make([]byte, length)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(junk, offset)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func checkNow(t *testing.T, path string) (stats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return checkFile(ctx, path)
}

func TestSoundFileReadWhole(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, queueFile, 500, 1000)
	st, err := checkNow(t, path)
	require.NoError(t, err)
	assert.Equal(t, 501, st.keys, "every key of file_storage's bucket, and the bucket")
	assert.Equal(t, 1, st.buckets)
	assert.Greater(t, st.bytes, int64(500*1000))
}

// The corruption the collector used to panic on at start, and others a
// disk or a careless copy makes. Each is found, and not by a panic.
func TestCorruptionsFound(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"bytes 4096-12288 overwritten", func(t *testing.T, path string) { overwrite(t, path, 4096, 8192, 1) }},
		{"a leaf page zeroed", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			require.NoError(t, err)
			_, err = f.WriteAt(make([]byte, 4096), 40*4096)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}},
		{"one 512-byte sector of a page torn", func(t *testing.T, path string) { overwrite(t, path, 30*4096+1024, 512, 2) }},
		{"truncated to half", func(t *testing.T, path string) {
			info, err := os.Stat(path)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(path, info.Size()/2))
		}},
		{"both meta pages overwritten", func(t *testing.T, path string) { overwrite(t, path, 0, 8192, 3) }},
		{"emptied", func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 0)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := write(t, t.TempDir(), queueFile, 500, 1000)
			tc.corrupt(t, path)
			_, err := checkNow(t, path)
			require.Error(t, err)
			assert.True(t, isCorrupt(err), "want a corruption, got %v", err)
		})
	}
}

// Whatever a torn write or a damaged sector does to a real file, either the
// check reports it, or file_storage, configured as shipped (compaction on
// start), opens the file and every key reads back without a panic: a panic
// there would kill this test binary, as it killed the collector.
func TestNoCorruptionSlipsThrough(t *testing.T) {
	const keys = 300
	original := write(t, t.TempDir(), queueFile, keys, 700)
	clean, err := os.ReadFile(original)
	require.NoError(t, err)
	pages := int64(len(clean) / 4096)
	runs := 200
	if testing.Short() {
		runs = 40
	}
	found := 0
	for seed := range uint64(runs) {
		dir := t.TempDir()
		path := filepath.Join(dir, queueFile.file)
		require.NoError(t, os.WriteFile(path, clean, 0o600))
		rng := rand.New(rand.NewPCG(seed, 99))
		if seed%2 == 0 { // a whole page, anywhere but the meta pages
			overwrite(t, path, (2+rng.Int64N(pages-2))*4096, 4096, seed)
		} else { // one sector, anywhere
			overwrite(t, path, rng.Int64N(pages*8)*512, 512, seed)
		}
		_, err := checkNow(t, path)
		if err != nil {
			require.True(t, isCorrupt(err), "seed %d: %v", seed, err)
			found++
			continue
		}
		c, err := client(t, dir, queueFile)
		require.NoError(t, err, "seed %d: the check passed but file_storage cannot open the file", seed)
		for i := range keys {
			_, err := c.Get(context.Background(), key(i))
			require.NoError(t, err, "seed %d", seed)
		}
		require.NoError(t, c.Close(context.Background()))
	}
	t.Logf("%d of %d corrupted copies reported corrupt; the rest opened and read back", found, runs)
	assert.Positive(t, found)
}

func TestLockedFileIsNotCorrupt(t *testing.T) {
	path := write(t, t.TempDir(), receiverFile, 10, 100)
	// Another collector has it open (read-write: an exclusive lock).
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	require.NoError(t, err)
	defer db.Close()
	_, err = checkNow(t, path)
	require.Error(t, err)
	assert.False(t, isCorrupt(err))
	assert.Contains(t, err.Error(), "locked by another process")
}

func TestCheckGivesUpWhenTimeRunsOut(t *testing.T) {
	path := write(t, t.TempDir(), receiverFile, 10, 100)
	release := make(chan struct{})
	defer close(release)
	inspectFile = func(string) (stats, error) { <-release; return stats{}, nil } // a check that loops
	defer func() { inspectFile = inspect }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := checkFile(ctx, path)
	require.Error(t, err)
	// A check cut short proves nothing: never a corruption.
	assert.False(t, isCorrupt(err))
	assert.Contains(t, err.Error(), "raise storage_check's timeout")
}

// A damaged key on a branch page, its page reference intact: reading every
// key in order does not notice (a cursor steps from page to page by their
// references), but file_storage's read-write open would panic on the key
// order. bbolt's consistency check, run after the walk, finds it.
func TestBranchKeyOutOfOrder(t *testing.T) {
	path := write(t, t.TempDir(), queueFile, 500, 1000)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	const pageSize, branchPage = 4096, 0x01
	le := binary.LittleEndian
	damaged := false
	for pg := 2; (pg+1)*pageSize <= len(data) && !damaged; pg++ {
		p := data[pg*pageSize:]
		if le.Uint64(p) != uint64(pg) || le.Uint16(p[8:]) != branchPage || le.Uint16(p[10:]) < 3 {
			continue
		}
		// element 1: pos (from the element), ksize, pgid
		elem := 16 + 16
		pos, ksize := int(le.Uint32(p[elem:])), int(le.Uint32(p[elem+4:]))
		for i := range ksize {
			p[elem+pos+i] = 0xff // now above the key of element 2
		}
		damaged = true
	}
	require.True(t, damaged, "no branch page with three children in the file")
	require.NoError(t, os.WriteFile(path, data, 0o600))

	_, err = checkNow(t, path)
	require.Error(t, err)
	assert.True(t, isCorrupt(err), "want a corruption, got %v", err)
	assert.Contains(t, err.Error(), "consistency check")
}

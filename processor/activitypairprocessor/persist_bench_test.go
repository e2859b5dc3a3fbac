package activitypairprocessor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
)

// BenchmarkPersist is what saving the pairing state costs per row, against
// a real file_storage extension (bbolt in a temporary directory, fsync on
// as collector-config.yaml ships it). The load is benchRows' traffic at the
// scale of the end-to-end replay: 20,000 conversations, a reorder window of
// five of their rows, so about 150,000 rows and 40,000 turns stay open;
// emitted_ids_ttl of a minute of that traffic keeps about 600,000 emitted
// ids. Each batch is one ConsumeLogs (the receiver's window is up to 50,000
// rows). Run it with a fixed count, long enough for several snapshots:
//
//	go test -run '^$' -bench Persist -benchtime 20x ./processor/activitypairprocessor
//
// save-cpu-ns/row is the process CPU time (user and system, GC workers
// included) spent in store.save; stored-B/row the keys and values handed
// to the storage client; written-B/row what bbolt wrote to its file
// (/proc/self/io wchar: pages, not values); file-MB the bbolt file at the
// end, peak-file-MB its largest size after any save. pair-cpu-ns/row is the
// rest of ConsumeLogs, for scale.
func BenchmarkPersist(b *testing.B) {
	for _, batch := range []int{8192, 50000} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			benchmarkPersist(b, 20000, batch)
		})
	}
}

func benchmarkPersist(b *testing.B, open, batch int) {
	ctx := context.Background()
	dir := b.TempDir()
	files := testenv.StartFileStorage(b, dir, testenv.WithFsync)
	counter := &countingStorage{Extension: files.Extension.(storage.Extension)}
	host := &testenv.StorageHost{Host: files.Host, Extension: counter}

	cfg := createDefaultConfig().(*Config)
	cfg.StorageID = &storageID
	cfg.ReorderWindow = 10 * time.Second // benchRows: one row per conversation every 2 s
	cfg.EmittedIDsTTL = time.Minute
	cfg.MaxOpenTurns = 10 * open
	cfg.MaxBufferedBytes = 1 << 40 // measure saving, not eviction
	p, err := newProcessor(processortest.NewNopSettings(typ), cfg, consumertest.NewNop(), clock.System)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(ctx, host); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Shutdown(ctx) }()

	g := &benchRows{n: open, phased: true}
	// consume runs ConsumeLogs without its save, then the save alone.
	st := p.store
	consume := func(n int) (pair, save time.Duration, written uint64, allocs, allocBytes uint64) {
		ld := g.batch(n)
		var m0, m1 runtime.MemStats
		cpu0 := testenv.SelfCPUTime()
		p.mu.Lock()
		p.store = nil // the journal keeps what changed
		p.mu.Unlock()
		if err := p.ConsumeLogs(ctx, ld); err != nil {
			b.Fatal(err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.store = st
		runtime.ReadMemStats(&m0)
		cpu1 := testenv.SelfCPUTime()
		w0 := writtenBytes(b)
		if err := st.save(ctx, p.core); err != nil {
			b.Fatal(err)
		}
		cpu2 := testenv.SelfCPUTime()
		w1 := writtenBytes(b)
		runtime.ReadMemStats(&m1)
		return cpu1 - cpu0, cpu2 - cpu1, w1 - w0, m1.Mallocs - m0.Mallocs, m1.TotalAlloc - m0.TotalAlloc
	}
	// Warm up until the emitted ids fill their ttl and the stored state
	// has gone through a snapshot.
	for warm := 45 * open; warm > 0; warm -= batch {
		consume(min(warm, batch))
	}
	stored0 := counter.client.bytes
	var pair, save time.Duration
	var written, allocs, allocBytes uint64
	var peak int64
	var snapshotCPU time.Duration
	snapshots := 0
	rss0 := rssFile(b)
	b.ResetTimer()
	for range b.N {
		since := st.sinceSnap
		pc, sc, w, a, ab := consume(batch)
		if st.sinceSnap < since {
			snapshots++
			snapshotCPU += sc
		}
		pair += pc
		save += sc
		written += w
		allocs += a
		allocBytes += ab
		peak = max(peak, dirSize(b, dir))
	}
	b.StopTimer()
	rows := float64(b.N * batch)
	b.ReportMetric(float64(save.Nanoseconds())/rows, "save-cpu-ns/row")
	b.ReportMetric(float64(pair.Nanoseconds())/rows, "pair-cpu-ns/row")
	b.ReportMetric(float64(counter.client.bytes-stored0)/rows, "stored-B/row")
	b.ReportMetric(float64(written)/rows, "written-B/row")
	b.ReportMetric(float64(allocs)/rows, "save-allocs/row")
	b.ReportMetric(float64(allocBytes)/rows, "save-alloc-B/row")
	b.ReportMetric(float64(dirSize(b, dir))/(1<<20), "file-MB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-file-MB")
	b.ReportMetric(float64(snapshots), "snapshots")
	if snapshots > 0 {
		b.ReportMetric(float64(snapshotCPU.Milliseconds())/float64(snapshots), "cpu-ms/snapshot")
	}
	if deltas := b.N - snapshots; deltas > 0 {
		b.ReportMetric(float64((save-snapshotCPU).Nanoseconds())/float64(deltas*batch), "delta-cpu-ns/row")
	}
	b.ReportMetric(float64(rssFile(b)-rss0)/(1<<20), "rss-file-MB")
	b.ReportMetric(float64(st.snapBytes)/(1<<20), "snapshot-MB")
	b.ReportMetric(float64(p.core.BufferedRows()), "buffered-rows")
	b.ReportMetric(float64(p.core.OpenTurns()), "open-turns")
	b.ReportMetric(float64(p.core.EmittedIDs()), "emitted-ids")
}

// countingStorage counts the bytes of keys and values its client is asked
// to store.
type countingStorage struct {
	storage.Extension
	client *countingClient
}

func (s *countingStorage) GetClient(ctx context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	c, err := s.Extension.GetClient(ctx, kind, id, name)
	s.client = &countingClient{Client: c}
	return s.client, err
}

type countingClient struct {
	storage.Client
	bytes uint64
}

func (c *countingClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	for _, op := range ops {
		if op.Type == storage.Set {
			c.bytes += uint64(len(op.Key) + len(op.Value))
		}
	}
	return c.Client.Batch(ctx, ops...)
}

// writtenBytes is what this process has passed to write calls so far.
func writtenBytes(tb testing.TB) uint64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		tb.Skip("no /proc/self/io:", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("wchar: ")); ok {
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatal("no wchar in /proc/self/io")
	return 0
}

// rssFile is the process's resident memory mapped from files (bbolt maps
// its file), in bytes.
func rssFile(tb testing.TB) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status:", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no RssFile in /proc/self/status")
	return 0
}

// dirSize is the size of the files in dir.
func dirSize(tb testing.TB, dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(fmt.Errorf("stat %s: %w", e.Name(), err))
		}
		n += fi.Size()
	}
	return n
}

package e2e

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// queueFile is the Kafka exporter's sending queue, as file_storage names it.
const queueFile = "exporter_kafka__logs"

// TestCorruptQueueFile corrupts the Kafka exporter's queue file while turns
// wait in it, the way a disk or a torn copy would, and starts the
// distribution on it. Every page after the two meta pages is overwritten:
// whichever pages the queue's transactions left in use, both metas' root
// is among them. Overwriting fewer, e.g. bytes 4096-12288 (the second meta
// page and page 2), can leave the older meta and the pages it uses intact:
// bbolt then opens the previous transaction, as after a crash mid-commit. By
// default (STORAGE_ON_CORRUPT=stop) the collector exits with storage_check's
// message, not bbolt's panic, and leaves the file as it was; with
// move_aside it renames the file, says so, starts, and delivers new turns.
func TestCorruptQueueFile(t *testing.T) {
	bin := harness.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	storageDir := filepath.Join(dir, "storage")
	kafka, azure := startKafkaAndAzure(t, dir)
	consumer, err := kafka.Consume(harness.DefaultTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()

	sample, err := harness.LoadSample(root, time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	azure.AppInsights.AddRows(sample.Rows...)

	// The broker refuses producers: the sample's turns wait in the queue.
	kafka.SetProduceDown(true)
	env := harness.Env(azure.Env(), kafka.Env(harness.DefaultTopic), harness.FastEnv())
	col := startCollector(ctx, t, harness.CollectorOptions{
		Binary: bin, Config: harness.CollectorConfigPath(), Env: env, StorageDir: storageDir,
	})
	defer killAndReport(t, col)
	if err := harness.WaitFor(ctx, 50*time.Millisecond, "every sample turn in the sending queue", func() (bool, error) {
		n, _, err := col.Metric(ctx, "otelcol_exporter_queue_size")
		return err == nil && int(n) >= len(sample.Turns), nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := col.Kill(); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(storageDir, queueFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	corruptBytes(t, path, 8192, info.Size())
	damaged, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("stop: exits with the recovery steps, file untouched", func(t *testing.T) {
		before := len(col.Output())
		if err := col.Start(ctx); err == nil {
			t.Fatal("the collector started on a corrupt queue file")
		}
		if col.Running() || col.ExitErr() == nil {
			t.Fatalf("the collector did not exit with an error: running %v, exit %v", col.Running(), col.ExitErr())
		}
		out := col.Output()[before:]
		for _, want := range []string{
			path + " is corrupt", "It holds the Kafka exporter's sending queue",
			"Keep the file", "restore it from a backup", "STORAGE_ON_CORRUPT=move_aside", "the turns in the queue are lost",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
			t.Errorf("the collector panicked instead of stopping with a message")
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, damaged) {
			t.Errorf("the corrupt file changed or went away (%v)", err)
		}
		if t.Failed() {
			t.Logf("output of the failed start:\n%s", out)
		}
	})

	t.Run("move_aside: starts clean and runs", func(t *testing.T) {
		moveAside, err := harness.StartCollector(ctx, harness.CollectorOptions{
			Binary: bin, Config: harness.CollectorConfigPath(), StorageDir: storageDir,
			Env: harness.Env(env, map[string]string{"STORAGE_ON_CORRUPT": "move_aside"}),
		})
		if moveAside != nil {
			defer moveAside.Kill()
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(moveAside.Output(), "Corrupt storage file moved aside") {
			t.Errorf("no error log says the file was moved aside:\n%s", moveAside.Output())
		}
		aside, err := filepath.Glob(path + ".corrupt-*")
		if err != nil || len(aside) != 1 {
			t.Fatalf("moved-aside files %v (%v), want one", aside, err)
		}
		if got, err := os.ReadFile(aside[0]); err != nil || !bytes.Equal(got, damaged) {
			t.Errorf("the moved-aside file is not the corrupt one (%v)", err)
		}

		// It runs: the broker is back, and a new conversation reaches Kafka.
		kafka.SetProduceDown(false)
		w := workload.Generate(workload.Config{Seed: 20261206, Conversations: 3, Start: time.Now().Add(-10 * time.Minute), Span: time.Minute})
		now := time.Now()
		for i := range w.Rows {
			w.Rows[i].IngestionTime = now.Add(-time.Second - time.Duration(len(w.Rows)-i)*time.Millisecond)
		}
		azure.AppInsights.AddRows(w.Rows...)
		ty := newTally(w.Turns, conversationsOf(sample.Turns)...)
		ty.waitDelivered(ctx, t, consumer, len(w.Turns))
		if err := ty.v.Report().Err(false); err != nil {
			t.Fatalf("after moving the queue aside: %v", err)
		}
	})
}

// corruptBytes overwrites [from, to) of path with random bytes.
func corruptBytes(t *testing.T, path string, from, to int64) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() < to {
		t.Fatalf("%s has %d bytes, fewer than the %d to corrupt", path, info.Size(), to)
	}
	junk := make([]byte, to-from)
	rng := rand.New(rand.NewPCG(16, 4096))
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(junk, from); err != nil {
		t.Fatal(err)
	}
}

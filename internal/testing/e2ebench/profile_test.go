package e2ebench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
)

// pprofOverlay is the repository's collector-config.pprof.yaml: the pprof
// extension on PPROF_ENDPOINT.
var pprofOverlay = filepath.Join(filepath.Dir(harness.CollectorConfigPath()), "collector-config.pprof.yaml")

// cpuProfileSeconds is the length of the collector's CPU profile, taken from
// when cpuProfileAt of the workload has been served: the middle of the run,
// past start-up, before the tail.
const (
	cpuProfileSeconds = 20
	cpuProfileAt      = 0.3
)

// profiler saves the collector's profiles into dir: cpu.pb.gz (20 s of CPU
// from the middle of the run), heap-peak.pb.gz (the heap when the
// collector's resident set was largest, as far as sampling each second sees)
// and heap-end.pb.gz. Read them with `go tool pprof -top -cum <binary> <file>`
// (-sample_index=inuse_space for the heap).
type profiler struct {
	dir, baseURL string
	col          *harness.Collector

	lastSample time.Time
	peakRSS    int64 // largest VmRSS seen
	heapRSS    int64 // VmRSS when heap-peak.pb.gz was taken
	cpuDone    chan error
}

func newProfiler(dir string, col *harness.Collector, endpoint string) *profiler {
	return &profiler{dir: dir, baseURL: "http://" + endpoint + "/debug/pprof/", col: col}
}

// tick samples the resident set about once a second and takes a heap profile
// whenever it has grown 5% past the last one's; it starts the CPU profile
// once the share served of the workload reaches cpuProfileAt.
func (p *profiler) tick(ctx context.Context, served float64) error {
	if p.cpuDone == nil && served >= cpuProfileAt {
		p.cpuDone = make(chan error, 1)
		go func() {
			p.cpuDone <- p.save(ctx, "profile?seconds="+strconv.Itoa(cpuProfileSeconds), "cpu.pb.gz")
		}()
	}
	if time.Since(p.lastSample) < time.Second {
		return nil
	}
	p.lastSample = time.Now()
	mem, err := p.col.Memory()
	if err != nil {
		return err
	}
	rss := mem["VmRSS"]
	p.peakRSS = max(p.peakRSS, rss)
	if rss > p.heapRSS+p.heapRSS/20 {
		if err := p.save(ctx, "heap", "heap-peak.pb.gz"); err != nil {
			return err
		}
		p.heapRSS = rss
	}
	return nil
}

// finish waits for the CPU profile and takes the last heap profile.
func (p *profiler) finish(ctx context.Context) error {
	if p.cpuDone != nil {
		if err := <-p.cpuDone; err != nil {
			return err
		}
	}
	return p.save(ctx, "heap", "heap-end.pb.gz")
}

// save fetches one pprof endpoint into dir/name, replacing it whole.
func (p *profiler) save(ctx context.Context, path, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.baseURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: %s", path, resp.Status)
	}
	tmp, err := os.CreateTemp(p.dir, name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, resp.Body); err != nil {
		tmp.Close()
		return fmt.Errorf("pprof %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(p.dir, name))
}

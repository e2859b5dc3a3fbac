package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CollectorOptions say how to run the distribution binary.
type CollectorOptions struct {
	// Binary is the otelcol-copilotstudio executable (see Binary).
	Binary string
	// Config is the config file, normally CollectorConfigPath().
	Config string
	// Overlays are more config files, given after Config as further
	// --config flags: the collector merges them over it in order (maps are
	// merged, lists replaced).
	Overlays []string
	// Env is added to this process's environment; it wins over it.
	Env map[string]string
	// StorageDir is file_storage's directory (STORAGE_DIR): the cursor,
	// the pairing state and the Kafka queue. Keep it across restarts.
	StorageDir string
	// Output, when set, receives a copy of the collector's stdout and stderr.
	Output io.Writer
}

// Collector is the distribution running as a child process. Start, Kill and
// Stop may be repeated; the ports, environment and storage stay the same.
type Collector struct {
	opts        CollectorOptions
	healthPort  int
	metricsPort int
	output      lockedBuffer

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has exited
	exitErr error
}

// StartCollector picks free loopback ports for health_check and the metrics
// endpoint, starts the collector and waits until health_check answers 200.
func StartCollector(ctx context.Context, opts CollectorOptions) (*Collector, error) {
	if opts.Binary == "" || opts.Config == "" || opts.StorageDir == "" {
		return nil, errors.New("harness: CollectorOptions needs Binary, Config and StorageDir")
	}
	health, err := FreePort()
	if err != nil {
		return nil, err
	}
	metrics, err := FreePort()
	if err != nil {
		return nil, err
	}
	c := &Collector{opts: opts, healthPort: health, metricsPort: metrics}
	if err := c.Start(ctx); err != nil {
		return c, err
	}
	return c, nil
}

// Start runs the collector (again) and waits until it is healthy. It fails
// early with the collector's output when the process exits instead.
func (c *Collector) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.cmd != nil && !c.exitedLocked() {
		c.mu.Unlock()
		return errors.New("harness: collector is already running")
	}
	args := []string{"--config", c.opts.Config}
	for _, overlay := range c.opts.Overlays {
		args = append(args, "--config", overlay)
	}
	cmd := exec.Command(c.opts.Binary, args...)
	cmd.Env = os.Environ()
	for k, v := range c.Env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out io.Writer = &c.output
	if c.opts.Output != nil {
		out = io.MultiWriter(&c.output, c.opts.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		c.mu.Unlock()
		return fmt.Errorf("harness: start %s: %w", c.opts.Binary, err)
	}
	exited := make(chan struct{})
	c.cmd, c.exited, c.exitErr = cmd, exited, nil
	c.mu.Unlock()

	go func() {
		err := cmd.Wait()
		c.mu.Lock()
		c.exitErr = err
		c.mu.Unlock()
		close(exited)
	}()
	return c.WaitHealthy(ctx)
}

// Env is the environment the collector gets on top of this process's:
// the options' Env plus storage, health and metrics endpoints.
func (c *Collector) Env() map[string]string {
	return Env(c.opts.Env, map[string]string{
		"STORAGE_DIR":           c.opts.StorageDir,
		"HEALTH_CHECK_ENDPOINT": "127.0.0.1:" + strconv.Itoa(c.healthPort),
		"METRICS_HOST":          "127.0.0.1",
		"METRICS_PORT":          strconv.Itoa(c.metricsPort),
	})
}

func (c *Collector) exitedLocked() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// WaitHealthy polls health_check until it answers 200, the process exits or
// ctx ends.
func (c *Collector) WaitHealthy(ctx context.Context) error {
	c.mu.Lock()
	exited := c.exited
	c.mu.Unlock()
	url := "http://127.0.0.1:" + strconv.Itoa(c.healthPort) + "/"
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		if healthy(ctx, url) {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("harness: collector exited before it was healthy (%v); output:\n%s", c.ExitErr(), c.Output())
		case <-ctx.Done():
			return fmt.Errorf("harness: collector not healthy: %w; output:\n%s", ctx.Err(), c.Output())
		case <-ticker.C:
		}
	}
}

func healthy(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Kill sends SIGKILL and waits for the process to be gone: nothing gets to
// flush, as in a crash or an OOM kill.
func (c *Collector) Kill() error {
	return c.signal(syscall.SIGKILL, 0)
}

// Stop sends SIGTERM and waits up to grace for a clean shutdown, then SIGKILL.
func (c *Collector) Stop(grace time.Duration) error {
	return c.signal(syscall.SIGTERM, grace)
}

func (c *Collector) signal(sig syscall.Signal, grace time.Duration) error {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	if sig == syscall.SIGKILL {
		<-exited
		return nil
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exited:
		return nil
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("harness: collector did not stop within %v of %v; killed", grace, sig)
	}
}

// Running reports whether the process is alive.
func (c *Collector) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmd != nil && !c.exitedLocked()
}

// Memory reads the running process's memory figures from /proc/<pid>/status
// (Linux only), in bytes, keyed by their names there: VmHWM (peak resident),
// VmRSS, RssAnon (heap and stacks), RssFile (mapped files, e.g. file_storage's
// bbolt databases).
func (c *Collector) Memory() (map[string]int64, error) {
	pid, err := c.PID()
	if err != nil {
		return nil, err
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	mem := map[string]int64{}
	for _, line := range strings.Split(string(status), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || !strings.HasSuffix(value, " kB") {
			continue
		}
		if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(value, " kB")), 10, 64); err == nil {
			mem[name] = kb * 1024
		}
	}
	return mem, nil
}

// PID is the running process's id.
func (c *Collector) PID() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil || c.exitedLocked() {
		return 0, errors.New("harness: collector is not running")
	}
	return c.cmd.Process.Pid, nil
}

// CPUTime is the CPU time the running process has used so far, user plus
// system, all threads (Linux only: utime and stime of /proc/<pid>/stat).
// Unlike wall time it hardly depends on what else the machine is doing.
func (c *Collector) CPUTime() (time.Duration, error) {
	pid, err := c.PID()
	if err != nil {
		return 0, err
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(stat))
}

// clockTicksPerSecond is USER_HZ, the unit of /proc/<pid>/stat's times:
// 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK)).
const clockTicksPerSecond = 100

// parseStatCPU reads utime + stime (fields 14 and 15) of a /proc/<pid>/stat
// line. The command name (field 2) is in parentheses and may hold spaces,
// so fields are counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("harness: /proc stat line %.80q: no command name", stat)
	}
	fields := strings.Fields(stat[end+1:]) // fields[0] is field 3, the state
	if len(fields) < 13 {
		return 0, fmt.Errorf("harness: /proc stat line %.80q: too few fields", stat)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("harness: /proc stat field %q: %w", f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicksPerSecond, nil
}

// ExitErr is how the last process ended (nil while running or on exit 0).
func (c *Collector) ExitErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exitErr
}

// Output is everything the collector wrote to stdout and stderr, all runs.
func (c *Collector) Output() string { return c.output.String() }

// MetricsURL is the collector's own Prometheus endpoint.
func (c *Collector) MetricsURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(c.metricsPort) + "/metrics"
}

// Metrics fetches the collector's own metrics, Prometheus text format.
func (c *Collector) Metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.MetricsURL(), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("harness: %s: %s", c.MetricsURL(), resp.Status)
	}
	return string(body), err
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Metric is the value of one of the collector's own metrics, summed over
// its label sets; false when the collector does not report it (yet).
func (c *Collector) Metric(ctx context.Context, name string) (float64, bool, error) {
	text, err := c.Metrics(ctx)
	if err != nil {
		return 0, false, err
	}
	return metricValue(text, name)
}

// metricValue sums the samples of name in Prometheus text format.
func metricValue(text, name string) (float64, bool, error) {
	sum, found := 0.0, false
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("harness: metric line %q: %w", line, err)
		}
		sum, found = sum+v, true
	}
	return sum, found, nil
}

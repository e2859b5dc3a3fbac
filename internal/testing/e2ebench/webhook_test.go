package e2ebench

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

// The webhook load: Copilot Studio's threat detection calls at a steady
// rate against the built collector with collector-config.yaml and
// collector-config.webhook.yaml (the shipped pipeline into a kfake broker),
// over HTTPS with tokens signed by the Entra ID stand-in.
// WEBHOOK_BENCH_RATE (calls/s) and WEBHOOK_BENCH_SECONDS size it.
const (
	defaultWebhookRate    = 200
	defaultWebhookSeconds = 60
	// webhookWarmUp of calls at the same rate goes first and is not
	// counted: connections, TLS sessions, the Go runtime's first growth.
	webhookWarmUp = 5 * time.Second
	// copilotStudioBudget is how long Copilot Studio waits for an answer,
	// network included.
	copilotStudioBudget = time.Second
)

// webhookResult is what one run of the load measured, over the calls of
// the steady part.
type webhookResult struct {
	rate     float64
	calls    int           // sent in the steady part
	duration time.Duration // of the steady part's sending
	// answers: from the moment each call was due (its place in the
	// schedule, not when it happened to be sent) to its whole answer.
	answers []time.Duration
	// clientLag: from the moment each call was due to the moment the
	// client sent it (this process's scheduling; part of answers).
	clientLag []time.Duration
	// toKafka: from the moment each call was due to its record read from
	// the topic, for the calls whose record arrived.
	toKafka []time.Duration
	// outcomes counts the Otelcol-Record header of the 200 answers
	// (accepted, deadline, refused, overloaded); "error" counts calls with
	// no answer, "status <n>" other answers.
	outcomes map[string]int
	// overBudget counts answers later than copilotStudioBudget.
	overBudget int
	// lost counts calls answered accepted or deadline whose record never
	// reached the topic; repeated counts records beyond the first of a call.
	lost, repeated int
	collectorCPU   time.Duration // utime+stime over the steady part and its records
	benchCPU       time.Duration
}

var (
	webhookOnce   sync.Once
	webhookCached webhookResult
	webhookErr    error
)

// webhookLoad runs the load once per test binary: BenchmarkWebhook and
// BenchmarkFreshness/webhook report the same run.
func webhookLoad(b *testing.B) webhookResult {
	bin := os.Getenv("OTELCOL_BINARY")
	if bin == "" {
		b.Skip("OTELCOL_BINARY is not set: run `make bench`")
	}
	webhookOnce.Do(func() {
		rate, seconds := envInt(b, "WEBHOOK_BENCH_RATE", defaultWebhookRate), envInt(b, "WEBHOOK_BENCH_SECONDS", defaultWebhookSeconds)
		webhookCached, webhookErr = runWebhookLoad(b, bin, float64(rate), time.Duration(seconds)*time.Second)
	})
	if webhookErr != nil {
		b.Fatal(webhookErr)
	}
	return webhookCached
}

// BenchmarkWebhook reports how the collector answers Copilot Studio's
// calls under a steady open-loop load (calls go out on schedule, whatever
// the answers do, so a slow answer cannot hold back the calls after it and
// hide its own delay): answer latency, the collector's CPU per call, what
// the answers said of their records, and whether every acknowledged call's
// record reached Kafka. Run with -benchtime 1x: one load per run.
func BenchmarkWebhook(b *testing.B) {
	b.Run("shipped", func(b *testing.B) {
		var res webhookResult
		for range b.N {
			res = webhookLoad(b)
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(res.rate, "calls/s")
		b.ReportMetric(float64(res.calls), "calls")
		b.ReportMetric(ms(percentile(res.answers, 50)), "answer-p50-ms")
		b.ReportMetric(ms(percentile(res.answers, 90)), "answer-p90-ms")
		b.ReportMetric(ms(percentile(res.answers, 99)), "answer-p99-ms")
		b.ReportMetric(ms(percentile(res.answers, 100)), "answer-max-ms")
		b.ReportMetric(ms(percentile(res.clientLag, 99)), "client-lag-p99-ms")
		b.ReportMetric(ms(percentile(res.toKafka, 50)), "kafka-p50-ms")
		b.ReportMetric(ms(percentile(res.toKafka, 99)), "kafka-p99-ms")
		b.ReportMetric(ms(percentile(res.toKafka, 100)), "kafka-max-ms")
		b.ReportMetric(float64(res.collectorCPU.Microseconds())/float64(res.calls), "collector-cpu-us/call")
		b.ReportMetric(float64(res.benchCPU.Microseconds())/float64(res.calls), "bench-cpu-us/call")
		for _, o := range []string{"accepted", "deadline", "refused", "overloaded", "error"} {
			b.ReportMetric(float64(res.outcomes[o]), o)
		}
		b.ReportMetric(float64(res.overBudget), "over-1s")
		b.ReportMetric(float64(res.lost), "lost")
		b.ReportMetric(float64(res.repeated), "repeated")
		met := func(ok bool) string {
			if ok {
				return "met"
			}
			return "MISSED"
		}
		b.Logf("%d calls in %v (%.0f/s): answers p50 %v p99 %v (goal p99 < 100ms: %s); call to Kafka p50 %v p99 %v (goal p99 < 2s: %s); outcomes %v, %d over 1 s, %d lost, %d repeated; collector CPU %v (%.0f us/call)",
			res.calls, res.duration.Round(time.Millisecond), float64(res.calls)/res.duration.Seconds(),
			percentile(res.answers, 50), percentile(res.answers, 99), met(percentile(res.answers, 99) < 100*time.Millisecond),
			percentile(res.toKafka, 50), percentile(res.toKafka, 99), met(percentile(res.toKafka, 99) < 2*time.Second),
			res.outcomes, res.overBudget, res.lost, res.repeated, res.collectorCPU, float64(res.collectorCPU.Microseconds())/float64(res.calls))
		if res.lost > 0 {
			b.Errorf("%d acknowledged calls' records never reached Kafka", res.lost)
		}
	})
}

// BenchmarkFreshness reports the webhook path's row of BENCHMARKS.md's
// freshness table (cmd/benchreport): from the moment a call was due to its
// record in Kafka, in real time (the other paths are simulated: see
// internal/testing/freshness).
func BenchmarkFreshness(b *testing.B) {
	b.Run("webhook/shipped", func(b *testing.B) {
		var res webhookResult
		for range b.N {
			res = webhookLoad(b)
		}
		b.ReportMetric(percentile(res.toKafka, 50).Seconds(), "p50-s")
		b.ReportMetric(percentile(res.toKafka, 90).Seconds(), "p90-s")
		b.ReportMetric(percentile(res.toKafka, 99).Seconds(), "p99-s")
		b.ReportMetric(percentile(res.toKafka, 100).Seconds(), "max-s")
		b.ReportMetric(float64(len(res.toKafka)), "records")
		b.ReportMetric(res.rate, "calls/s")
		b.ReportMetric(0.3, "deadline-s") // collector-config.webhook.yaml's answer_deadline
		b.ReportMetric(1, "flush-s")      // collector-config.yaml's Kafka batch flush_timeout
	})
}

func runWebhookLoad(b *testing.B, bin string, rate float64, steady time.Duration) (webhookResult, error) {
	res := webhookResult{rate: rate, outcomes: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), steady+10*time.Minute)
	defer cancel()
	dir := b.TempDir()
	azure, err := harness.StartAzure(dir)
	if err != nil {
		return res, err
	}
	defer azure.Close()
	kafka, err := harness.StartKafka(harness.DefaultTopic, 3)
	if err != nil {
		return res, err
	}
	defer kafka.Close()
	hook, err := harness.NewWebhookSetUp(dir, azure.Entra)
	if err != nil {
		return res, err
	}

	interval := time.Duration(float64(time.Second) / rate)
	warm := int(webhookWarmUp / interval)
	n := warm + int(steady/interval)
	calls := webhookclient.Generate(20261206, n, webhookclient.Options{AgentTenantID: harness.StandInTenantID})
	index := make(map[string]int, n)
	for i, c := range calls {
		index[c.ConversationID+"\x00"+c.StepID] = i
	}
	due := make([]time.Time, n)
	answered := make([]string, n) // outcome per call, "" until answered
	arrived := make([]time.Time, n)
	var mu sync.Mutex
	consumer, err := kafka.Consume(harness.DefaultTopic, func(r *kgo.Record) {
		at := time.Now()
		i, ok := callOf(r.Value, index)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !ok:
		case arrived[i].IsZero():
			arrived[i] = at
		default:
			res.repeated++
		}
	})
	if err != nil {
		return res, err
	}
	defer consumer.Close()

	root, err := harness.RepoRoot()
	if err != nil {
		return res, err
	}
	opts := harness.CollectorOptions{
		Binary: bin, Config: harness.CollectorConfigPath(), StorageDir: dir,
		Overlays: []string{filepath.Join(root, "collector-config.webhook.yaml")},
		Env:      harness.Env(azure.Env(), kafka.Env(harness.DefaultTopic), hook.Env),
	}
	profileDir := os.Getenv("WEBHOOK_BENCH_PROFILE_DIR")
	var pprofEndpoint string
	if profileDir != "" {
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			return res, err
		}
		port, err := harness.FreePort()
		if err != nil {
			return res, err
		}
		pprofEndpoint = "127.0.0.1:" + strconv.Itoa(port)
		opts.Env = harness.Env(opts.Env, map[string]string{"PPROF_ENDPOINT": pprofEndpoint})
		opts.Overlays = append(opts.Overlays, pprofOverlay)
	}
	col, err := harness.StartCollector(ctx, opts)
	if err != nil {
		return res, err
	}
	defer col.Kill()
	// Healthy is not enough: the receiver answers 503 until it has read
	// Entra ID's signing keys.
	if err := harness.WaitFor(ctx, 20*time.Millisecond, "the webhook to answer /validate", func() (bool, error) {
		a, err := hook.Client.Validate(ctx)
		return err == nil && a.Status == http.StatusOK, nil
	}); err != nil {
		return res, err
	}

	send := func(i int) {
		a, err := hook.Client.Analyze(ctx, calls[i].Body)
		at := time.Now()
		outcome := a.Record
		switch {
		case err != nil:
			outcome = "error"
		case a.Status != http.StatusOK:
			outcome = "status " + strconv.Itoa(a.Status)
		}
		mu.Lock()
		defer mu.Unlock()
		answered[i] = outcome
		if i >= warm {
			latency := at.Sub(due[i])
			res.answers = append(res.answers, latency)
			if err == nil {
				res.clientLag = append(res.clientLag, max(latency-a.Latency, 0))
			}
			res.outcomes[outcome]++
			if latency > copilotStudioBudget {
				res.overBudget++
			}
		}
	}
	var profDone chan error
	var wg sync.WaitGroup
	var cpuAtSteady time.Duration
	var benchCPUAtSteady time.Duration
	start := time.Now().Add(50 * time.Millisecond)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		if i == warm {
			if cpuAtSteady, err = col.CPUTime(); err != nil {
				return res, err
			}
			benchCPUAtSteady = harness.SelfCPUTime()
			if profileDir != "" {
				profDone = make(chan error, 1)
				p := newProfiler(profileDir, col, pprofEndpoint)
				seconds := max(1, int(steady.Seconds()/2))
				go func() { profDone <- p.save(ctx, "profile?seconds="+strconv.Itoa(seconds), "webhook-cpu.pb.gz") }()
			}
		}
		mu.Lock()
		due[i] = at
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			send(i)
		}()
	}
	res.duration = time.Since(start.Add(time.Duration(warm) * interval))
	wg.Wait()

	// Every call answered accepted or deadline has a record on its way:
	// wait for them, with a guard far beyond the Kafka exporter's retry
	// interval. Others (refused, overloaded, errors) never get one.
	expected := func() (want, got int) {
		mu.Lock()
		defer mu.Unlock()
		for i := range n {
			if answered[i] == "accepted" || answered[i] == "deadline" {
				want++
				if !arrived[i].IsZero() {
					got++
				}
			}
		}
		return want, got
	}
	guardCtx, cancelGuard := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelGuard()
	waitErr := harness.WaitFor(guardCtx, 20*time.Millisecond, "every acknowledged call's record", func() (bool, error) {
		want, got := expected()
		return got == want, nil
	})
	end, err := col.CPUTime()
	if err != nil {
		return res, err
	}
	res.collectorCPU = end - cpuAtSteady
	res.benchCPU = harness.SelfCPUTime() - benchCPUAtSteady
	if profDone != nil {
		if err := <-profDone; err != nil {
			return res, err
		}
		b.Logf("collector CPU profile of the steady part: %s/webhook-cpu.pb.gz", profileDir)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := warm; i < n; i++ {
		res.calls++
		acknowledged := answered[i] == "accepted" || answered[i] == "deadline"
		switch {
		case !arrived[i].IsZero():
			res.toKafka = append(res.toKafka, arrived[i].Sub(due[i]))
		case acknowledged:
			res.lost++
		}
	}
	slices.Sort(res.answers)
	slices.Sort(res.clientLag)
	slices.Sort(res.toKafka)
	if waitErr != nil {
		b.Logf("%v: %d acknowledged calls have no record", waitErr, res.lost)
	}
	if m, err := col.Metrics(ctx); err == nil {
		b.Logf("collector metrics at the end:\n%s", grepLines(m, "copilotstudio_webhook_calls", "webhook_late_records", "exporter_sent_log_records",
			`answer_duration_bucket{endpoint="analyze_tool_execution"`))
	}
	return res, nil
}

// callOf finds the generated call a Kafka record is of, by its
// conversation and step ids (request headers of a tool call's Akto record).
func callOf(value []byte, index map[string]int) (int, bool) {
	var rec struct {
		RequestHeaders string `json:"requestHeaders"`
	}
	if json.Unmarshal(value, &rec) != nil {
		return 0, false
	}
	var headers map[string]string
	if json.Unmarshal([]byte(rec.RequestHeaders), &headers) != nil {
		return 0, false
	}
	i, ok := index[headers[schema.AktoHeaderConversationID]+"\x00"+headers[schema.AktoHeaderStepID]]
	return i, ok
}

// percentile is the nearest-rank p-th percentile of sorted (0 < p <= 100).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// grepLines keeps the lines of text (Prometheus exposition) holding any of
// the words, comments aside.
func grepLines(text string, words ...string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, w := range words {
			if strings.Contains(line, w) {
				b.WriteString(line + "\n")
				break
			}
		}
	}
	return b.String()
}

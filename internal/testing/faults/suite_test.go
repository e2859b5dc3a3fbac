package faults

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// Environment variables that steer the suite.
const (
	// envFull runs every scenario at full size (make faults); without it the
	// suite runs its short form (make test).
	envFull = "FAULTS_FULL"
	// envResults names the file the summary is written to (make faults:
	// internal/testing/faults/RESULTS.md).
	envResults = "FAULTS_RESULTS"
	// envSeed replays a run; the default seed is fixed so runs compare.
	envSeed = "FAULTS_SEED"
	// envOnly runs the scenarios whose name contains this text.
	envOnly = "FAULTS_ONLY"
	// envLogs names a directory where each scenario's collector output is kept.
	envLogs = "FAULTS_LOGS"
)

// size is what one scenario generates and how hard it pushes.
type size struct {
	name          string
	conversations int
	kills         int // SIGKILLs in the crash scenario
	rowLimit      int // max_rows_per_query in the row-limit scenarios
	// queueShare, when set, makes the Kafka sending queue (KAFKA_QUEUE_SIZE)
	// hold this share of the backlog's turns in the broker-down scenario:
	// the short form's backlog fits in the shipped queue, the full form's
	// outlasts it twice over.
	queueShare float64
	// burst is how many consecutive failures one injection makes. The
	// receiver's backoff (2 s, doubling) is not configurable, so the short
	// form keeps bursts at one to stay quick; the full form pushes it.
	burst int
	// transcriptPage is TRANSCRIPTS_PAGE_SIZE: the short form reads its
	// backlog in small pages, so that faults land in the middle of it.
	transcriptPage int
	// outage is how many requests a Dataverse outage answers 503 (the
	// receiver's backoff, 1 s doubling, is not configurable either): the
	// full form outlasts a poll's five tries.
	outage int
	// callers send the webhook calls at once; pendingRecords and
	// webhookQueue, when set, shrink WEBHOOK_MAX_PENDING_RECORDS and
	// KAFKA_QUEUE_SIZE (the batch's 500 at least) for the webhook's broker
	// outage, which fills both; the full form keeps the shipped ones.
	callers                      int
	pendingRecords, webhookQueue int
	deadline                     time.Duration // failure guard per scenario, never a synchronisation
}

var (
	shortSize = size{name: "short", conversations: 150, kills: 3, rowLimit: 200, queueShare: 0.5, burst: 1,
		transcriptPage: 10, outage: 2, callers: 8, pendingRecords: 50, webhookQueue: 500, deadline: 4 * time.Minute}
	fullSize = size{name: "full", conversations: 10000, kills: 8, rowLimit: 5000, burst: 3,
		transcriptPage: 50, outage: 8, callers: 16, deadline: 20 * time.Minute}
)

// Settings every scenario shares. The receiver polls every second and stays
// a second behind now; the processor keeps its production reorder window,
// and its wall-clock reply timeout stays well above any pause a scenario
// causes (retries, restarts), so a turn is never emitted half-read. The last
// turns of the workload are flushed by the watermark conversation, not by
// waiting out the timeout.
func baseEnv() map[string]string {
	return map[string]string{
		"POLL_INTERVAL":   "1s",
		"INGESTION_DELAY": "1s",
		"REPLY_TIMEOUT":   "90s",
		"REORDER_WINDOW":  "5m",
		"LOG_LEVEL":       cmp.Or(os.Getenv("FAULTS_LOG_LEVEL"), "info"),
	}
}

func TestFaults(t *testing.T) {
	bin := harness.Binary(t)
	sz := shortSize
	if os.Getenv(envFull) != "" {
		sz = fullSize
	}
	seed := uint64(20260218)
	if s := os.Getenv(envSeed); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", envSeed, s, err)
		}
	}
	if os.Getenv(envResults) != "" && (sz != fullSize || os.Getenv(envOnly) != "") {
		// RESULTS.md stands for every scenario at full size (TestResultsFresh checks it).
		t.Fatalf("%s writes RESULTS.md, which must hold every scenario at full size: set %s=1 and unset %s (make faults does)", envResults, envFull, envOnly)
	}
	source := commit() // what the binary was built from, as `make faults` builds first
	var results []result
	for i, sc := range scenarios() {
		if only := os.Getenv(envOnly); only != "" && !strings.Contains(sc.name, only) {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			res := result{scenario: sc.name, what: sc.what}
			defer func() { results = append(results, res) }()
			runScenario(t, bin, sz, seed+uint64(i), sc, &res)
		})
	}
	if path := os.Getenv(envResults); path != "" && len(results) > 0 {
		if err := writeResults(path, sz, seed, source, results); err != nil {
			t.Fatal(err)
		}
		t.Logf("results written to %s", path)
	}
}

// path is the source a scenario drives through the collector, and what its
// records are checked against.
type path int

const (
	// appInsightsPath: collector-config.yaml alone; Application Insights
	// rows of a generated workload, paired into turns.
	appInsightsPath path = iota
	// transcriptsPath: with collector-config.transcripts.yaml; Dataverse
	// transcripts of a generated workload, turns with their tool steps
	// (transcripts_test.go).
	transcriptsPath
	// webhookPath: with collector-config.webhook.yaml; threat-detection
	// calls sent while the scenario runs, one record per call
	// (webhook_test.go).
	webhookPath
)

// scenario is one fault. The steps run in order on a fresh broker, fresh
// stand-ins and an empty storage directory, with the main workload loaded.
type scenario struct {
	name string
	// what the suite says about it in RESULTS.md
	what string
	// path is the source driven; the Application Insights one by default.
	path path
	// crash: a turn may repeat, with the same turn id (the exporter resends
	// what it had sent but not yet marked done).
	crash bool
	env   func(sz size) map[string]string
	// tune adjusts the main workload's generation (Application Insights);
	// prepare changes the generated rows (and their ground truth) before
	// they are loaded.
	tune    func(cfg *workload.Config)
	prepare func(r *run)
	// setup runs before the collector starts, after the workload is loaded.
	setup func(r *run)
	// during runs once the collector is up; the suite then waits until
	// every expected turn (webhook: every call answered accepted) is on
	// the topic. A webhook scenario's during sends the calls and stops.
	during func(r *run)
	// check runs after the collector stopped and the topic was read to its end.
	check func(r *run)
}

// run is one scenario's world.
type run struct {
	t        *testing.T
	ctx      context.Context
	sz       size
	rng      *rand.Rand
	env      map[string]string
	overlays []string // config files over collector-config.yaml (pprof)
	azure    *harness.Azure
	kafka    *harness.Kafka
	tamper   *Tamper
	col      *harness.Collector
	records  *harness.Consumer
	verifier *workload.Verifier
	work     *workload.Workload
	rows     int // rows loaded into the stand-in, all kinds
	notes    []string
	restarts int
	bad      []badCase
	injected map[fakeappinsights.FaultKind]int
	// kills places records before or after each SIGKILL.
	kills harness.KillMarks

	// What the other paths add: their stand-ins, ground truth and checks.
	path        path
	pathEnv     map[string]string
	transcripts *transcriptRun
	webhook     *webhookRun

	mu sync.Mutex
}

func (r *run) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
	r.t.Logf(format, args...)
}

// runScenario fills res as it goes, so a scenario stopped by t.Fatal is
// still reported, as failed, with what it had seen.
func runScenario(t *testing.T, bin string, sz size, seed uint64, sc scenario, res *result) {
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), sz.deadline)
	defer cancel()
	dir := t.TempDir()
	r := &run{t: t, ctx: ctx, sz: sz, rng: rand.New(rand.NewPCG(seed, 7))}
	defer func() {
		*res = r.summary(sc, time.Since(started))
	}()

	var err error
	if r.azure, err = harness.StartAzure(dir); err != nil {
		t.Fatal(err)
	}
	defer r.azure.Close()
	if r.kafka, err = harness.StartKafka(harness.DefaultTopic, 3); err != nil {
		t.Fatal(err)
	}
	defer r.kafka.Close()
	if r.tamper, err = NewTamper(r.azure.AppInsights.URL(), r.azure.Entra.Bundle()); err != nil {
		t.Fatal(err)
	}
	defer r.tamper.Close()

	r.path = sc.path
	now := time.Now()
	switch sc.path {
	case transcriptsPath:
		r.serveTranscripts(seed, now)
		defer r.transcripts.dataverse.Close()
	case webhookPath:
		r.prepareWebhook(dir, seed)
	default:
		cfg := harness.BacklogConfig(seed, sz.conversations, now)
		if sc.tune != nil {
			sc.tune(&cfg)
		}
		r.work = workload.Generate(cfg)
		if sc.prepare != nil {
			sc.prepare(r)
		}
		var served int
		r.verifier, served = r.azure.ServeBacklog(r.work, seed^0xfeed, now)
		r.rows += served
	}

	if r.records, err = r.kafka.Consume(harness.DefaultTopic, r.add); err != nil {
		t.Fatal(err)
	}
	defer r.records.Close()

	// The receiver talks to the stand-in through Tamper, which passes
	// everything on unchanged unless a scenario tells it otherwise.
	r.env = harness.Env(r.azure.Env(), r.kafka.Env(harness.DefaultTopic), baseEnv(),
		map[string]string{"APPINSIGHTS_ENDPOINT": r.tamper.URL()}, r.pathEnv)
	if sc.env != nil {
		r.env = harness.Env(r.env, sc.env(sz))
	}
	if sc.setup != nil {
		sc.setup(r)
	}
	if r.col, err = harness.StartCollector(ctx, harness.CollectorOptions{
		Binary: bin, Config: harness.CollectorConfigPath(), Overlays: r.overlays, Env: r.env, StorageDir: dir,
	}); err != nil {
		t.Fatal(err)
	}
	defer r.col.Kill()
	if sc.during != nil {
		sc.during(r)
	}
	r.waitDelivered()
	if err := r.col.Stop(30 * time.Second); err != nil {
		r.note("collector did not stop cleanly: %v", err)
	}
	r.drain()
	if sc.check != nil {
		sc.check(r)
	}

	if dir := os.Getenv(envLogs); dir != "" {
		name := strings.NewReplacer("/", "-", " ", "_").Replace(sc.name) + ".log"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(r.col.Output()), 0o644); err != nil {
			t.Error(err)
		}
	}
	if err := r.verdict(sc.crash); err != nil {
		t.Errorf("%s: %v", sc.name, err)
		t.Logf("collector output (tail):\n%s", tail(r.col.Output(), 60))
		t.Logf("queries the stand-in answered:\n%s", r.queryLog())
	}
	t.Logf("%s: %s", sc.name, r.reportString())
}

// add checks one record read from the topic.
func (r *run) add(rec *kgo.Record) {
	switch r.path {
	case webhookPath:
		r.webhook.ledger.Add(rec.Value, rec.Partition, rec.Offset)
	case transcriptsPath:
		r.verifier.Add(rec.Value)
		r.transcripts.checkSteps(rec.Value)
	default:
		r.verifier.Add(rec.Value)
	}
}

// recordsRead is how many records of the topic have been checked.
func (r *run) recordsRead() int {
	if r.path == webhookPath {
		return r.webhook.ledger.Records()
	}
	return r.verifier.Records()
}

// verdict is nil when the scenario delivered what it must (crash: repeats
// allowed under their first copy's id).
func (r *run) verdict(crash bool) error {
	switch r.path {
	case webhookPath:
		return r.webhook.ledger.Report().Err(crash)
	case transcriptsPath:
		return errors.Join(r.verifier.Report().Err(crash), r.transcripts.stepsErr())
	default:
		return r.verifier.Report().Err(crash)
	}
}

func (r *run) reportString() string {
	switch r.path {
	case webhookPath:
		return r.webhook.ledger.Report().String()
	case transcriptsPath:
		return r.verifier.Report().String() + "; " + r.transcripts.stepsSummary()
	default:
		return r.verifier.Report().String()
	}
}

// summary is the scenario's line in RESULTS.md. For the webhook, rows are
// the calls sent and turns the calls answered accepted, each its own
// conversation.
func (r *run) summary(sc scenario, took time.Duration) result {
	res := result{scenario: sc.name, what: sc.what, restarts: r.restarts, seconds: took.Seconds(), notes: r.notes, failed: r.t.Failed()}
	switch {
	case r.path == webhookPath && r.webhook != nil:
		rep := r.webhook.ledger.Report()
		res.conversations, res.rows, res.turns = rep.Sent, rep.Sent, rep.Accepted
		res.delivered, res.lost, res.duplicated, res.wrong, res.unexpected = rep.Delivered, rep.Lost, rep.Duplicated, rep.Wrong, rep.Unexpected
	case r.verifier != nil:
		rep := r.verifier.Report()
		res.conversations, res.rows, res.turns = r.conversations(), r.rows, rep.Expected
		res.delivered, res.lost, res.duplicated, res.wrong, res.unexpected = rep.Delivered, rep.Lost, rep.Duplicated, rep.Wrong, rep.Unexpected
		if r.transcripts != nil {
			res.wrong += r.transcripts.wrongSteps()
		}
	default:
		res.failed = true
	}
	return res
}

func (r *run) conversations() int {
	if r.transcripts != nil {
		return r.transcripts.work.Conversations
	}
	return r.work.Conversations
}

func (r *run) load(rows ...workload.Row) {
	r.azure.AppInsights.AddRows(rows...)
	r.rows += len(rows)
}

// waitDelivered waits until every expected turn is on the topic (webhook:
// every call answered accepted).
func (r *run) waitDelivered() {
	r.t.Helper()
	if r.path == webhookPath {
		l := r.webhook.ledger
		if err := r.waitFor("every accepted call on the topic", func() bool { return l.Delivered() >= l.Accepted() }); err != nil {
			r.t.Errorf("%v; %d of %d delivered", err, l.Delivered(), l.Accepted())
		}
		return
	}
	want := r.verifier.Report().Expected
	if err := r.waitFor("every expected turn on the topic", func() bool { return r.verifier.Delivered() >= want }); err != nil {
		r.t.Errorf("%v; %d of %d delivered", err, r.verifier.Delivered(), want)
	}
}

// drain reads the topic to its end after the collector stopped, so repeats
// and strays sent late are counted too.
func (r *run) drain() {
	r.t.Helper()
	total := r.kafka.RecordCount(harness.DefaultTopic)
	if err := r.waitFor("the topic read to its end", func() bool { return r.recordsRead() >= total }); err != nil {
		r.t.Errorf("%v: read %d of %d records", err, r.recordsRead(), total)
	}
}

// waitFor polls cond (state seen from outside: the topic, the stand-in's
// request log, the collector's metrics) until it holds; the scenario's
// deadline is a failure guard only.
func (r *run) waitFor(what string, cond func() bool) error {
	return harness.WaitFor(r.ctx, 20*time.Millisecond, what, func() (bool, error) { return cond(), nil })
}

// kill SIGKILLs the collector and starts it again on the same storage.
func (r *run) kill() {
	r.t.Helper()
	if err := r.col.Kill(); err != nil {
		r.t.Fatalf("kill: %v", err)
	}
	r.kills.Mark(r.kafka, harness.DefaultTopic)
	r.restarts++
	if err := r.col.Start(r.ctx); err != nil {
		r.t.Fatalf("restart after SIGKILL: %v", err)
	}
}

// metric is the collector's own metric name summed over its label sets (0
// while it is not reported or the collector is restarting).
func (r *run) metric(name string) float64 {
	v, _, _ := r.col.Metric(r.ctx, name)
	return v
}

var (
	upperRE = regexp.MustCompile(`ingest < datetime\(([^)]+)\)`)
	lowerRE = regexp.MustCompile(`ingest >= datetime\(([^)]+)\)`)
)

// queryLog lists the stand-in's answers, for a failure message: status,
// fault, rows, and the ingestion window asked for.
func (r *run) queryLog() string {
	if r.transcripts != nil {
		return r.transcripts.requestLog()
	}
	var b strings.Builder
	for _, q := range r.azure.AppInsights.Requests() {
		lower, upper := "?", "?"
		if m := lowerRE.FindStringSubmatch(q.Query); m != nil {
			lower = m[1]
		}
		if m := upperRE.FindStringSubmatch(q.Query); m != nil {
			upper = m[1]
		}
		fmt.Fprintf(&b, "  %d fault=%d rows=%d [%s, %s)\n", q.Status, q.Fault, q.Rows, lower, upper)
	}
	return b.String()
}

func upperBound(query string) (time.Time, bool) {
	m := upperRE.FindStringSubmatch(query)
	if m == nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, m[1])
	return t, err == nil
}

// latestUpper is the highest window bound the receiver has asked for.
func (r *run) latestUpper() time.Time {
	var latest time.Time
	for _, q := range r.azure.AppInsights.Requests() {
		if u, ok := upperBound(q.Query); ok && q.Status == http.StatusOK && u.After(latest) {
			latest = u
		}
	}
	return latest
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// Command localrun is `make run`: the whole pipeline, end to end, on one
// machine, printing each record as it reaches Akto's way in (Kafka, or with
// -akto http the data ingestion service): conversation turns, and tool
// calls as Copilot Studio reports them before the tool runs.
//
// Without Azure credentials in the environment (AZURE_CLIENT_SECRET or
// APPINSIGHTS_APP_ID unset) it runs every source on local stand-ins
// (-sources picks some; make run SOURCES=...):
//
//   - appinsights: an Application Insights query API serving
//     testdata/sample-telemetry.json, moved in time so the first poll sees it;
//   - transcripts: a Dataverse environment serving
//     testdata/sample-transcript.json, a generative agent's conversation with
//     plans, a knowledge search and tool calls, through
//     collector-config.transcripts.yaml;
//   - webhook: collector-config.webhook.yaml's HTTPS endpoint, called by a
//     local client playing Copilot Studio (internal/testing/webhookclient)
//     with a few tool calls and tokens signed by the Entra ID stand-in.
//
// Around them: an Entra ID stand-in (HTTPS, throwaway CA; the collector's
// real azidentity client-secret flow runs against it, and its published key
// signs the webhook's tokens) and a Kafka broker (kfake) on a loopback port.
// It runs the real collector binary with collector-config.yaml, the same file
// production uses, and the sources' overlays, pointed at the stand-ins
// through environment variables.
//
// With APPINSIGHTS_APP_ID, AZURE_TENANT_ID, AZURE_CLIENT_ID and
// AZURE_CLIENT_SECRET set, the collector reads the real Application Insights
// resource (that source only). Turns go to KAFKA_BROKERS when it is set
// (localrun prints what arrives there from now on), otherwise to a local
// kfake broker it prints from.
//
// With -akto http (make run AKTO=http) the collector delivers over HTTP
// instead, with collector-config.akto-http.yaml: to AKTO_INGESTION_URL when
// it is set, otherwise to a local stand-in of Akto's data ingestion service
// (internal/testing/fakeakto, which checks what the real one checks), and
// localrun prints each record the stand-in accepted.
//
// Ctrl-C stops the collector gracefully, then everything else.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeakto"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// The sources make run can show, in the order they are listed.
const (
	sourceAppInsights = "appinsights"
	sourceTranscripts = "transcripts"
	sourceWebhook     = "webhook"
)

var allSources = []string{sourceAppInsights, sourceTranscripts, sourceWebhook}

// The overlays that turn the sources on, relative to the repository root.
const (
	transcriptsOverlay = "collector-config.transcripts.yaml"
	webhookOverlay     = "collector-config.webhook.yaml"
)

// options are localrun's flags.
type options struct {
	binary, config, akto string
	// sources are those asked for (-sources); empty: the default.
	sources []string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, err := parseFlags()
	if err == nil {
		err = run(ctx, opts, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "localrun:", err)
		os.Exit(1)
	}
}

func parseFlags() (options, error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return options{}, err
	}
	binary := flag.String("binary", envOr(harness.BinaryEnv, filepath.Join(root, "_build", "otelcol-copilotstudio")), "the distribution binary (make build)")
	config := flag.String("config", harness.CollectorConfigPath(), "collector configuration")
	akto := flag.String("akto", envOr("AKTO", "kafka"), "how records reach Akto: kafka, or http (its data ingestion service, with "+aktoHTTPOverlay+")")
	sources := flag.String("sources", os.Getenv("SOURCES"), "comma-separated sources to run on stand-ins: "+strings.Join(allSources, ", ")+" (default: all)")
	flag.Parse()
	opts := options{binary: *binary, config: *config, akto: *akto}
	if opts.sources, err = parseSources(*sources); err != nil {
		return options{}, err
	}
	return opts, nil
}

// parseSources reads a -sources list: known names, each once, in the
// canonical order; "" is nil (the default).
func parseSources(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	asked := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			continue
		}
		if !slices.Contains(allSources, s) {
			return nil, fmt.Errorf("-sources: unknown source %q: use %s", s, strings.Join(allSources, ", "))
		}
		asked[s] = true
	}
	var out []string
	for _, s := range allSources {
		if asked[s] {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-sources %q names no source: use %s", list, strings.Join(allSources, ", "))
	}
	return out, nil
}

// receiversOverride is a config source (a yaml: URI, given as one more
// --config) naming the logs pipeline's receivers for the sources, when the
// overlays alone do not: each overlay's list is collector-config.yaml's
// receiver plus its own, and a later list replaces an earlier one.
func receiversOverride(sources []string) string {
	switch {
	case slices.Equal(sources, []string{sourceAppInsights}),
		slices.Equal(sources, []string{sourceAppInsights, sourceTranscripts}),
		slices.Equal(sources, []string{sourceAppInsights, sourceWebhook}):
		return ""
	}
	names := map[string]string{
		sourceAppInsights: "copilotstudio", sourceTranscripts: "copilotstudio_transcripts", sourceWebhook: "copilotstudiowebhook",
	}
	ids := make([]string, len(sources))
	for i, s := range sources {
		ids[i] = names[s]
	}
	return "yaml:service::pipelines::logs::receivers: [" + strings.Join(ids, ", ") + "]"
}

func run(ctx context.Context, opts options, stdout, stderr io.Writer) error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	if _, err := os.Stat(opts.binary); err != nil {
		return fmt.Errorf("no collector binary at %s: run `make run` (it builds one) or `make build`", opts.binary)
	}
	if opts.akto != "kafka" && opts.akto != "http" {
		return fmt.Errorf("-akto %q: use kafka or http", opts.akto)
	}
	out := &syncWriter{w: stdout}

	work, err := os.MkdirTemp("", "otelcol-copilotstudio-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	logPath := filepath.Join(work, "collector.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	var (
		env      map[string]string
		overlays []string
		brokers  []string
		topic    = envOr("KAFKA_TOPIC", harness.DefaultTopic)
		// Records already in the topic belong to earlier runs on a real broker.
		fromStart = true
		webhook   *harness.WebhookSetUp
	)
	storageDir := filepath.Join(work, "storage")

	if realAzure() {
		out.Println("Azure credentials found: reading Application Insights app", os.Getenv("APPINSIGHTS_APP_ID"))
		if len(opts.sources) > 0 && !slices.Equal(opts.sources, []string{sourceAppInsights}) {
			out.Println("  (transcripts and the webhook run only on stand-ins, without Azure credentials: README.md, \"Sources: which to choose\", says how to turn them on in production)")
		}
		// The real cursor is worth keeping between runs: it saves re-reading
		// initial_lookback (24h) of telemetry every time.
		storageDir = envOr("STORAGE_DIR", defaultStorageDir())
		env = map[string]string{"STORAGE_DIR": storageDir}
		if b := os.Getenv("KAFKA_BROKERS"); b != "" && opts.akto == "kafka" {
			brokers = strings.Split(b, ",")
			fromStart = false
			out.Println("Kafka:", b, "topic", topic, "(printing turns that arrive from now on)")
		}
	} else {
		sources := opts.sources
		if sources == nil {
			sources = allSources
		}
		out.Println("No Azure credentials in the environment (APPINSIGHTS_APP_ID, AZURE_CLIENT_SECRET):")
		out.Println("running", strings.Join(sources, ", "), "on local stand-ins (make run SOURCES=... picks some)")
		azure, err := harness.StartAzure(work)
		if err != nil {
			return err
		}
		defer azure.Close()
		env = harness.Env(azure.Env(), harness.FastEnv())
		if slices.Contains(sources, sourceAppInsights) {
			sample, err := harness.LoadSample(root, time.Now().Add(-time.Second))
			if err != nil {
				return err
			}
			azure.AppInsights.AddRows(sample.Rows...)
			out.Printf("  Application Insights stand-in  %s  (%s: %d rows, %d conversations, %d turns)\n",
				azure.AppInsights.URL(), harness.SampleRowsFile, len(sample.Rows), countConversations(sample.Turns), len(sample.Turns))
		}
		out.Printf("  Entra ID stand-in              %s\n", azure.Entra.URL())
		if slices.Contains(sources, sourceTranscripts) {
			dv, err := startDataverse(root, azure)
			if err != nil {
				return err
			}
			defer dv.Close()
			overlays = append(overlays, filepath.Join(root, transcriptsOverlay))
			env = harness.Env(env, map[string]string{"DATAVERSE_URL": dv.URL, "TRANSCRIPTS_POLL_INTERVAL": "1s"})
			out.Printf("  Dataverse stand-in             %s  (%s: a generative agent's transcript with plans and tool steps)\n", dv.URL, harness.SampleTranscriptFile)
		}
		if slices.Contains(sources, sourceWebhook) {
			if webhook, err = harness.NewWebhookSetUp(work, azure.Entra); err != nil {
				return err
			}
			overlays = append(overlays, filepath.Join(root, webhookOverlay))
			env = harness.Env(env, webhook.Env)
			out.Printf("  webhook endpoint (collector)   %s  (a local client plays Copilot Studio: %d tool calls)\n", webhook.BaseURL, len(webhookclient.Variants))
		}
		if o := receiversOverride(sources); o != "" {
			overlays = append(overlays, o)
		}
	}

	printer := &turnPrinter{out: out}
	var ingestion *fakeakto.Server
	switch {
	case opts.akto == "http":
		overlays = append(overlays, filepath.Join(root, aktoHTTPOverlay))
		if url := os.Getenv("AKTO_INGESTION_URL"); url != "" {
			out.Println("Akto data ingestion service:", url, "(records go there; nothing is printed here)")
			break
		}
		ingestion = fakeakto.New(fakeakto.Options{Token: localIngestionToken, OnAccept: printer.printValue})
		defer ingestion.Close()
		out.Printf("  Akto ingestion stand-in        %s%s  (checks auth, limits, every field a string)\n", ingestion.URL(), fakeakto.IngestPath)
		env = harness.Env(env, ingestion.Env())
	case brokers == nil:
		kafka, err := harness.StartKafka(topic, 3)
		if err != nil {
			return err
		}
		defer kafka.Close()
		brokers = kafka.Brokers
		out.Printf("  Kafka (kfake)                  %s  topic %s\n", strings.Join(brokers, ","), topic)
		env = harness.Env(env, kafka.Env(topic))
	}

	if opts.akto == "kafka" {
		consumer, err := harness.NewConsumer(brokers, topic, fromStart, func(r *kgo.Record) { printer.printValue(r.Value) })
		if err != nil {
			return err
		}
		defer consumer.Close()
	}

	out.Println("Starting", opts.binary, "--config", strings.Join(append([]string{opts.config}, quoteArgs(overlays)...), " --config "))
	out.Println("  collector log:", logPath)
	startCtx, cancelStart := context.WithTimeout(ctx, 2*time.Minute)
	collector, err := harness.StartCollector(startCtx, harness.CollectorOptions{
		Binary: opts.binary, Config: opts.config, Overlays: overlays, Env: env, StorageDir: storageDir,
		Output: io.MultiWriter(logFile, &errorLines{out: stderr}),
	})
	cancelStart()
	if err != nil {
		if collector != nil {
			_ = collector.Kill()
		}
		return err
	}
	defer collector.Stop(15 * time.Second)
	out.Println("  health:", "http://"+collector.Env()["HEALTH_CHECK_ENDPOINT"]+"/", " metrics:", collector.MetricsURL())
	out.Println("Waiting for records (the last turn of a conversation appears once it has been quiet for REPLY_TIMEOUT). Ctrl-C to stop.")
	out.Println()

	// The webhook's calls go out once the collector is up; the client
	// stops (and is waited for) when run returns.
	calls := make(chan error, 1)
	if webhook != nil {
		callCtx, cancelCalls := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			calls <- sendToolCalls(callCtx, webhook.Client, out)
		}()
		defer wg.Wait()
		defer cancelCalls()
	}

	// Run until Ctrl-C, or until the collector dies on its own.
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			out.Println("\nStopping the collector...")
			if err := collector.Stop(15 * time.Second); err != nil {
				return err
			}
			out.Printf("Stopped. %s printed.\n", printer.summary())
			if ingestion != nil {
				out.Println(ingestionSummary(ingestion.Requests()))
			}
			return nil
		case err := <-calls:
			if err != nil && ctx.Err() == nil {
				out.Println("webhook client:", err)
			}
		case <-ticker.C:
			if !collector.Running() {
				return fmt.Errorf("the collector exited (%v); last output:\n%s", collector.ExitErr(), tail(collector.Output(), 40))
			}
		}
	}
}

// startDataverse serves the sample transcript, created a second ago (so
// its activities are about half an hour old, as Dataverse writes them),
// over HTTPS with the stand-ins' CA, to tokens the Entra ID stand-in
// issued for this environment.
func startDataverse(root string, azure *harness.Azure) (*fakedataverse.Server, error) {
	sample, err := harness.LoadSampleTranscript(root, time.Now().Add(-time.Second))
	if err != nil {
		return nil, err
	}
	dv := azure.StartDataverse("local-run", sample.Bots...)
	dv.AddTranscripts(sample.Rows...)
	return dv, nil
}

// sendToolCalls plays Copilot Studio: an admin saving the set-up
// (/validate), then one tool call of each shape the client knows, from the
// sample transcript's agent, and prints each answer.
func sendToolCalls(ctx context.Context, c *webhookclient.Client, out *syncWriter) error {
	a, err := c.Validate(ctx)
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	out.Printf("→ webhook: POST /validate (an admin saving the set-up) answered %d %s\n\n", a.Status, bytes.TrimSpace(a.Body))
	calls := webhookclient.Generate(uint64(time.Now().UnixNano()), len(webhookclient.Variants), webhookclient.Options{
		AgentTenantID: harness.StandInTenantID, Agents: []string{"IT Service Agent"},
	})
	var errs []error
	for _, call := range calls {
		a, err := c.Analyze(ctx, call.Body)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out.Printf("→ webhook: tool call %s (%s) answered %d %s in %v, record %s\n",
			shortTool(call.ToolID), call.Variant, a.Status, bytes.TrimSpace(a.Body), a.Latency.Round(time.Millisecond), orDash(a.Record))
	}
	out.Println()
	return errors.Join(errs...)
}

// quoteArgs quotes what a shell would split (a yaml: config source).
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if strings.ContainsAny(a, " []") {
			out[i] = "'" + a + "'"
		}
	}
	return out
}

// syncWriter serialises what the main loop, the webhook client and the
// record printer write.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) Println(a ...any)               { fmt.Fprintln(s, a...) }
func (s *syncWriter) Printf(format string, a ...any) { fmt.Fprintf(s, format, a...) }

// aktoHTTPOverlay is the config overlay that delivers over HTTP.
const aktoHTTPOverlay = "collector-config.akto-http.yaml"

// localIngestionToken is what the local ingestion stand-in requires; not a
// secret, it exists only in `make run`.
const localIngestionToken = "local-run-ingestion-token" // #nosec G101 -- a stand-in fixture

// ingestionSummary says what the ingestion stand-in answered.
func ingestionSummary(reqs []fakeakto.Request) string {
	byStatus := map[int]int{}
	var statuses []int
	for _, r := range reqs {
		if byStatus[r.Status] == 0 {
			statuses = append(statuses, r.Status)
		}
		byStatus[r.Status]++
	}
	slices.Sort(statuses)
	parts := make([]string, len(statuses))
	for i, s := range statuses {
		parts[i] = fmt.Sprintf("%d x HTTP %d", byStatus[s], s)
	}
	if len(parts) == 0 {
		return "The ingestion stand-in got no request."
	}
	return "The ingestion stand-in answered " + strings.Join(parts, ", ") + "."
}

// realAzure is true when the environment names a real Application Insights
// resource and a client secret to read it with.
func realAzure() bool {
	return os.Getenv("APPINSIGHTS_APP_ID") != "" && os.Getenv("AZURE_CLIENT_SECRET") != ""
}

func defaultStorageDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "otelcol-copilotstudio")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func countConversations(turns []workload.Turn) int {
	seen := map[string]bool{}
	for _, t := range turns {
		seen[t.ConversationID] = true
	}
	return len(seen)
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// errorLines passes on the collector's error-level log lines (an Entra ID
// sign-in that fails, a Kafka broker that cannot be reached), so they are
// seen without opening the log file.
type errorLines struct {
	out     io.Writer
	pending []byte
}

func (w *errorLines) Write(p []byte) (int, error) {
	w.pending = append(w.pending, p...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := w.pending[:i+1]
		if bytes.Contains(line, []byte("\terror\t")) {
			fmt.Fprintf(w.out, "collector: %s", line)
		}
		w.pending = w.pending[i+1:]
	}
}

// turnPrinter writes each Akto record as a block a person can read.
type turnPrinter struct {
	out io.Writer
	mu  sync.Mutex
	n   int
	// toolCalls counts the records of tool calls among the n.
	toolCalls int
}

// summary says how many records were printed, of which kind.
func (p *turnPrinter) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%d records (%d turns, %d tool calls)", p.n, p.n-p.toolCalls, p.toolCalls)
}

// printValue prints one record value, from Kafka or from the ingestion stand-in.
func (p *turnPrinter) printValue(value []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if isToolCall(value) {
		p.toolCalls++
	}
	fmt.Fprint(p.out, formatTurn(p.n, value))
}

// isToolCall tells a tool call's record (path .../tool/{step}) from a turn's.
func isToolCall(value []byte) bool {
	var rec struct {
		Path string `json:"path"`
	}
	return json.Unmarshal(value, &rec) == nil && strings.Contains(rec.Path, "/tool/")
}

// formatTurn renders one record value; anything that is not an Akto record
// is shown raw rather than hidden.
func formatTurn(n int, value []byte) string {
	var rec struct {
		Path           string `json:"path"`
		StatusCode     string `json:"statusCode"`
		RequestHeaders string `json:"requestHeaders"`
		RequestPayload string `json:"requestPayload"`
		Tag            string `json:"tag"`
		Traces         string `json:"_traces"`
	}
	if err := json.Unmarshal(value, &rec); err != nil {
		return fmt.Sprintf("── record %d (not an Akto traffic record: %v)\n%s\n\n", n, err, value)
	}
	var headers, tag map[string]any
	_ = json.Unmarshal([]byte(rec.RequestHeaders), &headers)
	_ = json.Unmarshal([]byte(rec.Tag), &tag)
	header := func(k string) string { s, _ := headers[k].(string); return s }
	if strings.Contains(rec.Path, "/tool/") {
		return formatToolCall(n, rec.RequestPayload, header, tag)
	}
	d, err := workload.DecodeAkto(value)
	if err != nil {
		return fmt.Sprintf("── record %d (not an Akto traffic record: %v)\n%s\n\n", n, err, value)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "── turn %d · %s · %s · %s\n", n, orDash(d.BotName), orDash(d.Channel), orDash(clock(d.Time)))
	field := fieldWriter(&b)
	field("conversation", d.ConversationID+"  (message "+d.Index+")")
	switch {
	case d.RequestActivityID == "" && d.RequestText == "":
		field("user said", "(nothing: the agent spoke first)")
	default:
		field("user said", d.RequestText)
	}
	if calls := header(schema.AktoHeaderToolCalls); calls != "" {
		for i, call := range strings.Split(calls, ", ") {
			name := ""
			if i == 0 {
				name = "tools called"
			}
			field(name, "• "+shortTool(call))
		}
	}
	if len(d.Replies) == 0 {
		field("agent answered", "(no answer)")
	}
	for i, reply := range d.Replies {
		name := ""
		if i == 0 {
			name = "agent answered"
		}
		field(name, "• "+reply)
	}
	topics := header(schema.AktoHeaderTopics)
	if topics == "" {
		topics, _ = tag["topics"].(string) // an earlier record format
	}
	if topics != "" {
		field("topics", shortTopics(topics))
	}
	status := rec.StatusCode
	if d.Failed {
		status += " (the turn failed: an error, or a step that failed or was blocked)"
	}
	field("status", status)
	if rec.Traces != "" {
		var acts []any
		_ = json.Unmarshal([]byte(rec.Traces), &acts)
		field("_traces", fmt.Sprintf("%d activities (%d bytes) for Akto's trace view", len(acts), len(rec.Traces)))
	}
	if d.TurnID != "" {
		field("turn id", d.TurnID)
	}
	b.WriteString("\n")
	return b.String()
}

// formatToolCall renders the record of a tool call the threat-detection
// webhook reported.
func formatToolCall(n int, payload string, header func(string) string, tag map[string]any) string {
	var p struct {
		Text      string          `json:"text"`
		Tool      string          `json:"tool"`
		Arguments json.RawMessage `json:"arguments"`
		Thought   string          `json:"thought"`
	}
	_ = json.Unmarshal([]byte(payload), &p)
	bot, _ := tag["bot-name"].(string)
	var b strings.Builder
	fmt.Fprintf(&b, "── tool call %d · %s · %s\n", n, orDash(bot), orDash(header(schema.AktoHeaderChannel)))
	field := fieldWriter(&b)
	field("conversation", header(schema.AktoHeaderConversationID)+"  (step "+header(schema.AktoHeaderStepID)+")")
	if p.Text == "" {
		p.Text = "(none sent: Copilot Studio's userMessage was null)"
	}
	field("user said", p.Text)
	field("tool", p.Tool+"  ("+header(schema.AktoHeaderToolKind)+")")
	if len(p.Arguments) > 0 {
		field("arguments", string(p.Arguments))
	}
	if p.Thought != "" {
		field("planner thought", p.Thought)
	}
	if header(schema.AktoHeaderCrossTenant) == "true" {
		field("user tenant", header(schema.AktoHeaderUserTenantID)+" (not the agent's)")
	}
	field("record id", header(schema.AktoHeaderMessageID))
	b.WriteString("\n")
	return b.String()
}

// fieldWriter writes "name  value" lines, a value's further lines indented.
func fieldWriter(b *strings.Builder) func(name, value string) {
	return func(name, value string) {
		lines := strings.Split(value, "\n")
		fmt.Fprintf(b, "  %-15s %s\n", name, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(b, "  %-15s %s\n", "", l)
		}
	}
}

// clock is a record's time (Unix seconds) as hh:mm:ss, or "".
func clock(unix string) string {
	var secs int64
	if _, err := fmt.Sscan(unix, &secs); err != nil || unix == "" {
		return ""
	}
	return time.Unix(secs, 0).Format("15:04:05")
}

// shortTool drops the agent's schema prefix of a tool id in "id=state":
// crx_helpdesk.action.GetTicket=completed -> action.GetTicket=completed.
func shortTool(call string) string {
	if i := strings.Index(call, "."); i > 0 && !strings.ContainsAny(call[:i], ":=") {
		return call[i+1:]
	}
	return call
}

// shortTopics drops the agent's schema prefix: cr44e_hrAgent.topic.Greeting -> Greeting.
func shortTopics(topics string) string {
	names := strings.Split(topics, ",")
	for i, name := range names {
		if j := strings.LastIndex(name, ".topic."); j >= 0 {
			names[i] = name[j+len(".topic."):]
		}
	}
	return strings.Join(names, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

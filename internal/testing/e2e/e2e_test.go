// Package e2e tests the distribution as users get it: the ocb-built binary
// (make build), collector-config.yaml unchanged, local stand-ins for
// Application Insights and Entra ID, and a kfake Kafka broker. `make test`
// builds the binary first and passes it in OTELCOL_BINARY.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/aktocheck"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// The credentials testdata/sample-telemetry.json carries; none may reach Kafka.
var sampleSecrets = []string{
	directLineSecret, // pasted in a Web Chat message
	opaqueBearer,     // "Authorization: Bearer ..." in the same message
	// the Entra ID token of a signin/tokenExchange invoke (SSO)
	"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6Ik1uQ19WWmNBVGZNNXBPWWlKSE1iYTlnb0VLWSJ9.eyJhdWQiOiJhcGk6Ly9jb250b3NvLXNhbGVzL0NSTS5SZWFkIiwiaXNzIjoiaHR0cHM6Ly9zdHMud2luZG93cy5uZXQvNzJmOTg4YmYtODZmMS00MWFmLTkxYWItMmQ3Y2QwMTFkYjQ3LyIsIm5hbWUiOiJNZWdhbiBCb3dlbiIsInNjcCI6IkNSTS5SZWFkIn0",
	// a JWT pasted in a Direct Line message
	"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJvaWQiOiI1ZjFjMGEyZSIsInRpZCI6IjcyZjk4OGJmIiwidXBuIjoibWVnYW5iQGNvbnRvc28uY29tIn0",
}

// Any JWT or Direct Line secret shape at all, in case a credential reached
// Kafka by a path the list above does not name.
var credentialShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}|[A-Za-z0-9_-]{5,}\.cwA\.[A-Za-z0-9_-]{2,8}\.[A-Za-z0-9_-]{20,}`)

// replyTimeout is REPLY_TIMEOUT for this test: long enough that a restart
// between a message and its reply fits inside it, short enough that the
// last turn of each conversation comes out quickly.
const replyTimeout = 10 * time.Second

// TestEndToEnd runs the sample through the real distribution, then kills it
// (SIGKILL) between a user message and its reply, and again mid-stream, and
// checks after each restart that every turn arrived, correctly paired, with
// no credential in it, and that a turn repeated after a crash carries the
// same turn id.
func TestEndToEnd(t *testing.T) {
	bin := harness.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
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
	checkSampleCarriesSecrets(t, root)
	azure.AppInsights.AddRows(sample.Rows...)

	col := startCollector(ctx, t, harness.CollectorOptions{
		Binary: bin,
		Config: harness.CollectorConfigPath(),
		Env: harness.Env(azure.Env(), kafka.Env(harness.DefaultTopic), harness.FastEnv(),
			map[string]string{"REPLY_TIMEOUT": replyTimeout.String()}),
		StorageDir: filepath.Join(dir, "storage"),
	})
	defer killAndReport(t, col) // before the broker and the stand-ins go away

	// Everything expected over the whole test, checked at the end.
	expected := append([]workload.Turn(nil), sample.Turns...)

	t.Run("sample arrives once, paired and masked", func(t *testing.T) {
		ty := newTally(sample.Turns)
		ty.waitDelivered(ctx, t, consumer, len(sample.Turns))
		if err := ty.v.Report().Err(false); err != nil {
			t.Fatalf("sample: %v", err)
		}
		// Exactly once, by turn id: as many records as turns, each its own id.
		values := consumer.Values()
		if ids := turnIDs(t, values); len(values) != len(sample.Turns) || len(ids) != len(sample.Turns) {
			t.Fatalf("%d records with %d distinct turn ids for %d turns", len(values), len(ids), len(sample.Turns))
		}
		checkNoCredentials(t, values)
		checkAktoFiling(t, values, aktocheck.Options{Agents: agentsOf(sample.Turns)})
	})

	t.Run("SIGKILL between a message and its reply", func(t *testing.T) {
		conv := newScriptedConversation("Qp4vN7xK2mR9sT1wY6zB3c-us", "HR Agent", "cr44e_hrAgent", "directline")
		message := conv.message("Is my leave request for 3-7 March approved?")
		azure.AppInsights.AddRows(message...)

		// The message is in the pairing state on disk and the receiver's
		// cursor is past it: it will not be fetched again.
		lastIngested := message[len(message)-1].IngestionTime
		if err := harness.WaitFor(ctx, 50*time.Millisecond, "the receiver's cursor to pass the user message",
			func() (bool, error) { return azure.CursorPassed(lastIngested), nil }); err != nil {
			t.Fatal(err)
		}
		// ...and it waits in an open turn: nothing of the conversation has
		// been emitted (the sample's turns are all out by now).
		if open, _, err := col.Metric(ctx, "otelcol_activitypair_open_turns"); err != nil || open < 1 {
			t.Fatalf("before the kill: otelcol_activitypair_open_turns = %v (%v), want the message's open turn", open, err)
		}
		for _, v := range consumer.Values() {
			if bytes.Contains(v, []byte(conv.id)) {
				t.Fatalf("the turn was emitted before its reply existed: %s", v)
			}
		}
		if err := col.Kill(); err != nil {
			t.Fatal(err)
		}

		reply := conv.reply("Yes: your leave from 3 to 7 March was approved by Dana on 12 February.")
		azure.AppInsights.AddRows(reply...)
		if err := col.Start(ctx); err != nil {
			t.Fatal(err)
		}

		turn := conv.turn()
		expected = append(expected, turn)
		ty := newTally([]workload.Turn{turn}, conversationsOf(sample.Turns)...)
		ty.waitDelivered(ctx, t, consumer, 1)
		if err := ty.v.Report().Err(true); err != nil {
			t.Fatalf("the turn split by the crash: %v", err)
		}
	})

	t.Run("SIGKILL mid-stream", func(t *testing.T) {
		now := time.Now()
		w := workload.Generate(workload.Config{
			Seed: 20260218, Conversations: 40,
			Start: now.Add(-30 * time.Minute), Span: 10 * time.Minute,
			GreetingRate: 0.5, MissingReplyIDRate: 1.0 / 12,
		})
		// All already ingested, in the generated order, a little in the past:
		// one poll reads them all (a poll either started before they were
		// added or reaches past them), and the pairing state, the Kafka queue
		// and Kafka itself each hold some of them when the collector is killed.
		for i := range w.Rows {
			w.Rows[i].IngestionTime = now.Add(-2*time.Second - time.Duration(len(w.Rows)-i)*time.Millisecond)
		}
		azure.AppInsights.AddRows(w.Rows...)

		ty := newTally(w.Turns, conversationsOf(expected)...)
		if err := consumer.WaitUntil(ctx, ty.until(func(v *workload.Verifier) bool { return v.Delivered() > 0 })); err != nil {
			t.Fatalf("no turn of the generated conversations arrived: %v", err)
		}
		if err := col.Kill(); err != nil {
			t.Fatal(err)
		}
		delivered := ty.v.Delivered()
		if delivered == len(w.Turns) {
			t.Fatalf("all %d turns were already delivered when the collector was killed: nothing in flight", delivered)
		}
		t.Logf("killed with %d of %d turns delivered", delivered, len(w.Turns))
		if err := col.Start(ctx); err != nil {
			t.Fatal(err)
		}
		expected = append(expected, w.Turns...)
		ty.waitDelivered(ctx, t, consumer, len(w.Turns))
		if err := ty.v.Report().Err(true); err != nil {
			t.Fatalf("generated conversations: %v", err)
		}
	})

	// Everything, from the first record on: nothing lost, nothing wrong,
	// nothing unexpected, and a repeat only ever under its first turn id.
	report := workload.Verify(expected, consumer.Values())
	if err := report.Err(true); err != nil {
		t.Fatalf("whole run: %v", err)
	}
	t.Logf("whole run: %s", report)
	turnIDs(t, consumer.Values())
	checkNoCredentials(t, consumer.Values())
	checkAktoFiling(t, consumer.Values(), aktocheck.Options{Agents: agentsOf(expected)})
}

// turnIDs maps each record's turn id to the turn it names, and fails the
// test when a record has none or one id names two different turns (a
// repeat must be the same turn, so a consumer can drop it by id).
func turnIDs(t *testing.T, values [][]byte) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for i, v := range values {
		d, err := workload.DecodeAkto(v)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if d.TurnID == "" {
			t.Fatalf("record %d has no turn-id tag: %s", i, v)
		}
		turn := d.ConversationID + "\x00" + d.RequestActivityID + "\x00" + strings.Join(d.Replies, "\x00")
		if prev, ok := ids[d.TurnID]; ok && prev != turn {
			t.Fatalf("turn id %s names two different turns", d.TurnID)
		}
		ids[d.TurnID] = turn
	}
	return ids
}

// tally feeds a verifier the consumer's values, each once, as they arrive.
type tally struct {
	v     *workload.Verifier
	added int
}

func newTally(turns []workload.Turn, ignore ...string) *tally {
	v := workload.NewVerifier(turns)
	v.Ignore(ignore...)
	return &tally{v: v}
}

// until is a Consumer.WaitUntil condition: add what is new, then ask done.
func (ty *tally) until(done func(v *workload.Verifier) bool) func([][]byte) bool {
	return func(values [][]byte) bool {
		for ; ty.added < len(values); ty.added++ {
			ty.v.Add(values[ty.added])
		}
		return done(ty.v)
	}
}

// waitDelivered waits until want expected turns have been seen.
func (ty *tally) waitDelivered(ctx context.Context, t *testing.T, c *harness.Consumer, want int) {
	t.Helper()
	if err := c.WaitUntil(ctx, ty.until(func(v *workload.Verifier) bool { return v.Delivered() >= want })); err != nil {
		t.Fatalf("waiting for %d turns: %v\n%s", want, err, ty.v.Report())
	}
}

func conversationsOf(turns []workload.Turn) []string {
	var ids []string
	seen := map[string]bool{}
	for _, t := range turns {
		if !seen[t.ConversationID] {
			seen[t.ConversationID] = true
			ids = append(ids, t.ConversationID)
		}
	}
	return ids
}

// checkSampleCarriesSecrets makes sure the credential check is not vacuous.
func checkSampleCarriesSecrets(t *testing.T, root string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, harness.SampleRowsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sampleSecrets {
		if !bytes.Contains(raw, []byte(s)) {
			t.Fatalf("%s no longer carries %.24s...: the credential check would prove nothing", harness.SampleRowsFile, s)
		}
	}
}

func checkNoCredentials(t *testing.T, values [][]byte) {
	t.Helper()
	for i, v := range values {
		for _, s := range sampleSecrets {
			if bytes.Contains(v, []byte(s)) {
				t.Errorf("Kafka record %d carries the credential %.24s...", i, s)
			}
		}
		if m := credentialShape.Find(v); m != nil {
			t.Errorf("Kafka record %d carries something credential-shaped: %.24s...", i, m)
		}
	}
}

// scriptedConversation writes rows for a test that adds a conversation's
// rows to the stand-in in steps. Rows are ingested "now", when they are made.
type scriptedConversation struct {
	id, agent, schema, channel string
	user                       string
	next                       int // activity sequence
	request                    workload.Turn
}

func newScriptedConversation(id, agent, schema, channel string) *scriptedConversation {
	return &scriptedConversation{id: id, agent: agent, schema: schema, channel: channel, user: "dl_e2e-" + id[:6]}
}

func (c *scriptedConversation) row(name string, at time.Time, dims map[string]string) fakeappinsights.Row {
	c.next++
	dims["conversationId"] = c.id
	dims["channelId"] = c.channel
	dims["designMode"] = "False"
	return fakeappinsights.Row{
		Timestamp: at, IngestionTime: time.Now(), Name: name,
		ItemID:           fmt.Sprintf("00000000-e2e0-4000-8000-%012d", c.next),
		CustomDimensions: fakeappinsights.Dimensions(dims), RoleInstance: c.agent,
	}
}

// message is a user message and the topic it starts.
func (c *scriptedConversation) message(text string) []fakeappinsights.Row {
	at := time.Now().Add(-2 * time.Second).Truncate(time.Millisecond)
	activity := fmt.Sprintf("%s|%07d", c.id, c.next+1)
	c.request = workload.Turn{
		ConversationID: c.id, Agent: c.agent, Channel: c.channel,
		RequestText: text, RequestActivityID: activity, RequestTime: at,
	}
	return []fakeappinsights.Row{
		c.row("BotMessageReceived", at, map[string]string{
			"type": "message", "activityId": activity, "fromId": c.user, "fromName": "Alex Wilber",
			"recipientName": c.agent, "locale": "en-US", "text": text,
		}),
		c.row("TopicStart", at.Add(200*time.Millisecond), map[string]string{
			"TopicName": c.schema + ".topic.LeaveStatus", "Trigger": "OnRecognizedIntent", "Action": "Started",
		}),
	}
}

// reply is the agent's answer to the last message.
func (c *scriptedConversation) reply(text string) []fakeappinsights.Row {
	at := c.request.RequestTime.Add(1500 * time.Millisecond)
	c.request.Replies = append(c.request.Replies, text)
	return []fakeappinsights.Row{
		c.row("BotMessageSend", at, map[string]string{
			"replyActivityId": c.request.RequestActivityID, "recipientId": c.user, "locale": "en-US", "text": text,
		}),
		c.row("TopicEnd", at.Add(100*time.Millisecond), map[string]string{
			"TopicName": c.schema + ".topic.LeaveStatus", "Action": "Ended",
		}),
	}
}

func (c *scriptedConversation) turn() workload.Turn { return c.request }

// startKafkaAndAzure starts a kfake broker with DefaultTopic (three
// partitions) and the Azure stand-ins keeping their files in dir, both
// closed when t ends.
func startKafkaAndAzure(t *testing.T, dir string) (*harness.Kafka, *harness.Azure) {
	t.Helper()
	kafka, err := harness.StartKafka(harness.DefaultTopic, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kafka.Close)
	azure, err := harness.StartAzure(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(azure.Close)
	return kafka, azure
}

// startCollector starts the built collector with opts, or fails t; defer
// killAndReport(t, col) right after, so that it goes before the stand-ins
// the test closes.
func startCollector(ctx context.Context, t *testing.T, opts harness.CollectorOptions) *harness.Collector {
	t.Helper()
	col, err := harness.StartCollector(ctx, opts)
	if err != nil {
		if col != nil {
			_ = col.Kill()
		}
		t.Fatal(err)
	}
	return col
}

// killAndReport kills the collector and, when t failed, logs its output.
func killAndReport(t *testing.T, col *harness.Collector) {
	_ = col.Kill()
	if t.Failed() {
		t.Logf("collector output:\n%s", col.Output())
	}
}

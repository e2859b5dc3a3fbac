package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
)

// Credentials as they appear in conversations (shared/seeds/001 and 002).
const (
	directLineSecret  = "RCurR_XV9ZA.cwA.BKA.iaJrC8xpy8qbOF5xnR2vtCX7CZj0LdjAPGfiCpg4Fv0"
	directLineToken   = "RCurR_XV9ZA.cwA.BKA.iaJrC8xpy8qbOF5xnR2vtCX7CZj0LdjAPGfiCpg4Fv0y8qbOF5xPGfiCpg4Fv0y8qqbOF5x8qbOF5xn"
	directLineRefresh = "CurR_XV9ZA.cwA.BKA.iaJrC8xpy8qbOF5xnR2vtCX7CZj0LdjAPGfiCpg4Fv0y8qbOF5xPGfiCpg4Fv0y8qqbOF5x8qbOF5xn"
	entraJWT          = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6Ik1uQ19WWmNBVGZNNXBPWWlKSE1iYTlnb0VLWSJ9.eyJhdWQiOiJhcGk6Ly8xMjM0LTQ1NjcvY29udG9zby5yZWFkIiwiaXNzIjoiaHR0cHM6Ly9sb2dpbi5taWNyb3NvZnRvbmxpbmUuY29tLyJ9.c2lnbmF0dXJlLW5vdC1yZWFsLWJ1dC1sb25nLWVub3VnaC10by1sb29rLWxpa2Utb25l"
	opaqueBearer      = "ya29.a0AfB_byC7xQk1ZpL9mN3oP4qR5sT6uV7wX8y"
	opaqueSSOToken    = "EwBwA8l6BAAUs5+HQn0N+h2FxWzLS31ZgQVuHsYAAQ"
)

// maskingProcessors are collector-config.yaml's processors that mask
// credentials, in the order its pipeline runs them.
var maskingProcessors = []string{"transform/credentials", "cardmask"}

// The ids pairing relies on: masking never touches them.
var pairingIDs = []string{schema.EventName, schema.ConversationID, schema.ItemID, schema.ActivityID, schema.ReplyToActivityID}

// Attributes that carry what a person or a tool wrote; each corpus sample is
// put in all of them at once. A key no component knows stands for the raw
// customDimensions and whatever a future receiver adds: masking does not
// depend on the key.
var freeTextKeys = []string{
	schema.UserName, schema.ErrorMessage, schema.ToolArguments, schema.ToolResult,
	schema.DimensionPrefix + "Message", "some.future.attribute",
}

// TestMaskingCorpus runs every sample of testdata/masking through the
// masking processors of collector-config.yaml (the file users get, read the
// way the collector reads it): as the body, in attributes of every kind, and
// as a string inside the JSON text of an activity value. A positive sample
// must come out exactly as its "masked" says, with the marker of its kind; a
// negative one unchanged. The ids pairing relies on stay as they are.
func TestMaskingCorpus(t *testing.T) {
	pipeline := credentialPipeline(t)
	positives := loadCorpus[positiveSample](t, "positive.jsonl")
	negatives := loadCorpus[negativeSample](t, "negative.jsonl")
	if len(positives) < 50 || len(negatives) < 30 {
		t.Fatalf("corpus has %d positive and %d negative samples: it was cut", len(positives), len(negatives))
	}

	type sample struct{ name, in, want string }
	var samples []sample
	kinds := map[string]bool{}
	for i, p := range positives {
		kinds[p.Kind] = true
		if !strings.Contains(p.Masked, "["+p.Kind+"]") || p.Masked == p.Text {
			t.Fatalf("positive.jsonl line %d (%s): masked text has no [%s] marker", i+1, p.Kind, p.Kind)
		}
		samples = append(samples, sample{name: "positive " + p.Kind + " line " + strconv.Itoa(i+1), in: p.Text, want: p.Masked})
	}
	for i, n := range negatives {
		samples = append(samples, sample{name: "negative line " + strconv.Itoa(i+1) + " (" + n.Why + ")", in: n.Text, want: n.Text})
	}
	// Every kind README.md lists has samples.
	for _, kind := range []string{
		"direct-line-secret", "jwt", "oauth-token", "bearer-token", "aws-access-key", "aws-secret-key",
		"github-token", "connection-string-key", "sas-signature", "private-key",
		"password", "entra-client-secret", "client-secret", "slack-token", "slack-webhook", "basic-auth",
		"openai-api-key", "google-api-key", "card-number",
	} {
		if !kinds[kind] {
			t.Errorf("positive.jsonl has no sample of kind %s", kind)
		}
	}

	// The ids carry shapes a rule would mask anywhere else.
	ids := map[string]string{
		schema.EventName:         schema.EventMessageReceived,
		schema.ConversationID:    "a:1EBqwyJRd0mFhz0aWtdeKxAbX8bG3-eu.cwA.BKA.0123456789abcdefghijklmnopqrstuvwxyzABCD",
		schema.ItemID:            "4111111111111111",
		schema.ActivityID:        "eyJ0eXAiOiJKV1QiLCJhbGciOiJ.eyJhdWQiOiJhcGk6Ly8x",
		schema.ReplyToActivityID: "AKIAIOSFODNN7EXAMPLE",
	}

	placements := []struct {
		name string
		put  func(rec plog.LogRecord, text string)
		get  func(t *testing.T, rec plog.LogRecord) []string
		wrap func(text string) string
	}{
		{
			name: "body",
			put:  func(rec plog.LogRecord, text string) { rec.Body().SetStr(text) },
			get:  func(_ *testing.T, rec plog.LogRecord) []string { return []string{rec.Body().Str()} },
		},
		{
			name: "attributes",
			put: func(rec plog.LogRecord, text string) {
				for _, k := range freeTextKeys {
					rec.Attributes().PutStr(k, text)
				}
			},
			get: func(t *testing.T, rec plog.LogRecord) []string {
				var out []string
				for _, k := range freeTextKeys {
					v, ok := rec.Attributes().Get(k)
					if !ok {
						t.Fatalf("attribute %s is gone", k)
					}
					out = append(out, v.Str())
				}
				return out
			},
		},
		{
			name: "inside JSON",
			put:  func(rec plog.LogRecord, text string) { rec.Attributes().PutStr(schema.ActivityValue, jsonObject(text)) },
			get: func(_ *testing.T, rec plog.LogRecord) []string {
				v, _ := rec.Attributes().Get(schema.ActivityValue)
				return []string{v.Str()}
			},
			wrap: jsonObject,
		},
	}

	for _, pl := range placements {
		t.Run(pl.name, func(t *testing.T) {
			logs := plog.NewLogs()
			records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
			for _, s := range samples {
				rec := records.AppendEmpty()
				for k, v := range ids {
					rec.Attributes().PutStr(k, v)
				}
				pl.put(rec, s.in)
			}
			got := pipeline.runAll(t, logs)
			if got.Len() != len(samples) {
				t.Fatalf("%d records back, want %d", got.Len(), len(samples))
			}
			for i, s := range samples {
				rec := got.At(i)
				want := s.want
				if pl.wrap != nil {
					want = pl.wrap(s.want)
				}
				for _, g := range pl.get(t, rec) {
					if g != want {
						t.Errorf("%s:\n  in   %q\n  got  %q\n  want %q", s.name, s.in, g, want)
					}
				}
				for k, v := range ids {
					if g, _ := rec.Attributes().Get(k); g.Str() != v {
						t.Errorf("%s: pairing id %s became %q", s.name, k, g.Str())
					}
				}
			}
		})
	}
}

type positiveSample struct {
	Kind   string `json:"kind"`
	Text   string `json:"text"`
	Masked string `json:"masked"`
	Note   string `json:"note"`
}

type negativeSample struct {
	Text string `json:"text"`
	Why  string `json:"why"`
}

func loadCorpus[T any](t testing.TB, name string) []T {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "testdata", "masking", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var s T
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("%s line %d: %v", name, line, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// jsonObject is text as the string value of a JSON object, the way a tool's
// arguments or an activity's value carry it.
func jsonObject(text string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"input": text})
	return strings.TrimSuffix(b.String(), "\n")
}

// TestCollectorConfigMasksCredentials: the credentials of the seeds in the
// fields clients fill in, each replaced by the marker of its kind, and
// ordinary conversation left alone.
func TestCollectorConfigMasksCredentials(t *testing.T) {
	pipeline := credentialPipeline(t)

	type want struct {
		body  string
		attrs map[string]string
	}
	cases := []struct {
		name  string
		body  string
		attrs map[string]string
		want  want
	}{
		{
			name: "direct line token and a refreshed token without its first letter",
			body: `{"token": "` + directLineToken + `"} then ` + directLineRefresh,
			want: want{body: `{"token": "RCurR_XV9ZA[direct-line-secret]"} then CurR_XV9ZA[direct-line-secret]`},
		},
		{
			name: "credentials in fields a client fills in",
			attrs: map[string]string{
				schema.UserName:      "tester " + directLineSecret,
				schema.RecipientID:   entraJWT,
				schema.ActivityName:  "Bearer " + opaqueBearer,
				schema.Locale:        directLineToken,
				schema.ErrorMessage:  "401 for " + entraJWT,
				schema.ActivityValue: `{"password":"hunter2hunter2"}`,
			},
			want: want{attrs: map[string]string{
				schema.UserName:      "tester RCurR_XV9ZA[direct-line-secret]",
				schema.RecipientID:   "[jwt]",
				schema.ActivityName:  "Bearer [bearer-token]",
				schema.Locale:        "RCurR_XV9ZA[direct-line-secret]",
				schema.ErrorMessage:  "401 for [jwt]",
				schema.ActivityValue: `{"password":"[password]"}`,
			}},
		},
		{
			name: "signin/tokenExchange invoke with an opaque token",
			attrs: map[string]string{
				schema.ActivityType:  "invoke",
				schema.ActivityName:  "signin/tokenExchange",
				schema.ActivityValue: `{"id":"x1","connectionName":"ContosoSSO","token": "` + opaqueSSOToken + `"}`,
			},
			want: want{attrs: map[string]string{
				schema.ActivityType:  "invoke",
				schema.ActivityName:  "signin/tokenExchange",
				schema.ActivityValue: `{"id":"x1","connectionName":"ContosoSSO","token": "[oauth-token]"}`,
			}},
		},
		{
			name: "credential in a raw customDimensions attribute",
			attrs: map[string]string{
				schema.DimensionPrefix + "authorization": "Bearer " + opaqueBearer,
				schema.DimensionPrefix + "directLine":    directLineToken,
			},
			want: want{attrs: map[string]string{
				schema.DimensionPrefix + "authorization": "Bearer [bearer-token]",
				schema.DimensionPrefix + "directLine":    "RCurR_XV9ZA[direct-line-secret]",
			}},
		},
		{
			name: "ordinary conversation and the ids are left alone",
			body: "Bearer authentication confuses me. Version 1.2.3.4 of app.contoso.com, ticket INC0012345, eyJ alone.",
			attrs: map[string]string{
				schema.ConversationID:    "a:1EBqwyJRd0mFhz0aWtdeKxAbX8bG3-eu.cwA.BKA.0123456789abcdefghijklmnopqrstuvwxyzABCD",
				schema.ActivityID:        "1700000000001",
				schema.ReplyToActivityID: "eyJ0eXAiOiJKV1QiLCJhbGciOiJ.eyJhdWQiOiJhcGk6Ly8x",
				schema.ItemID:            "5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a69",
				schema.ChannelID:         "msteams",
				schema.TopicName:         "cr44e_HrAgent.topic.ResetPassword",
			},
			want: want{
				body: "Bearer authentication confuses me. Version 1.2.3.4 of app.contoso.com, ticket INC0012345, eyJ alone.",
				attrs: map[string]string{
					schema.ConversationID:    "a:1EBqwyJRd0mFhz0aWtdeKxAbX8bG3-eu.cwA.BKA.0123456789abcdefghijklmnopqrstuvwxyzABCD",
					schema.ActivityID:        "1700000000001",
					schema.ReplyToActivityID: "eyJ0eXAiOiJKV1QiLCJhbGciOiJ.eyJhdWQiOiJhcGk6Ly8x",
					schema.ItemID:            "5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a69",
					schema.ChannelID:         "msteams",
					schema.TopicName:         "cr44e_HrAgent.topic.ResetPassword",
				},
			},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs := plog.NewLogs()
			rec := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			if tc.body != "" {
				rec.Body().SetStr(tc.body)
			}
			for k, v := range tc.attrs {
				rec.Attributes().PutStr(k, v)
			}

			got := pipeline.run(t, logs)

			if got.Body().AsString() != tc.want.body {
				t.Errorf("body:\n got %q\nwant %q", got.Body().AsString(), tc.want.body)
			}
			gotAttrs := map[string]string{}
			for k, v := range got.Attributes().All() {
				gotAttrs[k] = v.AsString()
			}
			if len(gotAttrs) != len(tc.want.attrs) {
				t.Errorf("attributes: got %v, want %v", gotAttrs, tc.want.attrs)
			}
			for k, w := range tc.want.attrs {
				if gotAttrs[k] != w {
					t.Errorf("attribute %s:\n got %q\nwant %q", k, gotAttrs[k], w)
				}
			}
		})
	}
}

// maskingPipeline is collector-config.yaml's masking processors, chained in
// the order its pipeline runs them.
type maskingPipeline struct {
	first consumer.Logs
	sink  *consumertest.LogsSink
}

func credentialPipeline(t *testing.T) *maskingPipeline {
	t.Helper()
	conf, err := harness.LoadCollectorConfig(harness.CollectorConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	checkMaskedBeforePairing(t, "collector-config.yaml", conf)
	processors, err := conf.Sub("processors")
	if err != nil {
		t.Fatal(err)
	}
	sink := new(consumertest.LogsSink)
	return &maskingPipeline{first: startMaskingProcessors(t, processors, sink), sink: sink}
}

// startMaskingProcessors builds maskingProcessors back to front, each
// feeding the one after it, and returns the first.
func startMaskingProcessors(tb testing.TB, processors *confmap.Conf, next consumer.Logs) consumer.Logs {
	tb.Helper()
	for i := len(maskingProcessors) - 1; i >= 0; i-- {
		next = startProcessor(tb, processorFactory(tb, maskingProcessors[i]), maskingProcessors[i], processors, next)
	}
	return next
}

// TestEveryPipelineMasksBeforePairing: collector-config.yaml and every
// overlay that replaces its processors list (lists are replaced, not
// merged) mask and truncate before pairing.
func TestEveryPipelineMasksBeforePairing(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATAVERSE_URL", "https://contoso.crm.dynamics.com")
	overlays, err := filepath.Glob(filepath.Join(root, "collector-config.*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range append([]string{""}, overlays...) {
		paths := []string{harness.CollectorConfigPath()}
		name := "collector-config.yaml"
		if path != "" {
			paths = append(paths, path)
			name += " + " + filepath.Base(path)
		}
		conf, err := harness.LoadCollectorConfig(paths...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkMaskedBeforePairing(t, name, conf)
	}
}

// checkMaskedBeforePairing: the logs pipeline runs the masking processors,
// then transform/truncate, then activitypair, so no turn record is ever
// built from an unmasked or oversized row (and masking sees the whole text).
func checkMaskedBeforePairing(t *testing.T, name string, conf *confmap.Conf) {
	t.Helper()
	want := append(slices.Clone(maskingProcessors), "transform/truncate", "activitypair")
	var order []string
	for _, id := range asStrings(conf.Get("service::pipelines::logs::processors")) {
		if slices.Contains(want, id) {
			order = append(order, id)
		}
	}
	if !slices.Equal(order, want) {
		t.Fatalf("%s: service::pipelines::logs::processors runs %v, want %v in that order", name, order, want)
	}
}

func asStrings(v any) []string {
	items, _ := v.([]any)
	out := make([]string, 0, len(items))
	for _, item := range items {
		s, _ := item.(string)
		out = append(out, s)
	}
	return out
}

func (p *maskingPipeline) run(t *testing.T, logs plog.Logs) plog.LogRecord {
	t.Helper()
	records := p.runAll(t, logs)
	if records.Len() != 1 {
		t.Fatalf("want the one record back, got %d", records.Len())
	}
	return records.At(0)
}

func (p *maskingPipeline) runAll(t *testing.T, logs plog.Logs) plog.LogRecordSlice {
	t.Helper()
	p.sink.Reset()
	if err := p.first.ConsumeLogs(context.Background(), logs); err != nil {
		t.Fatalf("ConsumeLogs: %v", err)
	}
	all := p.sink.AllLogs()
	if len(all) != 1 || all[0].ResourceLogs().Len() != 1 || all[0].ResourceLogs().At(0).ScopeLogs().Len() != 1 {
		t.Fatalf("want the batch back as it went in, got %d batches", len(all))
	}
	return all[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
}

func startProcessor(t testing.TB, factory processor.Factory, id string, processors *confmap.Conf, next consumer.Logs) processor.Logs {
	t.Helper()
	section, err := processors.Sub(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(section.AllKeys()) == 0 {
		t.Fatalf("collector-config.yaml has no processors::%s", id)
	}
	cfg := factory.CreateDefaultConfig()
	if err := section.Unmarshal(cfg); err != nil {
		t.Fatalf("processors::%s: %v", id, err)
	}
	if v, ok := cfg.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			t.Fatalf("processors::%s: %v", id, err)
		}
	}
	proc, err := factory.CreateLogs(context.Background(), processortest.NewNopSettings(factory.Type()), cfg, next)
	if err != nil {
		t.Fatalf("processors::%s: %v", id, err)
	}
	if err := proc.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proc.Shutdown(context.Background()) })
	return proc
}

// TestCollectorConfigTruncatesLongTexts: a pasted document is cut to 32 KiB
// with a marker, so its turn fits in a Kafka record; ordinary texts and
// non-text bodies pass unchanged.
func TestCollectorConfigTruncatesLongTexts(t *testing.T) {
	truncate := truncateProcessor(t)
	sink := truncate.sink

	const limit = 32 << 10
	document := "MARKER " + strings.Repeat("lorem ipsum dolor sit amet ", 1<<20/27)
	exactly := strings.Repeat("x", limit)
	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	records.AppendEmpty().Body().SetStr(document)
	records.AppendEmpty().Body().SetStr(exactly)
	records.AppendEmpty().Body().SetStr("How do I reset my password?")
	records.AppendEmpty() // no text: an invoke, a topic row
	if err := truncate.first.ConsumeLogs(context.Background(), logs); err != nil {
		t.Fatal(err)
	}
	got := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	if want := document[:limit] + " [truncated]"; got.At(0).Body().Str() != want {
		t.Errorf("document: got %d bytes ending %q, want %d bytes ending %q",
			len(got.At(0).Body().Str()), tail(got.At(0).Body().Str()), len(want), tail(want))
	}
	if got.At(1).Body().Str() != exactly {
		t.Errorf("a text of exactly %d bytes was changed", limit)
	}
	if got.At(2).Body().Str() != "How do I reset my password?" {
		t.Errorf("short text changed: %q", got.At(2).Body().Str())
	}
	if got.At(3).Body().Type() != pcommon.ValueTypeEmpty {
		t.Errorf("empty body became %v", got.At(3).Body().AsRaw())
	}
}

// TestTruncationKeepsWholeCharacters: a text cut at 32 KiB is cut before a
// character that would straddle the limit, never inside its UTF-8 sequence
// (which a reader turns into U+FFFD), for 2-, 3- and 4-byte characters at
// every offset around the limit.
func TestTruncationKeepsWholeCharacters(t *testing.T) {
	truncate := truncateProcessor(t)
	const limit = 32 << 10
	type tc struct {
		name, text string
		wantKept   int // bytes of text kept before " [truncated]"
	}
	var cases []tc
	for _, char := range []string{"é", "€", "😀"} { // 2, 3 and 4 bytes
		for shift := range len(char) + 1 {
			// ASCII up to limit-shift, then the character repeated past the limit.
			prefix := strings.Repeat("a", limit-shift)
			text := prefix + strings.Repeat(char, 8)
			kept := limit - shift + (shift/len(char))*len(char)
			cases = append(cases, tc{name: char + " at limit-" + strconv.Itoa(shift), text: text, wantKept: kept})
		}
	}
	// Only multi-byte characters, from the start.
	for _, char := range []string{"é", "€", "😀"} {
		text := strings.Repeat(char, limit/len(char)+3)
		cases = append(cases, tc{name: "all " + char, text: text, wantKept: (limit / len(char)) * len(char)})
	}

	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, c := range cases {
		records.AppendEmpty().Body().SetStr(c.text)
	}
	if err := truncate.first.ConsumeLogs(context.Background(), logs); err != nil {
		t.Fatal(err)
	}
	got := truncate.sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i, c := range cases {
		body := got.At(i).Body().Str()
		want := c.text[:c.wantKept] + " [truncated]"
		if !utf8.ValidString(body) {
			t.Errorf("%s: the cut split a character: ends %q", c.name, tail(body))
		}
		if body != want {
			t.Errorf("%s: got %d bytes ending %q, want %d bytes ending %q", c.name, len(body), tail(body), len(want), tail(want))
		}
	}
}

func truncateProcessor(t *testing.T) *maskingPipeline {
	t.Helper()
	conf, err := harness.LoadCollectorConfig(harness.CollectorConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	processors, err := conf.Sub("processors")
	if err != nil {
		t.Fatal(err)
	}
	sink := new(consumertest.LogsSink)
	return &maskingPipeline{first: startProcessor(t, transformprocessor.NewFactory(), "transform/truncate", processors, sink), sink: sink}
}

func tail(s string) string { return s[max(0, len(s)-30):] }

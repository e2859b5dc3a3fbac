package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor"
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

// TestCollectorConfigMasksCredentials runs the credential-masking processors
// of collector-config.yaml (the file users get, read the way the collector
// reads it) over rows carrying each kind of credential, and checks that the
// credentials are gone and everything else is as it was.
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
			name: "direct line secret pasted in a message",
			body: "The portal shows " + directLineSecret + " as Secret 1, is that right?",
			want: want{body: "The portal shows RCurR_XV9ZA**** as Secret 1, is that right?"},
		},
		{
			name: "direct line token and a refreshed token without its first letter",
			body: `{"token": "` + directLineToken + `"} then ` + directLineRefresh,
			want: want{body: `{"token": "RCurR_XV9ZA****"} then CurR_XV9ZA****`},
		},
		{
			name: "bearer header with a direct line secret",
			body: "curl -H 'Authorization: Bearer " + directLineSecret + "' fails",
			want: want{body: "curl -H 'Authorization: Bearer ****' fails"},
		},
		{
			name: "bearer header with an opaque token",
			body: "I send Authorization: bearer " + opaqueBearer + " and get 401",
			want: want{body: "I send Authorization: bearer **** and get 401"},
		},
		{
			name: "bearer header in capitals",
			body: "AUTHORIZATION: BEARER " + opaqueBearer,
			want: want{body: "AUTHORIZATION: BEARER ****"},
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
				schema.UserName:      "tester RCurR_XV9ZA****",
				schema.RecipientID:   "****",
				schema.ActivityName:  "Bearer ****",
				schema.Locale:        "RCurR_XV9ZA****",
				schema.ErrorMessage:  "401 for ****",
				schema.ActivityValue: `{"password":"****"}`,
			}},
		},
		{
			name: "jwt in a message",
			body: "my token is " + entraJWT + ". Thanks",
			want: want{body: "my token is ****. Thanks"},
		},
		{
			name: "signin/tokenExchange invoke with a jwt",
			attrs: map[string]string{
				schema.ActivityType:  "invoke",
				schema.ActivityName:  "signin/tokenExchange",
				schema.ActivityValue: `{"id":"dfb4c4b6-4f3e-4b2b-9a3c-5a0b2c1d3e4f","connectionName":"ContosoSSO","token":"` + entraJWT + `"}`,
			},
			want: want{attrs: map[string]string{
				schema.ActivityType:  "invoke",
				schema.ActivityName:  "signin/tokenExchange",
				schema.ActivityValue: `{"id":"dfb4c4b6-4f3e-4b2b-9a3c-5a0b2c1d3e4f","connectionName":"ContosoSSO","token":"****"}`,
			}},
		},
		{
			name: "signin/tokenExchange invoke with an opaque token",
			attrs: map[string]string{
				schema.ActivityName:  "signin/tokenExchange",
				schema.ActivityValue: `{"id":"x1","connectionName":"ContosoSSO","token": "` + opaqueSSOToken + `"}`,
			},
			want: want{attrs: map[string]string{
				schema.ActivityName:  "signin/tokenExchange",
				schema.ActivityValue: `{"id":"x1","connectionName":"ContosoSSO","token":"****"}`,
			}},
		},
		{
			name: "credential in a raw customDimensions attribute",
			attrs: map[string]string{
				schema.DimensionPrefix + "authorization": "Bearer " + opaqueBearer,
				schema.DimensionPrefix + "directLine":    directLineToken,
			},
			want: want{attrs: map[string]string{
				schema.DimensionPrefix + "authorization": "Bearer ****",
				schema.DimensionPrefix + "directLine":    "RCurR_XV9ZA****",
			}},
		},
		{
			name: "ordinary conversation is left alone",
			body: "Bearer authentication confuses me. Version 1.2.3.4 of app.contoso.com, ticket INC0012345, eyJ alone.",
			attrs: map[string]string{
				schema.ConversationID:    "a:1EBqwyJRd0mFhz0aWtdeKxAbX8bG3-eu.cwA.BKA.0123456789abcdefghijklmnop",
				schema.ActivityID:        "1700000000001",
				schema.ReplyToActivityID: "eyJ0eXAiOiJKV1QiLCJhbGciOiJ.eyJhdWQiOiJhcGk6Ly8x",
				schema.ItemID:            "5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a69",
				schema.ChannelID:         "msteams",
				schema.TopicName:         "cr44e_HrAgent.topic.ResetPassword",
			},
			want: want{
				body: "Bearer authentication confuses me. Version 1.2.3.4 of app.contoso.com, ticket INC0012345, eyJ alone.",
				attrs: map[string]string{
					schema.ConversationID:    "a:1EBqwyJRd0mFhz0aWtdeKxAbX8bG3-eu.cwA.BKA.0123456789abcdefghijklmnop",
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
			for _, secret := range []string{directLineSecret, directLineToken, directLineRefresh, entraJWT, opaqueBearer, opaqueSSOToken} {
				if strings.Contains(got.Body().AsString(), secret) {
					t.Errorf("body still holds %.20s...", secret)
				}
				for k, v := range gotAttrs {
					if strings.Contains(v, secret) {
						t.Errorf("attribute %s still holds %.20s...", k, secret)
					}
				}
			}
		})
	}
}

// maskingPipeline is transform/credentials -> redaction/credentials as
// collector-config.yaml configures them, in the order its pipeline runs them.
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
	checkMaskedBeforePairing(t, conf)
	processors, err := conf.Sub("processors")
	if err != nil {
		t.Fatal(err)
	}

	sink := new(consumertest.LogsSink)
	// Built back to front: each processor feeds the one after it.
	redaction := startProcessor(t, redactionprocessor.NewFactory(), "redaction/credentials", processors, sink)
	transform := startProcessor(t, transformprocessor.NewFactory(), "transform/credentials", processors, redaction)
	return &maskingPipeline{first: transform, sink: sink}
}

// checkMaskedBeforePairing: the logs pipeline runs transform/credentials,
// then redaction/credentials, then transform/truncate, then activitypair, so
// no turn record is ever built from an unmasked or oversized row (and masking
// sees the whole text).
func checkMaskedBeforePairing(t *testing.T, conf *confmap.Conf) {
	t.Helper()
	var order []string
	for _, id := range asStrings(conf.Get("service::pipelines::logs::processors")) {
		switch id {
		case "transform/credentials", "redaction/credentials", "transform/truncate", "activitypair":
			order = append(order, id)
		}
	}
	want := []string{"transform/credentials", "redaction/credentials", "transform/truncate", "activitypair"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("service::pipelines::logs::processors runs %v, want %v in that order", order, want)
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
	p.sink.Reset()
	if err := p.first.ConsumeLogs(context.Background(), logs); err != nil {
		t.Fatalf("ConsumeLogs: %v", err)
	}
	all := p.sink.AllLogs()
	if len(all) != 1 || all[0].LogRecordCount() != 1 {
		t.Fatalf("want the one record back, got %d batches", len(all))
	}
	return all[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
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
	conf, err := harness.LoadCollectorConfig(harness.CollectorConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	processors, err := conf.Sub("processors")
	if err != nil {
		t.Fatal(err)
	}
	sink := new(consumertest.LogsSink)
	truncate := startProcessor(t, transformprocessor.NewFactory(), "transform/truncate", processors, sink)

	const limit = 32 << 10
	document := "MARKER " + strings.Repeat("lorem ipsum dolor sit amet ", 1<<20/27)
	exactly := strings.Repeat("x", limit)
	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	records.AppendEmpty().Body().SetStr(document)
	records.AppendEmpty().Body().SetStr(exactly)
	records.AppendEmpty().Body().SetStr("How do I reset my password?")
	records.AppendEmpty() // no text: an invoke, a topic row
	if err := truncate.ConsumeLogs(context.Background(), logs); err != nil {
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

func tail(s string) string { return s[max(0, len(s)-30):] }

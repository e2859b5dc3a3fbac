package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/kafkaexporter"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/localtls"
)

// The overlays that turn on TLS and SASL for the Kafka exporter.
const (
	kafkaTLSOverlay  = "collector-config.kafka-tls.yaml"
	kafkaSASLOverlay = "collector-config.kafka-sasl.yaml"
)

// What Azure Event Hubs' Kafka endpoint takes: the user $ConnectionString
// and the namespace's connection string as the password (a made-up one).
const (
	eventHubsUser     = "$ConnectionString"
	eventHubsPassword = "Endpoint=sb://contoso-akto.servicebus.windows.net/;SharedAccessKeyName=collector-send;SharedAccessKey=q2Vf8mQeZk3N0xWJr7tYpLd1sHcA9uBo4gEiTnKxR5M="
	scramUser         = "otelcol-copilotstudio"
	scramPassword     = "correct horse battery staple"
)

// secureKafka is a kfake broker that speaks only TLS and SASL, the way a
// managed Kafka does: PLAIN for the Event Hubs user, SCRAM for another.
type secureKafka struct {
	cluster *kfake.Cluster
	certs   *localtls.Bundle
	caFile  string
}

func startSecureKafka(t *testing.T) *secureKafka {
	t.Helper()
	certs, err := localtls.New()
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "kafka-ca.pem")
	if err := certs.WriteCAFile(caFile); err != nil {
		t.Fatal(err)
	}
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(1, mainTopic),
		kfake.TLS(certs.ServerTLSConfig()),
		kfake.EnableSASL(),
		kfake.Superuser("PLAIN", eventHubsUser, eventHubsPassword),
		kfake.Superuser("SCRAM-SHA-256", scramUser, scramPassword),
		kfake.Superuser("SCRAM-SHA-512", scramUser, scramPassword),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	// A wrong PLAIN password: answer as Apache Kafka does (error 58 and its
	// message) before the connection closes; kfake would only close it,
	// which a client can only report as EOF.
	cluster.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		auth := req.(*kmsg.SASLAuthenticateRequest)
		parts := strings.Split(string(auth.SASLAuthBytes), "\x00")
		if len(parts) != 3 || parts[1] != eventHubsUser || parts[2] == eventHubsPassword {
			return nil, nil, false // not PLAIN, or right: kfake authenticates
		}
		resp := auth.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed: Invalid username or password"
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
	return &secureKafka{cluster: cluster, certs: certs, caFile: caFile}
}

// values reads every record of the topic, over TLS with SASL.
func (k *secureKafka) values(t *testing.T, mechanism sasl.Mechanism) []string {
	t.Helper()
	client, err := kgo.NewClient(
		kgo.SeedBrokers(k.cluster.ListenAddrs()...),
		kgo.DialTLSConfig(&tls.Config{RootCAs: k.certs.CertPool(), MinVersion: tls.VersionTLS12}),
		kgo.SASL(mechanism),
		kgo.ConsumeTopics(mainTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var out []string
	for _, mark := range k.cluster.PartitionInfos(mainTopic) {
		for int64(len(out)) < mark.HighWatermark {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			fetches := client.PollFetches(ctx)
			cancel()
			if err := fetches.Err(); err != nil {
				t.Fatalf("reading %s back: %v", mainTopic, err)
			}
			for _, r := range fetches.Records() {
				out = append(out, string(r.Value))
			}
		}
	}
	return out
}

func (k *secureKafka) records() int64 {
	var n int64
	for _, p := range k.cluster.PartitionInfos(mainTopic) {
		n += p.HighWatermark
	}
	return n
}

// kafkaConfig loads collector-config.yaml with the given overlays as the
// collector merges repeated --config files, with env set as the process
// environment.
func kafkaConfig(t *testing.T, env map[string]string, overlays ...string) *confmap.Conf {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	paths := []string{harness.CollectorConfigPath()}
	for _, o := range overlays {
		paths = append(paths, filepath.Join(root, o))
	}
	conf, err := harness.LoadCollectorConfig(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// startObservedKafkaExporter builds exporters::kafka of conf as the
// collector would (persistent queue on a real file_storage, retries), with
// its logs recorded.
func startObservedKafkaExporter(t *testing.T, conf *confmap.Conf) (exporter.Logs, *observer.ObservedLogs) {
	t.Helper()
	host := harness.StartFileStorage(t, t.TempDir())
	f := kafkaexporter.NewFactory()
	cfg := f.CreateDefaultConfig()
	unmarshalSection(t, conf, "exporters::kafka", cfg)
	if v, ok := cfg.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			t.Fatalf("exporters::kafka: %v", err)
		}
	}
	core, logs := observer.New(zapcore.InfoLevel)
	set := exportertest.NewNopSettings(f.Type())
	set.Logger = zap.New(core)
	exp, err := f.CreateLogs(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp, logs
}

func sendTurn(t *testing.T, exp exporter.Logs, body string) {
	t.Helper()
	logs := plog.NewLogs()
	addTurn(logs, "conv-"+body, false, body)
	if err := exp.ConsumeLogs(context.Background(), logs); err != nil {
		t.Fatalf("ConsumeLogs: %v", err)
	}
}

// TestKafkaTLSAndSASL sends a turn through the real Kafka exporter,
// configured by collector-config.yaml and its TLS and SASL overlays from
// the variables the README documents, to a broker that speaks only TLS and
// SASL: the right credentials deliver it (PLAIN as Azure Event Hubs wants
// it, SCRAM-SHA-256, SCRAM-SHA-512); a wrong password or an untrusted
// certificate delivers nothing and logs an error that says why, without
// the password.
func TestKafkaTLSAndSASL(t *testing.T) {
	broker := startSecureKafka(t)
	brokers := strings.Join(broker.cluster.ListenAddrs(), ",")

	for _, c := range []struct {
		name, mechanism, user, password, compression string
		consumeAs                                    sasl.Mechanism
	}{
		{"PLAIN as Event Hubs wants it", "PLAIN", eventHubsUser, eventHubsPassword, "gzip",
			plain.Auth{User: eventHubsUser, Pass: eventHubsPassword}.AsMechanism()},
		{"SCRAM-SHA-256", "SCRAM-SHA-256", scramUser, scramPassword, "",
			scram.Auth{User: scramUser, Pass: scramPassword}.AsSha256Mechanism()},
		{"SCRAM-SHA-512", "SCRAM-SHA-512", scramUser, scramPassword, "",
			scram.Auth{User: scramUser, Pass: scramPassword}.AsSha512Mechanism()},
	} {
		t.Run(c.name+" delivers", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			env := map[string]string{
				"KAFKA_BROKERS": brokers, "KAFKA_TOPIC": mainTopic, "KAFKA_CA_FILE": broker.caFile,
				"KAFKA_SASL_MECHANISM": c.mechanism, "KAFKA_SASL_USERNAME": c.user, "KAFKA_SASL_PASSWORD": c.password,
			}
			if c.compression != "" {
				env["KAFKA_COMPRESSION"] = c.compression
			}
			conf := kafkaConfig(t, env, kafkaTLSOverlay, kafkaSASLOverlay)
			if got := conf.Get("exporters::kafka::auth::sasl::username"); got != c.user {
				t.Fatalf("username arrived as %q, want %q", got, c.user)
			}
			exp, _ := startObservedKafkaExporter(t, conf)
			before := broker.records()
			body := `{"turn":"` + c.mechanism + `"}`
			sendTurn(t, exp, body)
			if err := harness.WaitFor(ctx, 20*time.Millisecond, "the turn on "+mainTopic, func() (bool, error) {
				return broker.records() > before, nil
			}); err != nil {
				t.Fatal(err)
			}
			got := broker.values(t, c.consumeAs)
			if len(got) == 0 || got[len(got)-1] != body {
				t.Fatalf("%s holds %q, want %s last", mainTopic, got, body)
			}
		})
	}

	t.Run("wrong password delivers nothing and says why", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const wrong = "Endpoint=sb://contoso-akto.servicebus.windows.net/;SharedAccessKeyName=collector-send;SharedAccessKey=WRONGWRONGWRONGWRONGWRONGWRONGWRONGWRONG00="
		conf := kafkaConfig(t, map[string]string{
			"KAFKA_BROKERS": brokers, "KAFKA_TOPIC": mainTopic, "KAFKA_CA_FILE": broker.caFile, "KAFKA_COMPRESSION": "gzip",
			"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": eventHubsUser, "KAFKA_SASL_PASSWORD": wrong,
		}, kafkaTLSOverlay, kafkaSASLOverlay)
		shortSendTimeout(t, conf)
		exp, logs := startObservedKafkaExporter(t, conf)
		before := broker.records()
		sendTurn(t, exp, `{"turn":"refused"}`)
		entry := waitForLog(ctx, t, logs, "SASL_AUTHENTICATION_FAILED")
		if broker.records() != before {
			t.Errorf("a record reached %s with a wrong password", mainTopic)
		}
		checkNotLogged(t, logs, wrong, "SharedAccessKey=WRONG")
		t.Logf("logged: %s", entry)
	})

	t.Run("certificate from an unknown CA delivers nothing and says why", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conf := kafkaConfig(t, map[string]string{
			"KAFKA_BROKERS": brokers, "KAFKA_TOPIC": mainTopic, "KAFKA_CA_FILE": "",
			"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": scramUser, "KAFKA_SASL_PASSWORD": scramPassword,
		}, kafkaTLSOverlay, kafkaSASLOverlay)
		shortSendTimeout(t, conf)
		exp, logs := startObservedKafkaExporter(t, conf)
		before := broker.records()
		sendTurn(t, exp, `{"turn":"untrusted"}`)
		entry := waitForLog(ctx, t, logs, "certificate signed by unknown authority")
		t.Logf("logged: %s", entry)
		if broker.records() != before {
			t.Errorf("a record reached %s over TLS it could not verify", mainTopic)
		}
		checkNotLogged(t, logs, scramPassword)
	})
}

// TestKafkaDefaultsArePlaintext: without the overlays, collector-config.yaml
// asks for neither TLS nor SASL (a local broker keeps working), and lz4.
func TestKafkaDefaultsArePlaintext(t *testing.T) {
	conf := kafkaConfig(t, nil)
	for _, key := range []string{"exporters::kafka::tls", "exporters::kafka::auth"} {
		if v := conf.Get(key); v != nil {
			t.Errorf("%s = %v without the overlays, want unset", key, v)
		}
	}
	if got := conf.Get("exporters::kafka::producer::compression"); got != "lz4" {
		t.Errorf("compression = %v, want lz4 by default", got)
	}
	tlsOnly := kafkaConfig(t, nil, kafkaTLSOverlay)
	if got := tlsOnly.Get("exporters::kafka::tls::insecure"); got != false {
		t.Errorf("with %s tls::insecure = %v, want false", kafkaTLSOverlay, got)
	}
	if got := tlsOnly.Get("exporters::kafka::tls::insecure_skip_verify"); got != false {
		t.Errorf("with %s insecure_skip_verify = %v, want false by default", kafkaTLSOverlay, got)
	}
}

// TestKafkaOverlaysValidate runs the built binary's `validate` on
// collector-config.yaml with both overlays, as an operator would, and
// checks that a SASL block without credentials is refused with the key's name.
func TestKafkaOverlaysValidate(t *testing.T) {
	bin := harness.Binary(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	validate := func(env map[string]string) (string, error) {
		cmd := exec.Command(bin, "validate", "--config", harness.CollectorConfigPath(),
			"--config", filepath.Join(root, kafkaTLSOverlay), "--config", filepath.Join(root, kafkaSASLOverlay))
		cmd.Env = os.Environ()
		for k, v := range map[string]string{
			"APPINSIGHTS_APP_ID": "9f3c5d2e-0000-4000-8000-00000000a001", "AZURE_TENANT_ID": "tenant",
			"AZURE_CLIENT_ID": "client", "AZURE_CLIENT_SECRET": "not-a-secret",
			"KAFKA_BROKERS": "contoso-akto.servicebus.windows.net:9093", "KAFKA_COMPRESSION": "gzip",
		} {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := validate(map[string]string{"KAFKA_SASL_USERNAME": eventHubsUser, "KAFKA_SASL_PASSWORD": eventHubsPassword}); err != nil {
		t.Fatalf("validate with Event Hubs settings: %v\n%s", err, out)
	}
	out, err := validate(map[string]string{"KAFKA_SASL_USERNAME": "", "KAFKA_SASL_PASSWORD": ""})
	if err == nil || !strings.Contains(out, "username is required") {
		t.Fatalf("validate without credentials: err %v, output:\n%s", err, out)
	}
}

// shortSendTimeout lets a send that cannot succeed give up after 2 s
// instead of 30, so that the exporter's shutdown at the end of the test
// does not wait that long for it.
func shortSendTimeout(t *testing.T, conf *confmap.Conf) {
	t.Helper()
	if err := conf.Merge(confmap.NewFromStringMap(map[string]any{"exporters": map[string]any{"kafka": map[string]any{"timeout": "2s"}}})); err != nil {
		t.Fatal(err)
	}
}

// waitForLog waits until an entry's message or fields mention what, and
// returns it as text.
func waitForLog(ctx context.Context, t *testing.T, logs *observer.ObservedLogs, what string) string {
	t.Helper()
	var found string
	err := harness.WaitFor(ctx, 20*time.Millisecond, "a log entry mentioning "+what, func() (bool, error) {
		for _, e := range logs.All() {
			if text := entryText(e); strings.Contains(text, what) {
				found = text
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		for _, e := range logs.All() {
			t.Logf("logged: %s", entryText(e))
		}
		t.Fatal(err)
	}
	return found
}

func checkNotLogged(t *testing.T, logs *observer.ObservedLogs, secrets ...string) {
	t.Helper()
	for _, e := range logs.All() {
		text := entryText(e)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("a log entry carries the secret %.12s...: %s", s, text)
			}
		}
	}
}

func entryText(e observer.LoggedEntry) string {
	return fmt.Sprintf("%s %v", e.Message, e.ContextMap())
}

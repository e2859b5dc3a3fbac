package copilotstudioreceiver

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

func loadConfig(t *testing.T, id string) *Config {
	t.Helper()
	t.Setenv("COPILOTSTUDIO_CLIENT_SECRET", "from-the-environment")
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := resolveEnv(cm)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := resolved.Sub(id)
	if err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatalf("unmarshal %s: %v", id, err)
	}
	return cfg
}

// resolveEnv expands ${env:...} the way the collector's resolver would.
func resolveEnv(cm *confmap.Conf) (*confmap.Conf, error) {
	raw := cm.ToStringMap()
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		case string:
			if strings.HasPrefix(x, "${env:") {
				return "from-the-environment"
			}
		}
		return v
	}
	return confmap.NewFromStringMap(walk(raw).(map[string]any)), nil
}

func TestLoadFullConfig(t *testing.T) {
	cfg := loadConfig(t, "copilotstudio")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	storage := component.MustNewIDWithName("file_storage", "copilotstudio")
	want := Config{
		Endpoint: "https://api.applicationinsights.us", Timeout: 2 * time.Minute, ProxyURL: "http://proxy.internal:3128",
		ApplicationID: "9f3c5d2e-0000-4000-8000-00000000a001",
		EventNames:    []string{"BotMessageReceived", "BotMessageSend"}, Agents: []string{"HR Agent", "IT Helpdesk"},
		PollInterval: 5 * time.Minute, InitialLookback: 48 * time.Hour, IngestionDelay: 5 * time.Minute,
		Overlap: 2 * time.Minute, MaxRowsPerQuery: 100000, MaxBatchSize: 2000, MaxConcurrentBatches: 4, StorageID: &storage,
	}
	if cfg.Endpoint != want.Endpoint || cfg.Timeout != want.Timeout || cfg.ProxyURL != want.ProxyURL ||
		cfg.ApplicationID != want.ApplicationID || strings.Join(cfg.EventNames, ",") != strings.Join(want.EventNames, ",") ||
		strings.Join(cfg.Agents, ",") != strings.Join(want.Agents, ",") || cfg.PollInterval != want.PollInterval ||
		cfg.InitialLookback != want.InitialLookback || cfg.IngestionDelay != want.IngestionDelay ||
		cfg.Overlap != want.Overlap || cfg.MaxRowsPerQuery != want.MaxRowsPerQuery || cfg.MaxBatchSize != want.MaxBatchSize ||
		cfg.MaxConcurrentBatches != want.MaxConcurrentBatches ||
		*cfg.StorageID != storage {
		t.Fatalf("loaded %+v", cfg)
	}
	if dv := cfg.Dataverse.Get(); dv == nil || dv.URL != "https://contoso.crm.dynamics.com" || dv.RefreshInterval != 30*time.Minute || dv.InitialWait != 45*time.Second {
		t.Errorf("dataverse = %+v", dv)
	}
	if cfg.TLS.CAFile != "/etc/ssl/private-ca.pem" {
		t.Errorf("tls.ca_file = %q", cfg.TLS.CAFile)
	}
	if cfg.Auth.ClientSecret != "from-the-environment" || cfg.Auth.AuthorityHost != "https://login.microsoftonline.us/" {
		t.Errorf("auth = %+v", cfg.Auth)
	}
	if strings.Contains(cfg.Auth.ClientSecret.String(), "environment") {
		t.Error("configopaque secret prints in clear")
	}
}

func TestDefaults(t *testing.T) {
	cfg := loadConfig(t, "copilotstudio/minimal")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Endpoint != "https://api.applicationinsights.io" || cfg.PollInterval != 10*time.Minute ||
		cfg.InitialLookback != 24*time.Hour || cfg.IngestionDelay != 3*time.Minute || cfg.Overlap != time.Minute ||
		cfg.MaxRowsPerQuery != 50000 || cfg.MaxBatchSize != 5000 || cfg.MaxConcurrentBatches != 1 || cfg.StorageID != nil {
		t.Fatalf("defaults: %+v", cfg)
	}
	if cfg.Dataverse.Get() != nil {
		t.Fatal("dataverse is on by default")
	}
	dv := loadConfig(t, "copilotstudio/dataverse").Dataverse.Get()
	if dv == nil || dv.RefreshInterval != time.Hour || dv.InitialWait != 30*time.Second || dv.Auth != nil {
		t.Fatalf("dataverse defaults: %+v", dv)
	}
	want := append(append([]string{}, schema.MessageEvents...), schema.FlowEvents...)
	if strings.Join(cfg.EventNames, ",") != strings.Join(want, ",") {
		t.Fatalf("default event_names = %v", cfg.EventNames)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	err := loadConfig(t, "copilotstudio/invalid").Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{
		"application_id is required", `endpoint "ftp://example"`, "event_names is empty", "agents[0] is empty",
		"poll_interval 0s is too short", "initial_lookback 0s must be positive", "ingestion_delay -1m0s must not be negative",
		"overlap -1s must not be negative", "max_rows_per_query 600000 is out of range: use 1 to 500000",
		"max_batch_size 0 is out of range: use 1 to 500000 log records per batch (default 5000)",
		"max_concurrent_batches 17 is out of range: use 1 to 16 batches in the next consumer at once (default 1: one at a time, in order)",
		"auth.tenant_id is required for auth.type client_secret", "auth.client_id is required",
		"auth.client_secret is required", "auth.authority_host \"http://login.example\" must be an https URL",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("validation error lacks %q:\n%v", want, err)
		}
	}
	err = loadConfig(t, "copilotstudio/unknown_auth").Validate()
	if err == nil || !strings.Contains(err.Error(), `auth.type "password" is unknown: use one of client_secret, client_certificate`) {
		t.Fatalf("unknown auth type: %v", err)
	}
}

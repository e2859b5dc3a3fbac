package copilotstudiotranscriptsreceiver

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"

	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
)

// TestShippedOverlay: collector-config.transcripts.yaml over
// collector-config.yaml gives a valid receiver configuration from the
// environment, and adds it to the logs pipeline next to the other source.
func TestShippedOverlay(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"DATAVERSE_URL": "https://contoso.crm.dynamics.com", "AZURE_TENANT_ID": testTenant, "AZURE_CLIENT_ID": testClientID,
		"AZURE_CLIENT_SECRET": testSecret, "APPINSIGHTS_APP_ID": "app", "TRANSCRIPTS_LOOKBACK": "72h",
	} {
		t.Setenv(k, v)
	}
	conf, err := testenv.LoadCollectorConfig(testenv.CollectorConfigPath(), filepath.Join(root, "collector-config.transcripts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := conf.Sub("receivers::copilotstudio_transcripts")
	if err != nil {
		t.Fatal(err)
	}
	cfg := createDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.InitialLookback != 72*time.Hour || cfg.MaxPageSize != 50 || cfg.StorageID == nil || *cfg.StorageID != component.MustNewID("file_storage") {
		t.Errorf("config %+v", cfg)
	}
	receivers, _ := conf.Get("service::pipelines::logs::receivers").([]any)
	if !slices.Contains(receivers, any("copilotstudio_transcripts")) || !slices.Contains(receivers, any("copilotstudio")) {
		t.Errorf("logs pipeline receivers %v", receivers)
	}
}

package copilotstudiotranscriptsreceiver

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
)

func validConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.URL = "https://contoso.crm.dynamics.com"
	cfg.Auth = azureauth.Config{Type: azureauth.ClientSecret, TenantID: "t", ClientID: "c", ClientSecret: configopaque.String("s")}
	return cfg
}

func TestValidateAcceptsDefaults(t *testing.T) {
	cfg := validConfig()
	cfg.Agents = []string{"198ECA5F-0000-4000-8000-0000000000A1", "cr44e_hrAgent"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ids, names := cfg.agentIDsAndNames()
	if len(ids) != 1 || ids[0] != "198eca5f-0000-4000-8000-0000000000a1" || len(names) != 1 {
		t.Errorf("ids %v names %v", ids, names)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := validConfig()
	cfg.URL = "http://contoso.crm.dynamics.com/api/data"
	cfg.Auth = azureauth.Config{Type: azureauth.APIKey, APIKey: "k"}
	cfg.Agents = []string{"HR Agent"}
	cfg.InitialLookback = 31 * 24 * time.Hour
	cfg.MaxPageSize = 6000
	cfg.Overlap = -time.Second
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"url", "api_key", "agents[0]", "initial_lookback", "30 days", "max_page_size", "overlap"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

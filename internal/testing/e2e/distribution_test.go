package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
)

// TestComponentsListed checks that the built distribution carries our two
// components next to the stock ones the shipped config uses.
func TestComponentsListed(t *testing.T) {
	bin := harness.Binary(t)
	out, err := exec.Command(bin, "components").CombinedOutput()
	if err != nil {
		t.Fatalf("%s components: %v\n%s", bin, err, out)
	}
	for _, name := range []string{
		"name: copilotstudio", "name: activitypair",
		"name: kafka", "name: redaction", "name: transform", "name: memory_limiter", "name: batch",
		"name: file_storage", "name: health_check", "name: debug",
	} {
		if !strings.Contains(string(out), name+"\n") {
			t.Errorf("components does not list %q:\n%s", name, out)
		}
	}
}

// TestValidateShippedConfig runs `validate` on collector-config.yaml with
// only the required environment set, as a new user would, and checks that a
// missing required variable is reported by name.
func TestValidateShippedConfig(t *testing.T) {
	bin := harness.Binary(t)
	required := map[string]string{
		"APPINSIGHTS_APP_ID":  harness.StandInAppID,
		"AZURE_TENANT_ID":     harness.StandInTenantID,
		"AZURE_CLIENT_ID":     harness.StandInClientID,
		"AZURE_CLIENT_SECRET": harness.StandInClientSecret,
	}
	validate := func(env map[string]string) (string, error) {
		cmd := exec.Command(bin, "validate", "--config", harness.CollectorConfigPath())
		cmd.Env = cleanEnv()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	if out, err := validate(required); err != nil {
		t.Fatalf("validate --config collector-config.yaml: %v\n%s", err, out)
	}

	missing := harness.Env(required)
	delete(missing, "APPINSIGHTS_APP_ID")
	out, err := validate(missing)
	if err == nil || !strings.Contains(out, "application_id is required") {
		t.Errorf("validate without APPINSIGHTS_APP_ID: err %v, want an application_id error; output:\n%s", err, out)
	}
}

// cleanEnv is this process's environment without the variables
// collector-config.yaml reads, so a developer's own settings cannot change
// what the test sees.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "AZURE_"), strings.HasPrefix(name, "APPINSIGHTS_"),
			strings.HasPrefix(name, "KAFKA_"), strings.HasPrefix(name, "AKTO_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

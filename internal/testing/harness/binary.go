package harness

import (
	"os"
	"testing"
)

// BinaryEnv names the variable `make test` sets to the binary `make build` made.
const BinaryEnv = "OTELCOL_BINARY"

// Binary is the distribution binary to test. Without OTELCOL_BINARY the test
// is skipped, except under CI=true, where a missing binary is a failure:
// CI must never pass by not running the end-to-end test.
func Binary(t testing.TB) string {
	t.Helper()
	path := os.Getenv(BinaryEnv)
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: run the tests with `make test`, which builds the distribution first", BinaryEnv)
		}
		t.Skipf("%s is not set: `make test` builds the distribution and runs this test", BinaryEnv)
	}
	if info, err := os.Stat(path); err != nil || info.IsDir() {
		t.Fatalf("%s=%s: no such binary (run `make build`): %v", BinaryEnv, path, err)
	}
	return path
}

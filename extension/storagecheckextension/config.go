package storagecheckextension

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
)

// What to do with a corrupt file.
const (
	// OnCorruptStop fails the collector's start with the recovery steps;
	// the file stays as it is.
	OnCorruptStop = "stop"
	// OnCorruptMoveAside renames the file to <name>.corrupt-<UTC time>,
	// logs what that loses or repeats, and lets the collector start clean.
	OnCorruptMoveAside = "move_aside"
)

// Config of the storage_check extension.
type Config struct {
	// Directory is file_storage's directory (its `directory` key).
	Directory string `mapstructure:"directory"`
	// OnCorrupt is OnCorruptStop or OnCorruptMoveAside.
	OnCorrupt string `mapstructure:"on_corrupt"`
	// Timeout bounds the check of the whole directory. A check that runs
	// out of time stops the collector, whatever OnCorrupt says: a file not
	// proven corrupt is never moved aside.
	Timeout time.Duration `mapstructure:"timeout"`

	_ struct{}
}

var _ component.Config = (*Config)(nil)

// defaultDirectory is file_storage's own default on Linux, so that two
// unconfigured extensions look at the same place.
const defaultDirectory = "/var/lib/otelcol/file_storage"

func createDefaultConfig() component.Config {
	return &Config{
		Directory: defaultDirectory,
		OnCorrupt: OnCorruptStop,
		Timeout:   time.Minute,
	}
}

// Validate reports every problem at once, each naming the key and the fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.TrimSpace(c.Directory) == "" {
		add("directory is empty: give file_storage's directory (the same value as its `directory` key)")
	}
	switch c.OnCorrupt {
	case OnCorruptStop, OnCorruptMoveAside:
	default:
		add("on_corrupt %q is unknown: use %q (do not start; keep the file and say how to recover) or %q (rename the file to <name>.corrupt-<time> and start clean)",
			c.OnCorrupt, OnCorruptStop, OnCorruptMoveAside)
	}
	if c.Timeout <= 0 {
		add("timeout %v must be positive (default 1m): the check of the whole directory gives up after it", c.Timeout)
	}
	return errors.Join(errs...)
}

package cardmaskprocessor

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/component"
)

// DefaultMarker replaces each card number unless the config says otherwise.
const DefaultMarker = "[card-number]"

// Config is the cardmask processor's configuration.
type Config struct {
	// Marker replaces each card number found.
	Marker string `mapstructure:"marker"`

	// IgnoredKeys are log record attributes left as they are, e.g. ids that
	// later stages rely on and that could look like a card number.
	IgnoredKeys []string `mapstructure:"ignored_keys"`

	_ struct{}
}

func createDefaultConfig() component.Config {
	return &Config{Marker: DefaultMarker}
}

// Validate reports every problem at once, each naming the key and the fix.
func (c *Config) Validate() error {
	var errs []error
	if c.Marker == "" {
		errs = append(errs, fmt.Errorf("marker: must not be empty; set the text that replaces a card number, e.g. %q", DefaultMarker))
	} else if strings.ContainsAny(c.Marker, "0123456789") {
		errs = append(errs, fmt.Errorf("marker: %q has digits, which could make it look like part of a number; use text without digits, e.g. %q", c.Marker, DefaultMarker))
	}
	for i, k := range c.IgnoredKeys {
		if k == "" {
			errs = append(errs, fmt.Errorf("ignored_keys[%d]: empty; remove it or name an attribute key", i))
		}
	}
	return errors.Join(errs...)
}

package copilotstudioreceiver

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
)

const (
	defaultEndpoint = "https://api.applicationinsights.io"
	// defaultMaxBatchSize: records of a few thousand rows (about 1 KB each)
	// are a few MB, small enough to die young, large enough that the fixed
	// cost of each ConsumeLogs (a storage commit in stateful processors)
	// stays small per row.
	defaultMaxBatchSize = 5000
	// maxConcurrentBatches bounds max_concurrent_batches: each batch in
	// flight holds a few MB of records, and past a few more than the cores
	// there is nothing left to overlap.
	maxConcurrentBatches = 16
	// defaultDataverseInitialWait: reading the agents takes a second or
	// two; a Dataverse that has not answered in half a minute is not worth
	// holding the telemetry for.
	defaultDataverseInitialWait = 30 * time.Second
	// Bounds of max_response_bytes and max_cell_bytes: below them a normal
	// answer or row would not fit.
	minResponseBytes = 1 << 20
	minCellBytes     = 64 << 10
)

// What Start does with a stored cursor it cannot read (on_unreadable_cursor).
const (
	// UnreadableCursorStop fails Start and says what to do: nothing is
	// read until someone decides.
	UnreadableCursorStop = "stop"
	// UnreadableCursorRestart starts again from initial_lookback.
	UnreadableCursorRestart = "restart_from_lookback"
)

// Config is the copilotstudio receiver's configuration.
type Config struct {
	// Endpoint is the query API's base URL (sovereign clouds, tests).
	Endpoint string `mapstructure:"endpoint"`
	// Timeout bounds one HTTP request, query or token.
	Timeout time.Duration `mapstructure:"timeout"`
	// TLS and ProxyURL configure the HTTP client. The Entra ID token requests
	// go through the same client, so tls.ca_file also makes a private token
	// endpoint trusted. tls.ca_file is added to the system roots
	// (include_system_ca_certs_pool is on by default). These are
	// confighttp's own settings; its squashed ClientConfig is not embedded
	// because its "auth" key would clash with ours.
	TLS      configtls.ClientConfig `mapstructure:"tls"`
	ProxyURL string                 `mapstructure:"proxy_url"`

	// ApplicationID is the Application Insights resource's Application ID
	// (API Access blade), not its instrumentation key.
	ApplicationID string `mapstructure:"application_id"`

	Auth azureauth.Config `mapstructure:"auth"`

	// EventNames are the customEvents names fetched.
	EventNames []string `mapstructure:"event_names"`
	// Agents, when set, keeps only rows whose cloud_RoleInstance (agent name) is listed.
	Agents []string `mapstructure:"agents"`

	PollInterval time.Duration `mapstructure:"poll_interval"`
	// InitialLookback is how far back the first poll reaches when no cursor is stored.
	InitialLookback time.Duration `mapstructure:"initial_lookback"`
	// IngestionDelay keeps the window's upper bound this far behind now, so
	// rows still being ingested are fetched next time rather than missed.
	IngestionDelay time.Duration `mapstructure:"ingestion_delay"`
	// Overlap re-reads this much before the cursor on each poll to catch rows
	// that became visible late; their item ids de-duplicate the repeats.
	Overlap time.Duration `mapstructure:"overlap"`
	// MaxRowsPerQuery bounds one query's result; a larger window is split in time.
	MaxRowsPerQuery int `mapstructure:"max_rows_per_query"`
	// MaxBatchSize bounds the log records of one ConsumeLogs call: a window
	// is passed on in batches of this many records, so the next consumer
	// works on a few MB at a time while the receiver builds the next batch.
	MaxBatchSize int `mapstructure:"max_batch_size"`
	// MaxConcurrentBatches is how many batches of a window may be in the
	// next consumer's ConsumeLogs at once. 1 passes them one at a time, in
	// row order. More lets a pipeline that runs inside ConsumeLogs work on
	// several batches on several cores, at the price of their order.
	MaxConcurrentBatches int `mapstructure:"max_concurrent_batches"`

	// MaxResponseBytes bounds one query answer and MaxCellBytes one value
	// in it. A window whose answer is larger is read in smaller time slices.
	MaxResponseBytes int64 `mapstructure:"max_response_bytes"`
	MaxCellBytes     int   `mapstructure:"max_cell_bytes"`

	// StorageID names a storage extension (e.g. file_storage) that keeps the
	// cursor across restarts. Without it the cursor lives in memory.
	StorageID *component.ID `mapstructure:"storage"`
	// OnUnreadableCursor is what Start does when the stored cursor cannot
	// be read: stop (fail, saying what to do) or restart_from_lookback.
	OnUnreadableCursor string `mapstructure:"on_unreadable_cursor"`

	// Dataverse, when set, names the agents' Dataverse environment so each
	// agent's rows say which agent it is, how it authenticates its users and
	// whether it is published.
	Dataverse configoptional.Optional[DataverseConfig] `mapstructure:"dataverse"`

	_ struct{}
}

// DataverseConfig is the optional Dataverse enrichment.
type DataverseConfig struct {
	// URL is the environment, e.g. https://contoso.crm.dynamics.com. The token
	// scope is URL + /.default.
	URL string `mapstructure:"url"`
	// RefreshInterval is how often the list of agents is read again.
	RefreshInterval time.Duration `mapstructure:"refresh_interval"`
	// InitialWait bounds how long the first poll waits for the first read
	// of the agents, so that a backlog read at start carries their identity
	// without Dataverse ever holding up the telemetry for long.
	InitialWait time.Duration `mapstructure:"initial_wait"`
	// Auth is the credential for Dataverse; unset, the receiver's auth is used.
	Auth *azureauth.Config `mapstructure:"auth"`

	_ struct{}
}

func createDefaultConfig() component.Config {
	return &Config{
		Endpoint: defaultEndpoint,
		// The query API runs a query for up to 3 minutes by default.
		Timeout:         4 * time.Minute,
		EventNames:      defaultEventNames(),
		PollInterval:    10 * time.Minute,
		InitialLookback: 24 * time.Hour,
		IngestionDelay:  3 * time.Minute,
		Overlap:         time.Minute,
		MaxRowsPerQuery: 50000,
		MaxBatchSize:    defaultMaxBatchSize,
		// One at a time: batches reach the next consumer in row order.
		MaxConcurrentBatches: 1,
		MaxResponseBytes:     appinsights.DefaultMaxResponseBytes,
		MaxCellBytes:         appinsights.DefaultMaxCellBytes,
		OnUnreadableCursor:   UnreadableCursorStop,
		// tls.ca_file adds a CA to the system's, it does not replace them.
		TLS:       configtls.ClientConfig{Config: configtls.Config{IncludeSystemCACertsPool: true}},
		Dataverse: configoptional.Default(DataverseConfig{RefreshInterval: time.Hour, InitialWait: defaultDataverseInitialWait}),
	}
}

// Validate reports every problem at once, each naming the key and the fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if strings.TrimSpace(c.ApplicationID) == "" {
		add("application_id is required: copy the Application ID from the Application Insights resource's \"API Access\" page in the Azure portal")
	} else if err := appinsights.CheckLiteral("application_id", c.ApplicationID); err != nil {
		errs = append(errs, err)
	}
	if err := azureauth.CheckServiceURL("endpoint", c.Endpoint, "https://api.applicationinsights.io (or the sovereign-cloud equivalent), or leave it unset"); err != nil {
		errs = append(errs, err)
	}
	if len(c.EventNames) == 0 {
		add("event_names is empty: list the customEvents names to fetch, or remove the key for the default message and flow events")
	}
	for i, n := range c.EventNames {
		if strings.TrimSpace(n) == "" {
			add("event_names[%d] is empty: remove it", i)
		} else if err := appinsights.CheckLiteral(fmt.Sprintf("event_names[%d]", i), n); err != nil {
			errs = append(errs, err)
		}
	}
	for i, a := range c.Agents {
		if strings.TrimSpace(a) == "" {
			add("agents[%d] is empty: remove it, or give the agent's name as it appears in cloud_RoleInstance", i)
		} else if err := appinsights.CheckLiteral(fmt.Sprintf("agents[%d]", i), a); err != nil {
			errs = append(errs, err)
		}
	}
	if c.PollInterval < time.Second {
		add("poll_interval %v is too short: use at least 1s (default 10m)", c.PollInterval)
	}
	if c.InitialLookback <= 0 {
		add("initial_lookback %v must be positive (default 24h)", c.InitialLookback)
	}
	if c.IngestionDelay < 0 {
		add("ingestion_delay %v must not be negative (default 3m; ingestion typically lags 20s to 3m)", c.IngestionDelay)
	}
	if c.Overlap < 0 {
		add("overlap %v must not be negative (default 1m)", c.Overlap)
	}
	if c.MaxRowsPerQuery < 1 || c.MaxRowsPerQuery > appinsights.MaxRows {
		add("max_rows_per_query %d is out of range: use 1 to %d (the query API's limit)", c.MaxRowsPerQuery, appinsights.MaxRows)
	}
	if c.MaxBatchSize < 1 || c.MaxBatchSize > appinsights.MaxRows {
		add("max_batch_size %d is out of range: use 1 to %d log records per batch (default %d)", c.MaxBatchSize, appinsights.MaxRows, defaultMaxBatchSize)
	}
	if c.MaxConcurrentBatches < 1 || c.MaxConcurrentBatches > maxConcurrentBatches {
		add("max_concurrent_batches %d is out of range: use 1 to %d batches in the next consumer at once (default 1: one at a time, in order)", c.MaxConcurrentBatches, maxConcurrentBatches)
	}
	if c.ProxyURL != "" {
		if u, err := url.Parse(c.ProxyURL); err != nil || u.Host == "" {
			add("proxy_url %q is not a URL such as http://proxy.internal:3128", c.ProxyURL)
		}
	}
	if c.Timeout <= 0 {
		add("timeout %v must be positive: a stalled answer would hold polling for ever (default 4m; queries run up to 3 minutes)", c.Timeout)
	}
	if c.MaxResponseBytes < minResponseBytes || c.MaxResponseBytes > appinsights.MaxLimitBytes {
		add("max_response_bytes %d is out of range: use %d to %d (default %d; the query API returns at most about 100 MB per result)", c.MaxResponseBytes, minResponseBytes, appinsights.MaxLimitBytes, appinsights.DefaultMaxResponseBytes)
	}
	if c.MaxCellBytes < minCellBytes || int64(c.MaxCellBytes) > max(c.MaxResponseBytes, minResponseBytes) {
		add("max_cell_bytes %d is out of range: use %d to max_response_bytes (default %d)", c.MaxCellBytes, minCellBytes, appinsights.DefaultMaxCellBytes)
	}
	if c.OnUnreadableCursor != UnreadableCursorStop && c.OnUnreadableCursor != UnreadableCursorRestart {
		add("on_unreadable_cursor %q is unknown: use %s (default: Start fails and says what to do) or %s (start again from initial_lookback, knowingly)", c.OnUnreadableCursor, UnreadableCursorStop, UnreadableCursorRestart)
	}
	if err := c.Auth.Validate("auth"); err != nil {
		errs = append(errs, err)
	}
	if dv := c.Dataverse.Get(); dv != nil {
		errs = append(errs, dv.validate(&c.Auth))
	}
	return errors.Join(errs...)
}

func (d *DataverseConfig) validate(receiverAuth *azureauth.Config) error {
	var errs []error
	if u, err := url.Parse(d.URL); d.URL == "" || err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("dataverse.url %q must be the environment's https URL, e.g. https://contoso.crm.dynamics.com (Power Platform admin center > Environments)", d.URL))
	}
	if d.RefreshInterval < time.Minute {
		errs = append(errs, fmt.Errorf("dataverse.refresh_interval %v is too short: use at least 1m (default 1h)", d.RefreshInterval))
	}
	if d.InitialWait < 0 {
		errs = append(errs, fmt.Errorf("dataverse.initial_wait %v must not be negative: use 0 to start polling without waiting for the agent list (default %v)", d.InitialWait, defaultDataverseInitialWait))
	}
	auth := d.credentialConfig(receiverAuth)
	if d.Auth != nil {
		if err := d.Auth.Validate("dataverse.auth"); err != nil {
			errs = append(errs, err)
		}
	}
	if auth.Type == azureauth.APIKey {
		errs = append(errs, errors.New("dataverse needs a Microsoft Entra ID credential, and auth.type is api_key: set dataverse.auth (for example type client_secret)"))
	}
	return errors.Join(errs...)
}

// credentialConfig is dataverse.auth, or the receiver's auth when unset.
func (d *DataverseConfig) credentialConfig(receiverAuth *azureauth.Config) *azureauth.Config {
	if d.Auth != nil {
		return d.Auth
	}
	return receiverAuth
}

// httpClientConfig is the confighttp form of the client settings.
func (c *Config) httpClientConfig() confighttp.ClientConfig {
	hc := confighttp.NewDefaultClientConfig()
	hc.Endpoint = c.Endpoint
	hc.Timeout = c.Timeout
	hc.TLS = c.TLS
	hc.ProxyURL = c.ProxyURL
	return hc
}

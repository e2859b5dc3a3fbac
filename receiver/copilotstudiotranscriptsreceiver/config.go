package copilotstudiotranscriptsreceiver

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
)

const (
	// retention is how long Dataverse keeps transcripts by default (a bulk
	// deletion job admins can change): a look-back beyond it reads nothing more.
	retention = 30 * 24 * time.Hour
	// maxPageSize is Dataverse's own page limit.
	maxPageSize = 5000
	// contentLimit is the content column's limit, 1,048,576 characters:
	// up to 3 bytes each in UTF-8.
	contentLimit = 3 << 20
)

// What Start does with a stored cursor it cannot read (on_unreadable_cursor).
const (
	// UnreadableCursorStop fails Start and says what to do.
	UnreadableCursorStop = "stop"
	// UnreadableCursorRestart starts again from initial_lookback.
	UnreadableCursorRestart = "restart_from_lookback"
)

// Config is the copilotstudio_transcripts receiver's configuration.
type Config struct {
	// URL is the environment, e.g. https://contoso.crm.dynamics.com. The
	// token scope is URL + /.default.
	URL  string           `mapstructure:"url"`
	Auth azureauth.Config `mapstructure:"auth"`
	// Timeout bounds one HTTP request, page or token.
	Timeout time.Duration `mapstructure:"timeout"`
	// TLS and ProxyURL configure the HTTP client, token requests included.
	// tls.ca_file is added to the system roots (include_system_ca_certs_pool
	// is on by default).
	TLS      configtls.ClientConfig `mapstructure:"tls"`
	ProxyURL string                 `mapstructure:"proxy_url"`

	// Agents, when set, reads only these agents' transcripts: bot ids
	// (GUIDs) or schema names (e.g. cr44e_hrAgent). Empty: every agent.
	Agents []string `mapstructure:"agents"`

	PollInterval time.Duration `mapstructure:"poll_interval"`
	// InitialLookback is how far back the first poll reaches when no cursor
	// is stored: at most the 30 days Dataverse keeps transcripts.
	InitialLookback time.Duration `mapstructure:"initial_lookback"`
	// Overlap re-reads this much before the cursor on each poll, for rows
	// committed after a poll passed their createdon; their row ids
	// de-duplicate the repeats.
	Overlap time.Duration `mapstructure:"overlap"`
	// MaxPageSize is sent as Prefer: odata.maxpagesize. A row holds up to
	// 1 MB of content: a page of 50 is up to about 50 MB.
	MaxPageSize int `mapstructure:"max_page_size"`
	// MaxPageBytes bounds one response body.
	MaxPageBytes int64 `mapstructure:"max_page_bytes"`
	// MaxContentBytes bounds one row's content; a larger row is skipped
	// and counted.
	MaxContentBytes int `mapstructure:"max_content_bytes"`
	// AgentsRefreshInterval is how often the agents list (names, schema
	// names, authentication, published state) is read again.
	AgentsRefreshInterval time.Duration `mapstructure:"agents_refresh_interval"`

	// StorageID names a storage extension (e.g. file_storage) that keeps the
	// cursor across restarts. Without it the cursor lives in memory.
	StorageID *component.ID `mapstructure:"storage"`
	// OnUnreadableCursor is what Start does when the stored cursor cannot
	// be read: stop (fail, saying what to do) or restart_from_lookback.
	OnUnreadableCursor string `mapstructure:"on_unreadable_cursor"`

	_ struct{}
}

func createDefaultConfig() component.Config {
	return &Config{
		Timeout:               2 * time.Minute,
		PollInterval:          5 * time.Minute,
		InitialLookback:       24 * time.Hour,
		Overlap:               10 * time.Minute,
		MaxPageSize:           50,
		MaxPageBytes:          512 << 20,
		MaxContentBytes:       contentLimit,
		AgentsRefreshInterval: time.Hour,
		OnUnreadableCursor:    UnreadableCursorStop,
		// tls.ca_file adds a CA to the system's, it does not replace them.
		TLS: configtls.ClientConfig{Config: configtls.Config{IncludeSystemCACertsPool: true}},
	}
}

var guidShape = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// schemaNameShape: a publisher prefix and a name (cr44e_hrAgent).
var schemaNameShape = regexp.MustCompile(`^[A-Za-z0-9]+_[A-Za-z0-9_]+$`)

// Validate reports every problem at once, each naming the key and the fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if u, err := url.Parse(c.URL); c.URL == "" || err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		add("url %q must be the environment's https URL, e.g. https://contoso.crm.dynamics.com (Power Platform admin center > Environments > Environment URL)", c.URL)
	}
	if c.Auth.Type == azureauth.APIKey {
		add("auth.type api_key is not accepted: Dataverse needs a Microsoft Entra ID credential (for example auth.type client_secret)")
	} else if err := c.Auth.Validate("auth"); err != nil {
		errs = append(errs, err)
	}
	for i, a := range c.Agents {
		if !guidShape.MatchString(a) && !schemaNameShape.MatchString(a) {
			add("agents[%d] %q is neither a bot id (a GUID) nor a schema name such as cr44e_hrAgent: copy either from the agent's Dataverse row (bots table), or remove the key to read every agent", i, a)
		}
	}
	if c.PollInterval < time.Second {
		add("poll_interval %v is too short: use at least 1s (default 5m; transcripts are written about 30 minutes after a conversation goes quiet)", c.PollInterval)
	}
	switch {
	case c.InitialLookback <= 0:
		add("initial_lookback %v must be positive (default 24h)", c.InitialLookback)
	case c.InitialLookback > retention:
		add("initial_lookback %v is over 30 days: Dataverse keeps transcripts 30 days by default, so use at most 720h", c.InitialLookback)
	}
	if c.Overlap < 0 {
		add("overlap %v must not be negative (default 10m)", c.Overlap)
	}
	if c.MaxPageSize < 1 || c.MaxPageSize > maxPageSize {
		add("max_page_size %d is out of range: use 1 to %d rows a page (default 50: rows hold up to 1 MB each)", c.MaxPageSize, maxPageSize)
	}
	if c.MaxPageBytes < 1<<20 {
		add("max_page_bytes %d is too small: use at least 1048576 (default 536870912)", c.MaxPageBytes)
	}
	if c.MaxContentBytes < 1024 {
		add("max_content_bytes %d is too small: use at least 1024 (default %d, the content column's limit)", c.MaxContentBytes, contentLimit)
	}
	if c.AgentsRefreshInterval < time.Minute {
		add("agents_refresh_interval %v is too short: use at least 1m (default 1h)", c.AgentsRefreshInterval)
	}
	if c.ProxyURL != "" {
		if u, err := url.Parse(c.ProxyURL); err != nil || u.Host == "" {
			add("proxy_url %q is not a URL such as http://proxy.internal:3128", c.ProxyURL)
		}
	}
	if c.Timeout <= 0 {
		add("timeout %v must be positive: a stalled answer would hold polling for ever (default 2m)", c.Timeout)
	}
	if c.OnUnreadableCursor != UnreadableCursorStop && c.OnUnreadableCursor != UnreadableCursorRestart {
		add("on_unreadable_cursor %q is unknown: use %s (default: Start fails and says what to do) or %s (start again from initial_lookback, knowingly)", c.OnUnreadableCursor, UnreadableCursorStop, UnreadableCursorRestart)
	}
	return errors.Join(errs...)
}

// environment is the URL without a trailing slash.
func (c *Config) environment() string { return strings.TrimSuffix(c.URL, "/") }

// agentIDsAndNames splits Agents into bot ids and schema names.
func (c *Config) agentIDsAndNames() (ids, names []string) {
	for _, a := range c.Agents {
		if guidShape.MatchString(a) {
			ids = append(ids, strings.ToLower(a))
		} else {
			names = append(names, a)
		}
	}
	return ids, names
}

func (c *Config) httpClientConfig() confighttp.ClientConfig {
	hc := confighttp.NewDefaultClientConfig()
	hc.Endpoint = c.URL
	hc.Timeout = c.Timeout
	hc.TLS = c.TLS
	hc.ProxyURL = c.ProxyURL
	return hc
}

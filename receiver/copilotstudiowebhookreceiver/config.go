package copilotstudiowebhookreceiver

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configtls"
)

const (
	defaultEndpoint = "localhost:8443"
	// defaultAnswerDeadline: Copilot Studio waits less than 1,000 ms for an
	// answer, network and TLS included, then treats the call as allowed (or,
	// with "Block the query" as error behaviour, blocks it). 300 ms leaves 700
	// ms for the round trip and Copilot Studio's own overhead, while a
	// persistent queue's fsync (a few ms) fits many times over.
	defaultAnswerDeadline = 300 * time.Millisecond
	// maxAnswerDeadline: past it the answer would miss Copilot Studio's budget
	// even over a perfect network.
	maxAnswerDeadline = 900 * time.Millisecond
	// defaultMaxRequestBodySize: the payload has no documented limit; chat
	// history and earlier tool outputs (file contents) are what makes it
	// large. 4 MiB is far above what a tool call carries and keeps one stuck
	// record's memory bounded.
	defaultMaxRequestBodySize = 4 << 20
	// defaultMaxPendingRecords bounds the records held in the pipeline at once
	// (about a few KB each): a pipeline that stops taking records costs this
	// many records of memory, not one per call for as long as it lasts.
	defaultMaxPendingRecords = 1000
	// defaultReadTimeout bounds reading one request, headers and body:
	// Copilot Studio sends at once and gives up after 1 s, and a public
	// endpoint should not let slow senders hold connections for a minute.
	defaultReadTimeout = 10 * time.Second

	defaultAuthorityHost = "https://login.microsoftonline.com/"
	// Entra ID signs with a small set of keys and announces a new one weeks
	// before it signs with it; reading the keys hourly finds it long before.
	defaultKeysRefreshInterval = time.Hour
	// defaultUnknownKeyCooldown: a token with an unknown key id makes the
	// receiver read the keys again at once, but at most once per cooldown, so
	// a caller sending made-up key ids cannot make it hammer Entra ID.
	defaultUnknownKeyCooldown = 5 * time.Minute
	defaultClockSkew          = time.Minute
	defaultEntraTimeout       = 5 * time.Second
)

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Config is the copilotstudiowebhook receiver's configuration.
type Config struct {
	// ServerConfig: endpoint, tls, max_request_body_size, read/write
	// timeouts, ... of the HTTPS server Copilot Studio calls. A named field,
	// not an embedded one: embedded, its Unmarshal method would become the
	// whole config's and leave the other keys unread.
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`

	// BasePath is the path of the "Endpoint link" entered in the Power
	// Platform admin center; the receiver serves {base_path}/validate and
	// {base_path}/analyze-tool-execution.
	BasePath string `mapstructure:"base_path"`

	// AnswerDeadline is how long an analyze call waits for the pipeline to
	// accept its record before it is answered anyway.
	AnswerDeadline time.Duration `mapstructure:"answer_deadline"`

	// MaxPendingRecords bounds the records in the pipeline at once; a call
	// arriving while that many are pending is still allowed, but its record
	// is not passed on (counted as overloaded).
	MaxPendingRecords int `mapstructure:"max_pending_records"`

	// EntraID is how bearer tokens are checked.
	EntraID EntraIDConfig `mapstructure:"entra_id"`

	_ struct{}
}

// EntraIDConfig says which Microsoft Entra ID tokens are accepted.
type EntraIDConfig struct {
	// TenantIDs are the tenants whose tokens are accepted (the tenant of the
	// app registration Copilot Studio federates into).
	TenantIDs []string `mapstructure:"tenant_ids"`
	// Audiences accepted in aud: the Application ID URI (the endpoint's base
	// URL) and/or the app's client id.
	Audiences []string `mapstructure:"audiences"`
	// AppIDs accepted in appid (v1 tokens) or azp (v2): the app registration
	// entered as "Azure Entra App ID" in the Power Platform admin center.
	AppIDs []string `mapstructure:"app_ids"`
	// AuthorityHost is where OIDC discovery is read from (sovereign clouds,
	// tests); empty means the public cloud's.
	AuthorityHost string `mapstructure:"authority_host"`
	// TLS for the discovery and keys requests (ca_file for a private
	// authority, added to the system roots: include_system_ca_certs_pool is
	// on by default).
	TLS configtls.ClientConfig `mapstructure:"tls"`
	// ClockSkew is the leeway on exp, nbf and iat.
	ClockSkew time.Duration `mapstructure:"clock_skew"`
	// KeysRefreshInterval is how often the signing keys are read again.
	KeysRefreshInterval time.Duration `mapstructure:"keys_refresh_interval"`
	// UnknownKeyCooldown is the least time between two key reads caused by
	// tokens with an unknown key id.
	UnknownKeyCooldown time.Duration `mapstructure:"unknown_key_cooldown"`
	// Timeout bounds one discovery or keys request.
	Timeout time.Duration `mapstructure:"timeout"`

	_ struct{}
}

func createDefaultConfig() *Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultEndpoint
	server.MaxRequestBodySize = defaultMaxRequestBodySize
	server.ReadHeaderTimeout = defaultReadTimeout
	server.ReadTimeout = defaultReadTimeout
	return &Config{
		ServerConfig:      server,
		AnswerDeadline:    defaultAnswerDeadline,
		MaxPendingRecords: defaultMaxPendingRecords,
		EntraID: EntraIDConfig{
			AuthorityHost: defaultAuthorityHost,
			// tls.ca_file adds a CA to the system's, it does not replace them.
			TLS:                 configtls.ClientConfig{Config: configtls.Config{IncludeSystemCACertsPool: true}},
			ClockSkew:           defaultClockSkew,
			KeysRefreshInterval: defaultKeysRefreshInterval,
			UnknownKeyCooldown:  defaultUnknownKeyCooldown,
			Timeout:             defaultEntraTimeout,
		},
	}
}

// Validate reports every problem at once, each naming the key and the fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if strings.TrimSpace(c.ServerConfig.NetAddr.Endpoint) == "" {
		add("endpoint is empty: give the host:port to listen on, e.g. 0.0.0.0:8443")
	}
	if c.BasePath != "" && (!strings.HasPrefix(c.BasePath, "/") || strings.ContainsAny(c.BasePath, "?#")) {
		add("base_path %q must be a URL path starting with / (the path of the Endpoint link, e.g. /api/agentSecurity), without query or fragment", c.BasePath)
	}
	if c.AnswerDeadline <= 0 || c.AnswerDeadline > maxAnswerDeadline {
		add("answer_deadline %v is out of range: use more than 0 and at most %v (Copilot Studio waits less than 1s, network included; default %v)", c.AnswerDeadline, maxAnswerDeadline, defaultAnswerDeadline)
	}
	if c.ServerConfig.ReadTimeout <= 0 {
		add("read_timeout %v must be positive: a caller sending slowly would hold a connection for ever (default %v)", c.ServerConfig.ReadTimeout, defaultReadTimeout)
	}
	if c.MaxPendingRecords < 1 {
		add("max_pending_records %d must be at least 1 (default %d)", c.MaxPendingRecords, defaultMaxPendingRecords)
	}
	errs = append(errs, c.EntraID.validate())
	return errors.Join(errs...)
}

func (e *EntraIDConfig) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(e.TenantIDs) == 0 {
		add("entra_id.tenant_ids is empty: list the Directory (tenant) ID of the tenant holding the app registration Copilot Studio uses")
	}
	for i, t := range e.TenantIDs {
		if !guidPattern.MatchString(t) {
			add("entra_id.tenant_ids[%d] %q is not a tenant id: use the Directory (tenant) ID GUID from Microsoft Entra ID > Overview (not a domain name, common or organizations)", i, t)
		}
	}
	if len(e.Audiences) == 0 {
		add("entra_id.audiences is empty: list the app registration's Application ID URI (the endpoint's base URL as entered in the Power Platform admin center) and/or its Application (client) ID")
	}
	for i, a := range e.Audiences {
		if strings.TrimSpace(a) == "" {
			add("entra_id.audiences[%d] is empty: remove it", i)
		}
	}
	if len(e.AppIDs) == 0 {
		add("entra_id.app_ids is empty: list the Application (client) ID entered as \"Azure Entra App ID\" in the Power Platform admin center")
	}
	for i, a := range e.AppIDs {
		if !guidPattern.MatchString(a) {
			add("entra_id.app_ids[%d] %q is not an application id: use the Application (client) ID GUID of the app registration", i, a)
		}
	}
	if u, err := url.Parse(e.AuthorityHost); e.AuthorityHost != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
		add("entra_id.authority_host %q is not an https URL: use https://login.microsoftonline.com/ (default, also when empty) or your cloud's authority, e.g. https://login.microsoftonline.us/", e.AuthorityHost)
	}
	if e.ClockSkew < 0 || e.ClockSkew > 5*time.Minute {
		add("entra_id.clock_skew %v is out of range: use 0 to 5m (default %v)", e.ClockSkew, defaultClockSkew)
	}
	if e.KeysRefreshInterval < time.Minute {
		add("entra_id.keys_refresh_interval %v is too short: use at least 1m (default %v)", e.KeysRefreshInterval, defaultKeysRefreshInterval)
	}
	if e.Timeout <= 0 {
		add("entra_id.timeout %v must be positive (default %v)", e.Timeout, defaultEntraTimeout)
	}
	// A call never waits for the cooldown: it must be longer than the one
	// key read it bounds (see authenticator.keys).
	if e.UnknownKeyCooldown <= e.Timeout {
		add("entra_id.unknown_key_cooldown %v must be longer than entra_id.timeout %v (default %v)", e.UnknownKeyCooldown, e.Timeout, defaultUnknownKeyCooldown)
	}
	return errors.Join(errs...)
}

// authorityHost is authority_host, or the public cloud's when empty.
func (e *EntraIDConfig) authorityHost() string {
	if e.AuthorityHost == "" {
		return defaultAuthorityHost
	}
	return e.AuthorityHost
}

// paths are the two endpoints under base_path.
func (c *Config) paths() (validate, analyze string) {
	base := strings.TrimRight(c.BasePath, "/")
	return base + "/validate", base + "/analyze-tool-execution"
}

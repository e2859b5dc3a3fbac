package aktoexporter

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// The ingestion service's limits (shared/reference/akto-traffic-format.md)
// and what Akto's own connectors send per request.
const (
	serviceMaxRequestBytes   = 10 << 20
	serviceMaxStringBytes    = 5 << 20
	defaultRecordsPerRequest = 50
)

// ingestPath is appended to the endpoint.
const ingestPath = "/api/ingestData"

// Config is the akto exporter's configuration.
type Config struct {
	// ClientConfig is the HTTP client: endpoint (the service's base URL,
	// without /api/ingestData), tls, proxy_url, timeout (of one request),
	// headers, and the rest of confighttp's client settings. A named field:
	// embedded, its Unmarshal method would become Config's and decode only
	// the client's keys.
	ClientConfig confighttp.ClientConfig `mapstructure:",squash"`

	// Token is sent as is in the authorization header (no Bearer prefix),
	// where the service enforces authentication; empty sends no header.
	Token configopaque.String `mapstructure:"token"`

	// MaxRecordsPerRequest is how many records one request carries at most.
	MaxRecordsPerRequest int `mapstructure:"max_records_per_request"`

	// MaxRequestBytes bounds a request body; MaxStringBytes bounds each
	// string field of a record (its decoded UTF-8 bytes). A record that
	// alone breaks either is dropped and counted.
	MaxRequestBytes int `mapstructure:"max_request_bytes"`
	MaxStringBytes  int `mapstructure:"max_string_bytes"`

	// RefusedRecordRetries is how many more times a record the service
	// refuses on its own is sent again before it is dropped, when the
	// service accepted nothing else meanwhile: the service also answers 422
	// when it cannot write to its own Kafka, and then refuses every record.
	// A record refused while others are accepted is dropped at once. With
	// the default backoff, 10 retries take about two minutes.
	RefusedRecordRetries int `mapstructure:"refused_record_retries"`

	// QueueBatchConfig is exporterhelper's sending_queue: give it storage
	// (file_storage) so that records survive a crash.
	QueueBatchConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// BackOffConfig is exporterhelper's retry_on_failure.
	BackOffConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`

	_ struct{}
}

func createDefaultConfig() *Config {
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = 30 * time.Second

	queue := exporterhelper.NewDefaultQueueConfig()
	queue.Sizer = exporterhelper.RequestSizerTypeItems
	queue.QueueSize = 10000
	queue.BlockOnOverflow = true
	// One sender keeps the records of a conversation in order.
	queue.NumConsumers = 1
	queue.Batch = configoptional.Some(exporterhelper.BatchConfig{
		FlushTimeout: time.Second,
		Sizer:        exporterhelper.RequestSizerTypeItems,
		MinSize:      defaultRecordsPerRequest,
		MaxSize:      500,
	})

	retry := configretry.NewDefaultBackOffConfig()
	retry.InitialInterval = time.Second
	retry.MaxInterval = 30 * time.Second
	// Never give up: an outage or a bad token backs up into the queue
	// instead of dropping records after the default 5 minutes.
	retry.MaxElapsedTime = 0

	return &Config{
		ClientConfig:         client,
		MaxRecordsPerRequest: defaultRecordsPerRequest,
		MaxRequestBytes:      serviceMaxRequestBytes,
		MaxStringBytes:       serviceMaxStringBytes,
		RefusedRecordRetries: 10,
		QueueBatchConfig:     configoptional.Some(queue),
		BackOffConfig:        retry,
	}
}

// minRequestBytes leaves room for the envelope and a small record.
const minRequestBytes = 1 << 10

// Validate reports every problem at once, each naming the key and the fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch u, err := url.Parse(c.ClientConfig.Endpoint); {
	case strings.TrimSpace(c.ClientConfig.Endpoint) == "":
		add("endpoint is empty: give the data ingestion service's URL, e.g. https://akto-ingest.example.com (AKTO_INGESTION_URL)")
	case err != nil:
		add("endpoint %q is not a URL (%v): give the data ingestion service's URL, e.g. https://akto-ingest.example.com", c.ClientConfig.Endpoint, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		add("endpoint %q must be an http:// or https:// URL with a host, e.g. https://akto-ingest.example.com", c.ClientConfig.Endpoint)
	case strings.HasSuffix(strings.TrimRight(u.Path, "/"), ingestPath):
		add("endpoint %q ends in %s, which the exporter adds itself: give the service's base URL", c.ClientConfig.Endpoint, ingestPath)
	case u.RawQuery != "" || u.Fragment != "":
		add("endpoint %q has a query or fragment: give the service's base URL only", c.ClientConfig.Endpoint)
	}
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(string(c.Token))), "bearer ") {
		add("token starts with \"Bearer \": the service expects the token as is in the authorization header; remove the prefix")
	}
	if c.MaxRecordsPerRequest < 1 {
		add("max_records_per_request %d must be at least 1 (default %d, what Akto's own connectors send)", c.MaxRecordsPerRequest, defaultRecordsPerRequest)
	}
	if c.MaxRequestBytes < minRequestBytes || c.MaxRequestBytes > serviceMaxRequestBytes {
		add("max_request_bytes %d must be between %d and %d (the service's 10 MiB limit, the default)", c.MaxRequestBytes, minRequestBytes, serviceMaxRequestBytes)
	}
	if c.MaxStringBytes < 1 || c.MaxStringBytes > serviceMaxStringBytes {
		add("max_string_bytes %d must be between 1 and %d (the service's 5 MiB limit, the default)", c.MaxStringBytes, serviceMaxStringBytes)
	}
	if c.RefusedRecordRetries < 0 {
		add("refused_record_retries %d must not be negative (default 10; 0 drops a record the first time the service refuses it alone)", c.RefusedRecordRetries)
	}
	if c.ClientConfig.Timeout < 0 {
		add("timeout %v must not be negative (default 30s; 0 waits without limit, which can hold the queue forever)", c.ClientConfig.Timeout)
	}
	return errors.Join(errs...)
}

package aktoexporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/exporter/aktoexporter/internal/metadata"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/logcap"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/retryafter"
)

// Drop reasons (the reason attribute of akto_exporter_records_dropped).
const (
	reasonInvalidBody = "invalid_body"
	reasonTooLarge    = "too_large"
	reasonRefused     = "refused"
)

// maxLoggedPerCall caps the per-record warnings of one call (logcap).
const maxLoggedPerCall = 20

// maxTrackedRefusals bounds the memory of records refused on their own.
const maxTrackedRefusals = 10000

type aktoExporter struct {
	cfg       *Config
	set       exporter.Settings
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	url       string
	client    *http.Client

	droppedBy map[string]metric.AddOption
	requestOf map[string]metric.AddOption

	bodies sync.Pool // *bytes.Buffer, one request body at a time per call

	mu       sync.Mutex
	seed     maphash.Seed
	refusals map[uint64]int // record hash -> times refused alone while nothing else was accepted
}

func newExporter(set exporter.Settings, cfg *Config) (*aktoExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &aktoExporter{
		cfg: cfg, set: set, logger: set.Logger, telemetry: tb,
		url:       strings.TrimRight(cfg.ClientConfig.Endpoint, "/") + ingestPath,
		droppedBy: map[string]metric.AddOption{},
		requestOf: map[string]metric.AddOption{},
		seed:      maphash.MakeSeed(),
		refusals:  map[uint64]int{},
	}
	for _, r := range []string{reasonInvalidBody, reasonTooLarge, reasonRefused} {
		e.droppedBy[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	for _, c := range []string{"2xx", "3xx", "4xx", "5xx", "no_response"} {
		e.requestOf[c] = metric.WithAttributeSet(attribute.NewSet(attribute.String("status_class", c)))
	}
	e.bodies.New = func() any { return new(bytes.Buffer) }
	return e, nil
}

func (e *aktoExporter) start(ctx context.Context, host component.Host) error {
	client, err := e.cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), e.set.TelemetrySettings)
	if err != nil {
		return err
	}
	e.client = client
	return nil
}

func (e *aktoExporter) shutdown(context.Context) error {
	if e.client != nil {
		e.client.CloseIdleConnections()
	}
	e.telemetry.Shutdown()
	return nil
}

// record is one log record's Akto traffic record.
type record struct {
	json   []byte
	turnID string
	index  int // among the call's log records, in iteration order
}

// call is one pushLogs: its records, which of them are done (accepted or
// dropped), and what the service said.
type call struct {
	e        *aktoExporter
	records  []record
	done     []bool // by log record index
	log      *logcap.Logger
	body     *bytes.Buffer
	accepted bool      // the service accepted some request of this call
	alone    []refusal // records refused on their own, judged at the end
}

type refusal struct {
	rec    record
	status int
	answer string
}

// pushLogs sends ld's records in requests of at most max_records_per_request
// records and max_request_bytes. A retryable failure returns the records not
// yet accepted or dropped (consumererror.Logs), so a retry never sends again
// what the service already took.
func (e *aktoExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	c := e.newCall(ld)
	defer func() {
		c.log.EndRound("more records were dropped in this call; see otelcol_akto_exporter_records_dropped")
		c.body.Reset()
		e.bodies.Put(c.body)
	}()
	err := c.sendAll(ctx)
	if err == nil {
		return nil
	}
	return consumererror.NewLogs(err, c.remaining(ld))
}

// newCall reads the records out of ld, dropping (logged, counted) each that
// cannot be sent: a body that is not a JSON object, or one over the limits.
func (e *aktoExporter) newCall(ld plog.Logs) *call {
	n := ld.LogRecordCount()
	c := &call{
		e: e, records: make([]record, 0, n), done: make([]bool, n),
		log: logcap.New(e.logger, maxLoggedPerCall), body: e.bodies.Get().(*bytes.Buffer),
	}
	i := 0
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				rec := record{turnID: turnIDOf(lr), index: i}
				i++
				raw, problem := recordJSON(lr)
				if problem != "" {
					c.drop(rec, reasonInvalidBody, "akto exporter: log record body is not an Akto traffic record (a JSON object); dropped", zap.String("problem", problem))
					continue
				}
				rec.json = raw
				if reason := e.overLimits(raw); reason != "" {
					c.drop(rec, reasonTooLarge, "akto exporter: record is over the ingestion service's limits; dropped", zap.String("problem", reason), zap.Int("bytes", len(raw)))
					continue
				}
				c.records = append(c.records, rec)
			}
		}
	}
	return c
}

// envelope is what a request body adds around its records.
var (
	envelopeStart = []byte(`{"batchData":[`)
	envelopeEnd   = []byte(`]}`)
)

const envelopeBytes = 14 + 2 // len(envelopeStart) + len(envelopeEnd)

// overLimits says why raw cannot go in any request, or "".
func (e *aktoExporter) overLimits(raw []byte) string {
	if envelopeBytes+len(raw) > e.cfg.MaxRequestBytes {
		return fmt.Sprintf("%d bytes with the request's envelope, over max_request_bytes %d", envelopeBytes+len(raw), e.cfg.MaxRequestBytes)
	}
	// A decoded string is never longer than its encoding: only a record
	// longer than the limit needs a look at its strings.
	if len(raw) > e.cfg.MaxStringBytes {
		if longest := longestString(raw); longest > e.cfg.MaxStringBytes {
			return fmt.Sprintf("a string of %d bytes, over max_string_bytes %d", longest, e.cfg.MaxStringBytes)
		}
	}
	return ""
}

func (c *call) drop(rec record, reason, msg string, fields ...zap.Field) {
	c.done[rec.index] = true
	c.e.telemetry.AktoExporterRecordsDropped.Add(context.Background(), 1, c.e.droppedBy[reason])
	c.log.Warn(msg, append([]zap.Field{zap.String("turn_id", orNone(rec.turnID)), zap.String("reason", reason)}, fields...)...)
}

// sendAll sends every record, in order, in requests within the limits.
func (c *call) sendAll(ctx context.Context) error {
	var err error
	for start := 0; start < len(c.records) && err == nil; {
		end := c.chunkEnd(start)
		err = c.send(ctx, c.records[start:end])
		start = end
	}
	if judged := c.judgeRefusals(); judged != nil && (err == nil || errors.Is(err, errRefusingAll)) {
		err = judged
	}
	return err
}

// chunkEnd is the end of the request starting at start: as many records as
// fit max_records_per_request and max_request_bytes (always at least one:
// newCall dropped every record that fits no request).
func (c *call) chunkEnd(start int) int {
	size := envelopeBytes
	end := start
	for end < len(c.records) && end-start < c.e.cfg.MaxRecordsPerRequest {
		add := len(c.records[end].json)
		if end > start {
			add++ // the comma
		}
		if end > start && size+add > c.e.cfg.MaxRequestBytes {
			break
		}
		size += add
		end++
	}
	return end
}

// send posts recs. A batch the service refuses (400, 413, 422) is split in
// halves until the record it refuses is found alone; any other failure is
// returned for exporterhelper to retry.
func (c *call) send(ctx context.Context, recs []record) error {
	status, answer, err := c.post(ctx, recs)
	if err != nil {
		return err
	}
	if status/100 == 2 {
		c.accepted = true
		c.e.telemetry.AktoExporterRecordsSent.Add(ctx, int64(len(recs)))
		c.e.forget(recs)
		for _, r := range recs {
			c.done[r.index] = true
		}
		return nil
	}
	if len(recs) > 1 {
		mid := len(recs) / 2
		if err := c.send(ctx, recs[:mid]); err != nil {
			return err
		}
		return c.send(ctx, recs[mid:])
	}
	c.alone = append(c.alone, refusal{rec: recs[0], status: status, answer: answer})
	if !c.accepted && len(c.alone) >= 2 {
		// Two records refused alone and none accepted: likely the service
		// refusing everything. Splitting on would cost two requests per
		// record; stop here and let the retry come back later.
		return errRefusingAll
	}
	return nil
}

// errRefusingAll ends a call whose records the service refuses one by one.
var errRefusingAll = errors.New("the ingestion service refuses every record sent on its own")

// judgeRefusals drops the records the service refused on their own when it
// accepted others in this call: then it is the record, not the service. If
// it accepted nothing, the service may be failing as a whole (it answers
// 422 when it cannot write to its Kafka): such records are sent again,
// up to refused_record_retries times, before they are dropped.
func (c *call) judgeRefusals() error {
	if len(c.alone) == 0 {
		return nil
	}
	kept := 0
	for _, r := range c.alone {
		tries := c.e.refusedAgain(r.rec)
		if c.accepted || tries > c.e.cfg.RefusedRecordRetries {
			c.drop(r.rec, reasonRefused, "akto exporter: the ingestion service refused this record; dropped",
				zap.Int("status", r.status), zap.String("answer", r.answer), zap.Int("bytes", len(r.rec.json)), zap.Int("refusals", tries))
			c.e.forgetOne(r.rec)
			continue
		}
		kept++
	}
	if kept == 0 {
		return nil
	}
	r := c.alone[0]
	return fmt.Errorf("the ingestion service refused %d record(s) on their own (HTTP %d, e.g. turn %s) and accepted nothing else; "+
		"sent again in case the service itself is failing (refused_record_retries %d)", kept, r.status, orNone(r.rec.turnID), c.e.cfg.RefusedRecordRetries)
}

// post sends one request. It returns the status of an answer the exporter
// acts on itself (2xx, or a batch the service refused: 400, 413, 422) with
// a short excerpt of its body, or an error to retry.
func (c *call) post(ctx context.Context, recs []record) (int, string, error) {
	e := c.e
	b := c.body
	b.Reset()
	b.Write(envelopeStart)
	for i, r := range recs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(r.json)
	}
	b.Write(envelopeEnd)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(b.Bytes()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if e.cfg.Token != "" {
		req.Header.Set("authorization", string(e.cfg.Token))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.telemetry.AktoExporterRequests.Add(ctx, 1, e.requestOf["no_response"])
		return 0, "", fmt.Errorf("no answer from the ingestion service at %s: %w", e.url, err)
	}
	answer := readAnswer(resp)
	status := resp.StatusCode
	e.telemetry.AktoExporterRequests.Add(ctx, 1, e.requestOf[statusClass(status)])

	switch {
	case status/100 == 2:
		// The service's "success" field is never set: the status is the answer.
		return status, "", nil
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnprocessableEntity:
		return status, answer, nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.logger.Error("akto exporter: "+e.authAdvice(status)+"; records wait in the queue and are sent once the service accepts the token",
			zap.Int("status", status), zap.String("url", e.url))
		return 0, "", fmt.Errorf("HTTP %d from %s: token refused", status, e.url)
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		e.logger.Error("akto exporter: no data ingestion service at this URL: check endpoint (AKTO_INGESTION_URL) is the service's base URL, without "+ingestPath+"; records wait in the queue",
			zap.Int("status", status), zap.String("url", e.url))
		return 0, "", fmt.Errorf("HTTP %d from %s", status, e.url)
	}
	err = fmt.Errorf("HTTP %d from %s: %s", status, e.url, answer)
	if delay, ok := retryafter.Parse(resp.Header.Get("Retry-After"), time.Now()); ok {
		return 0, "", exporterhelper.NewThrottleRetry(err, delay)
	}
	return 0, "", err
}

// authAdvice says what to check after a 401 or 403.
func (e *aktoExporter) authAdvice(status int) string {
	if e.cfg.Token == "" {
		return fmt.Sprintf("the data ingestion service requires a token (HTTP %d) and none is configured: set token (AKTO_INGESTION_TOKEN with collector-config.akto-http.yaml) to the service's", status)
	}
	return fmt.Sprintf("the data ingestion service refused the token (HTTP %d): check token (AKTO_INGESTION_TOKEN with collector-config.akto-http.yaml) against the token the service expects, sent as is with no Bearer prefix, and that it was not revoked", status)
}

// remaining is ld without the records that are done, for the retry.
func (c *call) remaining(ld plog.Logs) plog.Logs {
	out := plog.NewLogs()
	ld.CopyTo(out)
	i := 0
	out.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			sl.LogRecords().RemoveIf(func(plog.LogRecord) bool {
				done := c.done[i]
				i++
				return done
			})
			return sl.LogRecords().Len() == 0
		})
		return rl.ScopeLogs().Len() == 0
	})
	return out
}

// refusedAgain counts a refusal of rec on its own and returns how many
// there have been since it was last accepted or dropped.
func (e *aktoExporter) refusedAgain(rec record) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.refusals) >= maxTrackedRefusals {
		clear(e.refusals)
	}
	h := maphash.Bytes(e.seed, rec.json)
	e.refusals[h]++
	return e.refusals[h]
}

func (e *aktoExporter) forgetOne(rec record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.refusals, maphash.Bytes(e.seed, rec.json))
}

// forget clears what is remembered of accepted records (cheap when nothing is).
func (e *aktoExporter) forget(recs []record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.refusals) == 0 {
		return
	}
	for _, r := range recs {
		delete(e.refusals, maphash.Bytes(e.seed, r.json))
	}
}

// readAnswer reads a short excerpt of the answer for messages and discards
// the rest, so the connection can be reused.
func readAnswer(resp *http.Response) string {
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return strings.TrimSpace(strings.ToValidUTF8(string(excerpt), "?"))
}

func statusClass(status int) string {
	switch status / 100 {
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	default:
		return "5xx"
	}
}

func orNone(turnID string) string {
	if turnID == "" {
		return "(none)"
	}
	return turnID
}

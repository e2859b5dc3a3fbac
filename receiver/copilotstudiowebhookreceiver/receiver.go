package copilotstudiowebhookreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/logcap"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiowebhookreceiver/internal/metadata"
)

// Endpoints (attribute "endpoint").
const (
	endpointValidate = "validate"
	endpointAnalyze  = "analyze_tool_execution"
)

// How a call was answered (attribute "outcome"). The record outcomes are
// also the value of RecordHeader.
const (
	outcomeAccepted        = "accepted"   // the pipeline took the record, then the call was answered
	outcomeDeadline        = "deadline"   // answered at answer_deadline; the pipeline still has the record
	outcomeRefused         = "refused"    // the pipeline refused the record: lost
	outcomeOverloaded      = "overloaded" // max_pending_records reached: record not passed on, lost
	outcomeUnauthenticated = "unauthenticated"
	outcomeUnavailable     = "unavailable"
	outcomeBadRequest      = "bad_request"
)

// Results of a record answered at the deadline (attribute "result").
const (
	lateAccepted  = "accepted"
	lateRefused   = "refused"
	lateAbandoned = "abandoned"
)

const (
	// knownAPIVersion is the only api-version documented; any other is served
	// the same way and logged once per value.
	knownAPIVersion      = "2025-05-01"
	maxLoggedAPIVersions = 32

	// RecordHeader is a response header saying what became of an analyze
	// call's record: accepted, deadline, refused or overloaded. Copilot Studio
	// ignores it; tests and operators read it (only "accepted" means the
	// record was in the pipeline's hands, on disk with the shipped one, when
	// the call was answered).
	RecordHeader = "Otelcol-Record"

	// logLinesPerMinute caps each kind of per-call warning (refused tokens,
	// unreadable bodies, records the pipeline did not take).
	logLinesPerMinute = 20

	// defaultShutdownGrace is how long shutdown waits for records still in
	// the pipeline before cancelling them, and again for them to return.
	defaultShutdownGrace = 5 * time.Second
)

var (
	allowAnswer    = []byte(`{"blockAction":false}`)
	validateAnswer = []byte(`{"isSuccessful":true,"status":"OK"}`)
)

type webhookReceiver struct {
	cfg       *Config
	set       receiver.Settings
	next      consumer.Logs
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	obsrecv   *receiverhelper.ObsReport
	clock     clock.Clock
	auth      *authenticator

	validatePath, analyzePath string
	callAttrs                 map[[2]string]metric.AddOption
	endpointAttrs             map[string]metric.RecordOption

	server *http.Server
	addr   net.Addr // where it listens (tests)

	// slots holds one token per record in the pipeline (max_pending_records).
	slots chan struct{}
	// consumeCtx is the context of every ConsumeLogs call: not the request's,
	// so a record answered at the deadline stays in the pipeline's hands
	// when Copilot Studio hangs up. Cancelled only when shutdown gives up.
	consumeCtx    context.Context
	cancelConsume context.CancelFunc
	pending       sync.WaitGroup
	shutdownGrace time.Duration

	stop         chan struct{}
	background   sync.WaitGroup
	shutdownOnce sync.Once

	authLog, inputLog, pipelineLog *logcap.Logger
	apiVersions                    versionLog
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*webhookReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	consumeCtx, cancel := context.WithCancel(context.Background())
	validatePath, analyzePath := cfg.paths()
	r := &webhookReceiver{
		cfg: cfg, set: set, next: next, logger: set.Logger, telemetry: tb, obsrecv: obsrecv,
		clock: clock.System, validatePath: validatePath, analyzePath: analyzePath,
		callAttrs: map[[2]string]metric.AddOption{}, endpointAttrs: map[string]metric.RecordOption{},
		slots:      make(chan struct{}, cfg.MaxPendingRecords),
		consumeCtx: consumeCtx, cancelConsume: cancel, shutdownGrace: defaultShutdownGrace,
		stop:        make(chan struct{}),
		authLog:     logcap.New(set.Logger, logLinesPerMinute),
		inputLog:    logcap.New(set.Logger, logLinesPerMinute),
		pipelineLog: logcap.New(set.Logger, logLinesPerMinute),
		apiVersions: versionLog{seen: map[string]bool{}},
	}
	r.auth = newAuthenticator(&cfg.EntraID, set.Logger, r.clock)
	for _, e := range []string{endpointValidate, endpointAnalyze} {
		r.endpointAttrs[e] = metric.WithAttributeSet(attribute.NewSet(attribute.String("endpoint", e)))
		for _, o := range []string{outcomeAccepted, outcomeDeadline, outcomeRefused, outcomeOverloaded, outcomeUnauthenticated, outcomeUnavailable, outcomeBadRequest} {
			r.callAttrs[[2]string{e, o}] = metric.WithAttributeSet(attribute.NewSet(attribute.String("endpoint", e), attribute.String("outcome", o)))
		}
	}
	return r, nil
}

func (r *webhookReceiver) Start(ctx context.Context, host component.Host) error {
	r.warnInsecure()
	ln, err := r.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", r.cfg.ServerConfig.NetAddr.Endpoint, err)
	}
	r.server, err = r.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, r, confighttp.WithErrorHandler(r.transportError))
	if err != nil {
		_ = ln.Close()
		return err
	}
	if err := r.auth.start(ctx); err != nil {
		_ = ln.Close()
		return err
	}
	r.addr = ln.Addr()
	r.background.Add(2)
	go func() {
		defer r.background.Done()
		if err := r.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	go r.logRounds()
	r.logger.Info("serving Copilot Studio's threat detection calls (observe mode: every call is allowed)",
		zap.String("endpoint", r.cfg.ServerConfig.NetAddr.Endpoint), zap.String("validate", r.validatePath), zap.String("analyze", r.analyzePath))
	return nil
}

// warnInsecure says at start what the configuration leaves unprotected:
// tokens and tool calls in clear on the network, or Entra ID's keys read
// without checking whose they are.
func (r *webhookReceiver) warnInsecure() {
	if !r.cfg.ServerConfig.TLS.HasValue() {
		endpoint := r.cfg.ServerConfig.NetAddr.Endpoint
		host, _, err := net.SplitHostPort(endpoint)
		if err != nil || !azureauth.IsLoopback(host) {
			r.logger.Warn("serving plain HTTP on a non-loopback endpoint: bearer tokens and tool calls (user messages, arguments) cross the network in clear; set tls (cert_file, key_file), unless a proxy in front of the collector terminates TLS and reaches it over a trusted network",
				zap.String("endpoint", endpoint))
		}
	}
	if r.cfg.EntraID.TLS.InsecureSkipVerify {
		r.logger.Warn("entra_id.tls.insecure_skip_verify is true: Entra ID's discovery and signing keys are read without checking its certificate, so whoever can answer in its place can make the receiver accept forged tokens; set entra_id.tls.ca_file for a private CA instead")
	}
}

func (r *webhookReceiver) Shutdown(ctx context.Context) error {
	var err error
	r.shutdownOnce.Do(func() {
		if r.server != nil {
			// Stops listening and waits for the calls being answered: each
			// is answered within answer_deadline of its body being read.
			err = r.server.Shutdown(ctx)
			close(r.stop)
		}
		r.waitForPending(ctx)
		r.cancelConsume()
		r.auth.shutdown()
		r.background.Wait()
		r.telemetry.Shutdown()
	})
	return err
}

// waitForPending lets the records still in the pipeline (answered at the
// deadline) get there: the stages after a receiver shut down after it. A
// pipeline that does not take them within defaultShutdownGrace (a full queue
// waiting for Kafka) has their context cancelled; they are then counted as
// abandoned.
func (r *webhookReceiver) waitForPending(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		r.pending.Wait()
		close(done)
	}()
	wait := func() bool {
		t := time.NewTimer(r.shutdownGrace)
		defer t.Stop()
		select {
		case <-done:
			return true
		case <-ctx.Done():
		case <-t.C:
		}
		return false
	}
	if wait() {
		return
	}
	r.logger.Warn("shutting down with tool-call records still in the pipeline; cancelling them (late_records, result abandoned)", zap.Int("records", len(r.slots)))
	r.cancelConsume()
	if !wait() {
		r.logger.Warn("tool-call records still in the pipeline after cancelling them; not waiting any longer", zap.Int("records", len(r.slots)))
	}
}

func (r *webhookReceiver) logRounds() {
	defer r.background.Done()
	tick, stopTick := r.clock.NewTicker(time.Minute)
	defer stopTick()
	for {
		select {
		case <-r.stop:
			return
		case <-tick:
			r.endLogRounds()
		}
	}
}

// ServeHTTP answers one call.
func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	received := r.clock.Now()
	var endpoint string
	switch req.URL.Path {
	case r.validatePath:
		endpoint = endpointValidate
	case r.analyzePath:
		endpoint = endpointAnalyze
	default:
		writeError(w, http.StatusNotFound, "Not found: this endpoint serves "+r.validatePath+" and "+r.analyzePath)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed: use POST")
		return
	}
	outcome := r.serve(w, req, endpoint, received)
	ctx := context.Background()
	r.telemetry.CopilotstudioWebhookCalls.Add(ctx, 1, r.callAttrs[[2]string{endpoint, outcome}])
	r.telemetry.CopilotstudioWebhookAnswerDuration.Record(ctx, r.clock.Now().Sub(received).Seconds(), r.endpointAttrs[endpoint])
}

func (r *webhookReceiver) serve(w http.ResponseWriter, req *http.Request, endpoint string, received time.Time) string {
	correlationID := req.Header.Get("x-ms-correlation-id")
	// The token is checked before the body is read: an unauthenticated
	// caller costs a header, not a body.
	if err := r.auth.authenticate(req.Context(), req.Header.Get("Authorization")); err != nil {
		var failure *authFailure
		if !errors.As(err, &failure) {
			writeError(w, http.StatusServiceUnavailable, "Service unavailable: the receiver cannot check tokens yet")
			return outcomeUnavailable
		}
		r.telemetry.CopilotstudioWebhookAuthFailures.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", failure.reason)))
		r.authLog.Warn("call refused: its bearer token is not accepted (answered 401)",
			zap.String("endpoint", endpoint), zap.String("reason", failure.reason), zap.String("detail", failure.detail),
			zap.String("correlation_id", correlationID), zap.String("remote_addr", req.RemoteAddr))
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, http.StatusUnauthorized, "Unauthorized")
		return outcomeUnauthenticated
	}
	apiVersion := req.URL.Query().Get("api-version")
	r.apiVersions.note(apiVersion, r.logger)

	if endpoint == endpointValidate {
		_, _ = io.Copy(io.Discard, req.Body)
		writeBody(w, http.StatusOK, validateAnswer)
		return outcomeAccepted
	}

	body, err := r.readBody(req)
	if err != nil {
		bad := &badRequest{reason: badRead, message: "the request body could not be read"}
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			bad = &badRequest{reason: badTooLarge, message: fmt.Sprintf("the request body exceeds %d bytes", tooLarge.Limit)}
		}
		return r.badRequest(w, correlationID, bad)
	}
	call, err := decodeToolCall(body)
	if err != nil {
		return r.badRequest(w, correlationID, err.(*badRequest))
	}
	logs, id := buildRecord(call, body, callContext{received: received, apiVersion: apiVersion, correlationID: correlationID})
	outcome := r.deliver(logs, id)
	w.Header().Set(RecordHeader, outcome)
	writeBody(w, http.StatusOK, allowAnswer)
	return outcome
}

func (r *webhookReceiver) readBody(req *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if n := req.ContentLength; n > 0 && n <= r.cfg.ServerConfig.MaxRequestBodySize {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(req.Body)
	return buf.Bytes(), err
}

func (r *webhookReceiver) badRequest(w http.ResponseWriter, correlationID string, bad *badRequest) string {
	r.telemetry.CopilotstudioWebhookBadRequests.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", bad.reason)))
	r.inputLog.Warn("analyze call answered 400: its body cannot be read",
		zap.String("reason", bad.reason), zap.String("message", bad.message), zap.String("correlation_id", correlationID))
	writeError(w, http.StatusBadRequest, bad.message)
	return outcomeBadRequest
}

// transportError answers what confighttp refuses before the handler runs
// (an undecodable Content-Encoding, an auth extension's refusal) with the
// webhook's error body.
func (r *webhookReceiver) transportError(w http.ResponseWriter, _ *http.Request, message string, status int) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, status, "Unauthorized")
		return
	}
	r.telemetry.CopilotstudioWebhookBadRequests.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", badRead)))
	writeError(w, status, message)
}

// Record states shared by deliver (the answer) and consume (the pipeline):
// whichever moves the state from pending first decides who accounts for the
// record's end.
const (
	recordPending  int32 = iota
	recordAnswered       // answered at the deadline: consume accounts for the end
	recordConsumed       // ConsumeLogs returned first: deliver reads its result
)

type inFlight struct {
	state atomic.Int32
	done  chan error // buffered: consume never blocks on it
}

// deliver passes the record to the pipeline and waits for it to be taken,
// at most answer_deadline. It never fails the call: every outcome is
// answered 200 by the caller.
func (r *webhookReceiver) deliver(logs plog.Logs, id string) string {
	select {
	case r.slots <- struct{}{}:
	default:
		r.pipelineLog.Warn("tool-call record not passed to the pipeline: max_pending_records records are already there (the call is allowed, the record is lost)",
			zap.String("record_id", id), zap.Int("max_pending_records", r.cfg.MaxPendingRecords))
		return outcomeOverloaded
	}
	f := &inFlight{done: make(chan error, 1)}
	r.pending.Add(1)
	r.telemetry.CopilotstudioWebhookRecordsPending.Add(context.Background(), 1)
	go r.consume(f, logs, id)

	deadline := time.NewTimer(r.cfg.AnswerDeadline)
	defer deadline.Stop()
	select {
	case err := <-f.done:
		return outcomeOf(err)
	case <-deadline.C:
		if f.state.CompareAndSwap(recordPending, recordAnswered) {
			return outcomeDeadline
		}
		return outcomeOf(<-f.done) // taken at the same moment
	}
}

func outcomeOf(err error) string {
	if err != nil {
		return outcomeRefused
	}
	return outcomeAccepted
}

func (r *webhookReceiver) consume(f *inFlight, logs plog.Logs, id string) {
	defer func() {
		<-r.slots
		r.telemetry.CopilotstudioWebhookRecordsPending.Add(context.Background(), -1)
		r.pending.Done()
	}()
	ctx := r.obsrecv.StartLogsOp(r.consumeCtx)
	err := r.next.ConsumeLogs(ctx, logs)
	r.obsrecv.EndLogsOp(ctx, "json", 1, err)

	if f.state.CompareAndSwap(recordPending, recordConsumed) {
		f.done <- err
		if err != nil {
			r.pipelineLog.Warn("tool-call record refused by the pipeline (the call is allowed, the record is lost)", zap.String("record_id", id), zap.Error(err))
		}
		return
	}
	result := lateAccepted
	switch {
	case err != nil && r.consumeCtx.Err() != nil:
		result = lateAbandoned
		r.pipelineLog.Warn("tool-call record answered at the deadline was still in the pipeline at shutdown and is lost", zap.String("record_id", id), zap.Error(err))
	case err != nil:
		result = lateRefused
		r.pipelineLog.Warn("tool-call record answered at the deadline was refused by the pipeline later and is lost", zap.String("record_id", id), zap.Error(err))
	}
	r.telemetry.CopilotstudioWebhookLateRecords.Add(context.Background(), 1, metric.WithAttributes(attribute.String("result", result)))
}

type errorBody struct {
	ErrorCode  int    `json:"errorCode"`
	Message    string `json:"message"`
	HTTPStatus int    `json:"httpStatus"`
}

// writeError writes the webhook's error body. Its errorCode is the status
// followed by 1, as in Microsoft's example (5031 for 503).
func writeError(w http.ResponseWriter, status int, message string) {
	b, _ := json.Marshal(errorBody{ErrorCode: status*10 + 1, Message: message, HTTPStatus: status})
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// endLogRounds ends the minute's round of each capped log, saying how many
// lines each held back.
func (r *webhookReceiver) endLogRounds() {
	r.authLog.EndRound("more calls refused for their bearer token in the last minute")
	r.inputLog.EndRound("more calls answered 400 in the last minute")
	r.pipelineLog.EndRound("more tool-call records not taken by the pipeline in the last minute")
}

// versionLog logs each unknown api-version once (the first few dozen
// values, so a caller cannot grow it without bound).
type versionLog struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (v *versionLog) note(version string, logger *zap.Logger) {
	if version == knownAPIVersion {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen[version] || len(v.seen) >= maxLoggedAPIVersions {
		return
	}
	v.seen[version] = true
	logger.Warn("a call uses an api-version this receiver does not know; it is read as "+knownAPIVersion+" (unknown fields ignored); logged once per value",
		zap.String("api_version", version))
}

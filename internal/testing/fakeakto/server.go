// Package fakeakto is a stand-in for Akto's data ingestion service (the
// "URL for Data Ingestion Service" of Akto's Copilot Studio connector), as
// much of it as the akto exporter talks to, answering as the real service
// does (shared/reference/akto-traffic-format.md, "The HTTP ingestion
// service"):
//
//   - POST {url}/api/ingestData with {"batchData":[record, ...]} and
//     Content-Type application/json; another path is 404;
//   - with a token configured, the authorization header must hold it as is
//     (no Bearer prefix), else 401 with the servlet container's HTML page;
//   - a body over 10 MiB is 413; a string over 5 MiB, a record that is not a
//     JSON object or has a field that is not a string, a body it cannot read
//     (wrong content type or method, not JSON, no batchData) is 422
//     {"actionErrors":[]}, and nothing of that batch is kept;
//   - an accepted batch is 200 {"success":false}: the real service never
//     sets its success field, so a client must go by the status alone.
//
// Faults on top: FailNext answers the next requests with a status (a 503
// stretch, 429 with Retry-After), SetToken rotates the token (the client's is
// refused with 401 until it is set back), SetRefuse refuses (422) every batch
// holding a record a predicate picks. Records lists what was accepted, in
// order; Requests logs every answer.
package fakeakto

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// IngestPath is the service's ingestion endpoint under its URL.
const IngestPath = "/api/ingestData"

// The service's limits.
const (
	MaxBodyBytes   = 10 << 20
	MaxStringBytes = 5 << 20
)

// Options configure a stand-in.
type Options struct {
	// Token, when not empty, is what the authorization header must hold
	// (the service's AKTO_DI_AUTHENTICATE mode). Empty: no authentication.
	Token string
	// MaxBodyBytes and MaxStringBytes override the service's limits (0: the
	// real ones), so tests can reach them with small records.
	MaxBodyBytes, MaxStringBytes int
	// Discard accepts every authorised POST to IngestPath after reading its
	// body, without parsing, checking or keeping records: for benchmarks of
	// a client, so that the stand-in's own checks do not weigh on them.
	Discard bool
	// OnAccept, if set, is called with each accepted record, in order.
	OnAccept func(record []byte)
	// TLS serves HTTPS with this config; nil serves plain HTTP.
	TLS *tls.Config
}

// Request is one answer the stand-in gave.
type Request struct {
	Status  int
	Records int    // records in the body, when it could be read
	Bytes   int    // body size
	Reason  string // why it was not accepted; empty for 200
	// Refused is the record that made the batch fail a record check (the
	// Refuse predicate, a field that is not a string, an oversized string).
	Refused []byte
}

// Server is a running stand-in.
type Server struct {
	srv  *httptest.Server
	opts Options

	// acceptMu keeps OnAccept calls in the order of records.
	acceptMu sync.Mutex
	mu       sync.Mutex
	token    string
	refuse   func(record []byte) bool
	fault    Fault
	records  [][]byte
	requests []Request
	changed  chan struct{} // closed and replaced on every answer
}

// New starts a stand-in on a loopback port.
func New(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = MaxBodyBytes
	}
	if opts.MaxStringBytes <= 0 {
		opts.MaxStringBytes = MaxStringBytes
	}
	s := &Server{opts: opts, token: opts.Token, changed: make(chan struct{})}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.TLS != nil {
		s.srv.TLS = opts.TLS
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	return s
}

// URL is the service's base URL (AKTO_INGESTION_URL), without IngestPath.
func (s *Server) URL() string { return s.srv.URL }

// Env points collector-config.akto-http.yaml at the stand-in.
func (s *Server) Env() map[string]string {
	return map[string]string{"AKTO_INGESTION_URL": s.URL(), "AKTO_INGESTION_TOKEN": s.opts.Token}
}

// Close stops the stand-in.
func (s *Server) Close() { s.srv.Close() }

// SetToken changes the token the service accepts (empty: none needed).
// Setting another than the client's is a revoked or rotated token.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// Fault answers Count requests to IngestPath with Status, after letting
// the next Skip through, before any other check (a proxy or the service
// itself failing), with Retry-After when RetryAfter is positive (whole
// seconds, rounded up). Nothing of those requests is kept.
type Fault struct {
	Status, Count, Skip int
	RetryAfter          time.Duration
}

// Inject replaces the pending fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// FailNext answers the next n requests with status: a stretch of 503s.
func (s *Server) FailNext(status, n int, retryAfter time.Duration) {
	s.Inject(Fault{Status: status, Count: n, RetryAfter: retryAfter})
}

// SetRefuse makes every batch holding a record refuse picks fail with 422
// (nil: none). Refuse sees the record's JSON as sent.
func (s *Server) SetRefuse(refuse func(record []byte) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = refuse
}

// Records are the accepted records, in order (a record sent twice is
// there twice).
func (s *Server) Records() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.records...)
}

// Reset forgets the records and requests seen so far (between the rounds
// of a benchmark, so they do not pile up).
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records, s.requests = nil, nil
}

// Requests are the answers given so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// WaitUntil blocks until cond holds for the stand-in's state, checked after
// every answer, or ctx ends.
func (s *Server) WaitUntil(ctx context.Context, cond func(records [][]byte, requests []Request) bool) error {
	for {
		s.mu.Lock()
		records, requests, changed := append([][]byte(nil), s.records...), append([]Request(nil), s.requests...), s.changed
		s.mu.Unlock()
		if cond(records, requests) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("fakeakto: %w after %d requests, %d records accepted", ctx.Err(), len(requests), len(records))
		}
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != IngestPath {
		http.NotFound(w, r)
		return
	}
	limited := http.MaxBytesReader(w, r.Body, int64(s.opts.MaxBodyBytes))
	var body []byte
	var size int64
	var readErr error
	if s.opts.Discard {
		// Counted, not kept: a benchmark measures its client, not this.
		size, readErr = io.Copy(io.Discard, limited)
	} else {
		body, readErr = io.ReadAll(limited)
		size = int64(len(body))
	}
	req := Request{Bytes: int(size)}

	s.mu.Lock()
	token, refuse := s.token, s.refuse
	var fail int
	var retryAfter string
	switch f := &s.fault; {
	case f.Skip > 0:
		f.Skip--
	case f.Count > 0:
		f.Count--
		fail = f.Status
		if f.RetryAfter > 0 {
			retryAfter = strconv.Itoa(int((f.RetryAfter + time.Second - 1) / time.Second))
		}
	}
	s.mu.Unlock()

	var accepted [][]byte
	switch {
	case fail != 0:
		req.Status, req.Reason = fail, "injected fault"
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
	case token != "" && r.Header.Get("authorization") != token:
		// The service's AuthFilter: sendError(401), the container's page.
		req.Status, req.Reason = http.StatusUnauthorized, "authorization header does not hold the token"
	case readErr != nil:
		var tooLarge *http.MaxBytesError
		if errors.As(readErr, &tooLarge) {
			req.Status, req.Reason = http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", s.opts.MaxBodyBytes)
		} else {
			req.Status, req.Reason = http.StatusBadRequest, "reading the body: "+readErr.Error()
		}
	case s.opts.Discard && r.Method == http.MethodPost:
		req.Status = http.StatusOK
	default:
		accepted, req = s.check(r, body, refuse)
	}
	s.answer(w, req, accepted)
}

// check applies the service's reading of a batch: anything it cannot read
// or a record it cannot take fails the whole batch with 422.
func (s *Server) check(r *http.Request, body []byte, refuse func([]byte) bool) ([][]byte, Request) {
	req := Request{Bytes: len(body), Status: http.StatusUnprocessableEntity}
	if r.Method != http.MethodPost {
		req.Reason = "method " + r.Method + ": no body to read batchData from"
		return nil, req
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		req.Reason = fmt.Sprintf("Content-Type %q is not application/json: batchData is not read", r.Header.Get("Content-Type"))
		return nil, req
	}
	var batch struct {
		BatchData []json.RawMessage `json:"batchData"`
	}
	if err := json.Unmarshal(body, &batch); err != nil {
		req.Reason = "body is not a JSON batch: " + err.Error()
		return nil, req
	}
	if batch.BatchData == nil {
		req.Reason = "no batchData"
		return nil, req
	}
	req.Records = len(batch.BatchData)
	for i, raw := range batch.BatchData {
		if reason := s.checkRecord(raw); reason != "" {
			req.Reason, req.Refused = fmt.Sprintf("record %d: %s", i, reason), raw
			return nil, req
		}
		if refuse != nil && refuse(raw) {
			req.Reason, req.Refused = fmt.Sprintf("record %d: refused (fault injection)", i), raw
			return nil, req
		}
	}
	req.Status = http.StatusOK
	records := make([][]byte, len(batch.BatchData))
	for i, raw := range batch.BatchData {
		records[i] = bytes.Clone(raw)
	}
	return records, req
}

// checkRecord says why the service cannot take a record, or "".
func (s *Server) checkRecord(raw json.RawMessage) string {
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return "not a JSON object"
	}
	for name, v := range fields {
		str, ok := v.(string)
		if !ok {
			return fmt.Sprintf("field %q is not a string", name)
		}
		if len(str) > s.opts.MaxStringBytes {
			return fmt.Sprintf("field %q is a string of %d bytes, over %d", name, len(str), s.opts.MaxStringBytes)
		}
	}
	return ""
}

func (s *Server) answer(w http.ResponseWriter, req Request, accepted [][]byte) {
	s.acceptMu.Lock()
	s.mu.Lock()
	s.records = append(s.records, accepted...)
	s.requests = append(s.requests, req)
	close(s.changed)
	s.changed = make(chan struct{})
	onAccept := s.opts.OnAccept
	s.mu.Unlock()
	if onAccept != nil {
		for _, rec := range accepted {
			onAccept(rec)
		}
	}
	s.acceptMu.Unlock()

	switch req.Status {
	case http.StatusOK:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"success":false}`)
	case http.StatusUnprocessableEntity:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(req.Status)
		_, _ = io.WriteString(w, `{"actionErrors":[]}`)
	default:
		// What a servlet container's sendError writes.
		w.Header().Set("Content-Type", "text/html;charset=iso-8859-1")
		w.WriteHeader(req.Status)
		text := http.StatusText(req.Status)
		fmt.Fprintf(w, "<html>\n<head>\n<title>Error %d %s</title>\n</head>\n<body><h2>HTTP ERROR %d %s</h2>\n</body>\n</html>\n", req.Status, text, req.Status, text)
	}
}

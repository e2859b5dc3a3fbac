package fakeappinsights

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/localtls"
)

// Options configure a Server.
type Options struct {
	// AppID is the only application id served; others answer 404. Empty serves any.
	AppID string
	// TokenValidator accepts or rejects bearer tokens, e.g. a fakeentra
	// Server's Valid method.
	TokenValidator func(token string) bool
	// APIKey, when set, is accepted in the x-api-key header.
	APIKey string
	// TLS serves HTTPS with this bundle; nil serves plain HTTP.
	TLS *localtls.Bundle
}

// FaultKind is a failure the stand-in can be told to answer with.
type FaultKind int

const (
	// Throttle answers 429 ThrottledError with Retry-After.
	Throttle FaultKind = iota + 1
	// InternalError answers 500.
	InternalError
	// Unavailable answers 503.
	Unavailable
	// GatewayTimeout answers 504.
	GatewayTimeout
	// PartialResult answers 200 with half the rows and a PartialError.
	PartialResult
	// MalformedJSON answers 200 with a body cut off mid-row.
	MalformedJSON
	// Stall never answers; the request ends when the client gives up or on Close.
	Stall
	// Redirect answers 307 Temporary Redirect to Fault.Location (a 307
	// keeps the method and body: a client following it re-sends the query).
	Redirect
)

// Fault is one injected failure.
type Fault struct {
	Kind FaultKind
	// RetryAfter is sent with Throttle (whole seconds, at least 1).
	RetryAfter time.Duration
	// Location is where Redirect points.
	Location string
}

// Request is what the stand-in recorded of one query request.
type Request struct {
	Query    string
	Timespan string
	// Status is the HTTP status answered (200 for partial and malformed
	// answers; 0 for a stalled request).
	Status int
	// Fault is the injected fault applied, or 0.
	Fault FaultKind
	// Rows is the number of rows answered (a partial answer's included).
	Rows int
	// Take is the query's row limit (0: none). Rows == Take means the
	// answer may be cut: the copilotstudio receiver asks for one row more
	// than it wants, and delivers an over-full answer only up to the
	// ingestion time of its last row.
	Take int
	// IngestLower and IngestUpper are the query's ingestion-time bounds
	// (zero when absent or the query did not parse).
	IngestLower, IngestUpper time.Time
	// LastIngest is the ingestion time of the last row answered (zero when
	// none): where the receiver cuts an over-full answer.
	LastIngest time.Time
}

// Server is a running stand-in. Safe for concurrent use.
type Server struct {
	opts Options
	srv  *httptest.Server
	done chan struct{}

	closeOnce sync.Once

	mu       sync.Mutex
	now      time.Time    // zero: real time
	rows     []*storedRow // sorted by ingestion time, then item id, when !unsorted
	unsorted bool
	faults   []Fault
	requests []Request
}

// New starts a server on 127.0.0.1 with a random port.
func New(opts Options) (*Server, error) {
	s := &Server{opts: opts, done: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakeappinsights: listen: %w", err)
	}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(s.serve)}}
	if opts.TLS != nil {
		s.srv.TLS = opts.TLS.ServerTLSConfig()
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	return s, nil
}

// URL is the endpoint to configure, e.g. "https://127.0.0.1:41234".
func (s *Server) URL() string { return s.srv.URL }

// Close releases stalled requests and stops the server.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.srv.Close()
	})
}

// SetNow sets the stand-in's clock; rows ingested after it are invisible.
func (s *Server) SetNow(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = t
}

// Advance moves the clock set with SetNow forward by d.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
}

// Now is the stand-in's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Server) nowLocked() time.Time {
	if s.now.IsZero() {
		return time.Now()
	}
	return s.now
}

// AddRows stores rows; they are served once ingested (IngestionTime <= now).
// Each row's cells are rendered as JSON here, once, so answering a query is
// mostly copying (the end-to-end benchmark serves a million rows while the
// collector it measures shares the machine).
func (s *Server) AddRows(rows ...Row) {
	stored := renderRows(rows)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range stored {
		r := &stored[i]
		if n := len(s.rows); n > 0 && rowLess(r.Row, s.rows[n-1].Row) {
			s.unsorted = true // sorted lazily, so adding rows in any order stays cheap
		}
		s.rows = append(s.rows, r)
	}
}

// RowCount is the number of rows stored, visible or not.
func (s *Server) RowCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

// LoadFile adds the rows of a row file (see the package doc).
func (s *Server) LoadFile(path string) error {
	rows, err := LoadRows(path)
	if err != nil {
		return err
	}
	s.AddRows(rows...)
	return nil
}

// InjectFault makes the next n query requests fail with f (after faults
// injected before).
func (s *Server) InjectFault(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// Requests returns the query requests received so far, authenticated or not.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// RequestCount is len(Requests()).
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

type requestBody struct {
	Query    string `json:"query"`
	Timespan string `json:"timespan"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// Every answer carries the stand-in's clock, as the service's carry its own.
	w.Header().Set("Date", s.Now().UTC().Format(http.TimeFormat))
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "v1" || parts[1] != "apps" || parts[3] != "query" ||
		(s.opts.AppID != "" && parts[2] != s.opts.AppID) {
		writeError(w, http.StatusNotFound, "PathNotFoundError", "The requested path does not exist", nil)
		return
	}
	if status, code, msg := s.authenticate(r); status != 0 {
		writeError(w, status, code, msg, nil)
		return
	}

	var body requestBody
	switch r.Method {
	case http.MethodPost:
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "BadArgumentError", "The request had some invalid properties",
				map[string]any{"code": "InvalidJsonBody", "message": err.Error()})
			return
		}
	case http.MethodGet:
		body.Query, body.Timespan = r.URL.Query().Get("query"), r.URL.Query().Get("timespan")
	default:
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "Only GET and POST are supported", nil)
		return
	}

	s.mu.Lock()
	var fault Fault
	if len(s.faults) > 0 {
		fault, s.faults = s.faults[0], s.faults[1:]
	}
	now := s.nowLocked()
	idx := len(s.requests)
	s.requests = append(s.requests, Request{Query: body.Query, Timespan: body.Timespan, Fault: fault.Kind})
	s.mu.Unlock()
	record := func(status int) {
		s.mu.Lock()
		s.requests[idx].Status = status
		s.mu.Unlock()
	}

	switch fault.Kind {
	case Throttle:
		secs := int((fault.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		record(http.StatusTooManyRequests)
		writeError(w, http.StatusTooManyRequests, "ThrottledError", "Your request has been throttled. Please retry after the time given in Retry-After.", nil)
		return
	case InternalError:
		record(http.StatusInternalServerError)
		writeError(w, http.StatusInternalServerError, "InternalServerError", "An internal error occurred", nil)
		return
	case Unavailable:
		record(http.StatusServiceUnavailable)
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableError", "The service is temporarily unavailable", nil)
		return
	case GatewayTimeout:
		record(http.StatusGatewayTimeout)
		writeError(w, http.StatusGatewayTimeout, "GatewayTimeout", "The gateway did not receive a response in time", nil)
		return
	case Redirect:
		record(http.StatusTemporaryRedirect)
		w.Header().Set("Location", fault.Location)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	case Stall:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}

	q, err := parseQuery(body.Query)
	if err == nil {
		var from, to time.Time
		from, to, err = parseTimespan(body.Timespan, now)
		if err == nil {
			rows := s.selectRows(q, now, from, to)
			if fault.Kind == PartialResult {
				rows = rows[:len(rows)/2]
			}
			s.mu.Lock()
			rec := &s.requests[idx]
			rec.Status, rec.Rows, rec.Take = http.StatusOK, len(rows), q.take
			rec.IngestLower, rec.IngestUpper = q.lower.t, q.upper.t
			if len(rows) > 0 {
				rec.LastIngest = rows[len(rows)-1].IngestionTime
			}
			s.mu.Unlock()
			writeTable(w, q.columns, rows, fault.Kind)
			return
		}
	}
	record(http.StatusBadRequest)
	writeError(w, http.StatusBadRequest, "BadArgumentError", "The request had some invalid properties",
		map[string]any{"code": "SyntaxError", "message": "A recognition error occurred in the query.",
			"innererror": map[string]any{"code": "SYN0002", "message": err.Error()}})
}

func (s *Server) authenticate(r *http.Request) (status int, code, msg string) {
	if s.opts.TokenValidator == nil && s.opts.APIKey == "" {
		return 0, "", ""
	}
	if key := r.Header.Get("x-api-key"); key != "" {
		if s.opts.APIKey != "" && key == s.opts.APIKey {
			return 0, "", ""
		}
		return http.StatusForbidden, "InvalidApiKeyError", "Valid authentication was not provided"
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return http.StatusUnauthorized, "AuthorizationRequiredError", "Valid authentication was not provided"
	}
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || s.opts.TokenValidator == nil || !s.opts.TokenValidator(token) {
		return http.StatusForbidden, "InvalidTokenError", "The provided authentication is not valid for this resource"
	}
	return 0, "", ""
}

func (s *Server) selectRows(q *query, now, from, to time.Time) []*storedRow {
	s.mu.Lock()
	if s.unsorted {
		// A sorted copy: answers being written still hold the old slice.
		sorted := slices.Clone(s.rows)
		sort.SliceStable(sorted, func(i, j int) bool { return rowLess(sorted[i].Row, sorted[j].Row) })
		s.rows, s.unsorted = sorted, false
	}
	start := 0
	if q.lower.set {
		start = sort.Search(len(s.rows), func(i int) bool { return !s.rows[i].IngestionTime.Before(q.lower.t) })
	}
	var out []*storedRow
	for _, r := range s.rows[start:] {
		if !q.upper.admitsBelow(r.IngestionTime) || r.IngestionTime.After(now) {
			break // sorted: nothing later qualifies
		}
		if q.take > 0 && len(out) == q.take {
			break
		}
		switch {
		case r.IngestionTime.After(now):
		case !from.IsZero() && (r.Timestamp.Before(from) || r.Timestamp.After(to)):
		case q.names != nil && !q.names[r.Name]:
		case q.agents != nil && !q.agents[r.RoleInstance]:
		case !q.lower.admitsAbove(r.IngestionTime) || !q.upper.admitsBelow(r.IngestionTime):
		default:
			out = append(out, r)
		}
	}
	s.mu.Unlock()
	// Rows come out in ingestion order, item id next, with or without an
	// "order by": the real service promises no order without one, and a
	// fixed one keeps tests reproducible.
	return out
}

func rowLess(a, b Row) bool {
	if !a.IngestionTime.Equal(b.IngestionTime) {
		return a.IngestionTime.Before(b.IngestionTime)
	}
	return a.ItemID < b.ItemID
}

// writeTable streams the result so large answers do not sit in memory twice.
func writeTable(w http.ResponseWriter, columns []string, rows []*storedRow, fault FaultKind) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()

	bw.WriteString(`{"tables":[{"name":"` + appinsights.ResultTable + `","columns":`)
	header := make([]appinsights.Column, len(columns))
	for i, c := range columns {
		header[i] = appinsights.Column{Name: c, Type: appinsights.ColumnType(c)}
	}
	b, _ := json.Marshal(header)
	bw.Write(b)
	bw.WriteString(`,"rows":[`)
	for i, r := range rows {
		if i > 0 {
			bw.WriteByte(',')
		}
		if fault == MalformedJSON && i == len(rows)/2 {
			bw.WriteString(`["2026-02-18T01:2`)
			return
		}
		bw.WriteByte('[')
		if slices.Equal(columns, columnsInOrder) {
			bw.Write(r.cells) // the receiver's projection: the row as rendered
		} else {
			for j, c := range columns {
				if j > 0 {
					bw.WriteByte(',')
				}
				bw.Write(r.cell(c))
			}
		}
		bw.WriteByte(']')
	}
	if fault == MalformedJSON {
		bw.WriteString(`,["truncated`)
		return
	}
	bw.WriteString(`]}]`)
	if fault == PartialResult {
		bw.WriteString(`,"error":`)
		b, _ := json.Marshal(errorObject(appinsights.ErrorCodePartial, "There were some errors when processing your query.",
			map[string]any{"code": "-2133196797", "message": "Query execution has exceeded the allowed limits (E_RUNAWAY_QUERY)."}))
		bw.Write(b)
	}
	bw.WriteString(`}`)
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func errorObject(code, message string, inner map[string]any) *appinsights.Error {
	e := &appinsights.Error{Message: message, Code: code, CorrelationID: newCorrelationID()}
	if inner != nil {
		e.InnerError, _ = json.Marshal(inner)
	}
	return e
}

func writeError(w http.ResponseWriter, status int, code, message string, inner map[string]any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(appinsights.ErrorBody{Error: errorObject(code, message, inner)})
}

func newCorrelationID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Package fakedataverse is a stand-in for a Dataverse environment's Web API,
// as much of it as reading Copilot Studio agents and their conversation
// transcripts needs (transcripts: see transcripts.go): the bots table with
// OData paging (Prefer: odata.maxpagesize, @odata.nextLink), the
// RetrieveCurrentOrganization function, bearer-token checks (401) and service
// protection throttling (429 with Retry-After), in the real response shapes.
// Every answer carries a Date header from the stand-in's clock (SetNow).
// Faults of the bots pages (InjectBotsFault): next links on another host,
// to the same page, or without end; a page over 16 MiB; a redirect.
package fakedataverse

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Bot is one row of the bots table as the Web API returns it.
type Bot struct {
	BotID              string `json:"botid"`
	Name               string `json:"name"`
	SchemaName         string `json:"schemaname"`
	AuthenticationMode int    `json:"authenticationmode"` // 0 unspecified, 1 none, 2 integrated, 3 custom AAD, 4 generic OAuth2
	PublishedOn        string `json:"publishedon,omitempty"`
	StateCode          int    `json:"statecode"` // 0 active, 1 inactive
}

// Options configure a stand-in.
type Options struct {
	// TokenValidator accepts or rejects bearer tokens, e.g. a check that a
	// fakeentra token was issued for this environment's scope.
	TokenValidator func(token string) bool
	EnvironmentID  string
	// TLS is the server's TLS config (e.g. a localtls bundle's); nil uses
	// httptest's own certificate, trusted by s.Client().
	TLS *tls.Config
}

// Server answers like https://<org>.crm.dynamics.com over TLS.
type Server struct {
	*httptest.Server
	opts Options

	mu         sync.Mutex
	bots       []Bot
	throttle   int    // answer this many next requests with 429
	retryAfter string // their Retry-After
	unavail    bool   // answer every request 503 (an outage)
	requests   int
	// outageAnswers counts the requests answered 503 by the outage.
	outageAnswers int

	transcripts transcriptTable // transcripts.go
	botsFaults  []BotsFault
}

// BotsFaultKind is a failure a page of the bots table can be answered with.
type BotsFaultKind int

const (
	// BotsForeignNextLink answers the page with a next link on another host
	// (Location, default https://evil.example.com).
	BotsForeignNextLink BotsFaultKind = iota + 1
	// BotsSelfNextLink answers the page with a next link to itself.
	BotsSelfNextLink
	// BotsEndlessNextLink answers the page with a next link that is new
	// every time, past the last row (empty pages).
	BotsEndlessNextLink
	// BotsHugePage pads the page past 16 MiB.
	BotsHugePage
	// BotsRedirect answers 307 to Location.
	BotsRedirect
)

// BotsFault is one injected failure of a bots request.
type BotsFault struct {
	Kind     BotsFaultKind
	Location string // for BotsRedirect and BotsForeignNextLink
}

// InjectBotsFault makes the next n requests of the bots table fail with f
// (after faults injected before).
func (s *Server) InjectBotsFault(n int, f BotsFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.botsFaults = append(s.botsFaults, f)
	}
}

// New starts a stand-in holding bots.
func New(opts Options, bots ...Bot) *Server {
	s := &Server{opts: opts, bots: bots}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Server.TLS = opts.TLS
	s.StartTLS()
	return s
}

// SetBots replaces the table.
func (s *Server) SetBots(bots ...Bot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bots = bots
}

// Throttle makes the next n requests answer 429 with Retry-After seconds.
func (s *Server) Throttle(n, retryAfterSeconds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle, s.retryAfter = n, strconv.Itoa(retryAfterSeconds)
}

// SetUnavailable turns an outage (503 on every request) on or off.
func (s *Server) SetUnavailable(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unavail = down
}

// OutageAnswers counts the requests answered 503 because of SetUnavailable
// (after their token was accepted), whatever they asked for.
func (s *Server) OutageAnswers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outageAnswers
}

// Requests counts the requests served, throttled and refused ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

var skipToken = regexp.MustCompile(`\$skiptoken=(\d+)`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	throttled, down := s.throttle > 0, s.unavail
	if throttled {
		s.throttle--
	}
	bots := append([]Bot(nil), s.bots...)
	retryAfter := s.retryAfter
	now := s.nowLocked()
	var botsFault BotsFault
	if r.URL.Path == "/api/data/v9.2/bots" && len(s.botsFaults) > 0 {
		botsFault, s.botsFaults = s.botsFaults[0], s.botsFaults[1:]
	}
	s.mu.Unlock()

	// Every answer carries the stand-in's clock, as Dataverse's carry its own.
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	w.Header().Set("OData-Version", "4.0")
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || s.opts.TokenValidator == nil || !s.opts.TokenValidator(token) {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize`)
		writeError(w, http.StatusUnauthorized, "0x80072560", "The user is not a member of the organization.")
		return
	}
	if down {
		s.mu.Lock()
		s.outageAnswers++
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "0x80040216", "The service is unavailable.")
		return
	}
	if throttled {
		w.Header().Set("Retry-After", retryAfter)
		writeError(w, http.StatusTooManyRequests, "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds.")
		return
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/data/v9.2/RetrieveCurrentOrganization"):
		writeJSON(w, map[string]any{
			"@odata.context": s.URL + "/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.RetrieveCurrentOrganizationResponse",
			"Detail": map[string]any{
				"OrganizationId": "8f0b5cf1-0000-4000-8000-00000000beef",
				"EnvironmentId":  s.opts.EnvironmentID,
				"FriendlyName":   "Contoso",
				"UrlName":        "contoso",
			},
		})
	case r.URL.Path == "/api/data/v9.2/bots":
		s.serveBots(w, r, bots, botsFault)
	case r.URL.Path == "/api/data/v9.2/conversationtranscripts":
		s.serveTranscripts(w, r)
	default:
		writeError(w, http.StatusNotFound, "0x80060888", "Resource not found for the segment '"+r.URL.Path+"'.")
	}
}

func (s *Server) serveBots(w http.ResponseWriter, r *http.Request, bots []Bot, fault BotsFault) {
	if fault.Kind == BotsRedirect {
		w.Header().Set("Location", fault.Location)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	pageSize := 5000
	if m := regexp.MustCompile(`odata\.maxpagesize=(\d+)`).FindStringSubmatch(r.Header.Get("Prefer")); m != nil {
		pageSize, _ = strconv.Atoi(m[1])
		w.Header().Set("Preference-Applied", "odata.maxpagesize="+m[1])
	}
	skip := 0
	if m := skipToken.FindStringSubmatch(r.URL.RawQuery); m != nil {
		skip, _ = strconv.Atoi(m[1])
	}
	start := min(skip, len(bots))
	end := min(start+max(pageSize, 1), len(bots))
	value := make([]map[string]any, 0, end-start)
	for i, b := range bots[start:end] {
		var row map[string]any
		raw, _ := json.Marshal(b)
		_ = json.Unmarshal(raw, &row)
		row["@odata.etag"] = fmt.Sprintf("W/\"%d\"", 1000+start+i)
		value = append(value, row)
	}
	page := map[string]any{
		"@odata.context": s.URL + "/api/data/v9.2/$metadata#bots(botid,name,schemaname,authenticationmode,publishedon,statecode)",
		"value":          value,
	}
	nextLink := func(base string, skip int) string {
		q := skipToken.ReplaceAllString(r.URL.RawQuery, "")
		return base + r.URL.Path + "?" + strings.TrimSuffix(q, "&") + "&$skiptoken=" + strconv.Itoa(skip)
	}
	if end < len(bots) {
		page["@odata.nextLink"] = nextLink(s.URL, end)
	}
	switch fault.Kind {
	case BotsForeignNextLink:
		foreign := fault.Location
		if foreign == "" {
			foreign = "https://evil.example.com"
		}
		page["@odata.nextLink"] = nextLink(foreign, end)
	case BotsSelfNextLink:
		page["@odata.nextLink"] = s.URL + r.URL.RequestURI()
	case BotsEndlessNextLink:
		page["@odata.nextLink"] = nextLink(s.URL, max(skip, end)+1)
	case BotsHugePage:
		page["padding"] = strings.Repeat("x", 17<<20)
	}
	writeJSON(w, page)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}

package fakedataverse

// The conversationtranscripts entity set, in the Web API's shapes:
//
//	GET /api/data/v9.2/conversationtranscripts
//	  ?$select=conversationtranscriptid,name,content,metadata,conversationstarttime,createdon,_bot_conversationtranscriptid_value
//	  &$filter=createdon ge 2026-01-01T10:00:00Z [and (_bot_conversationtranscriptid_value eq <guid> or ...)]
//	  &$orderby=createdon asc,conversationtranscriptid asc
//	Prefer: odata.maxpagesize=50
//
// It answers with Preference-Applied and, while rows remain, an
// @odata.nextLink: the same URL plus an opaque $skiptoken (a paging cookie,
// as Dataverse's), which holds the position after the page's last row. The
// $filter, $select and $orderby must be exactly the shapes above (GUIDs
// quoted or not); anything else is a 400 with Dataverse's error body, so a
// change of query in the receiver fails loudly here.
//
// Rows become visible at their VisibleAt time on the stand-in's clock
// (default: their CreatedOn), which makes late rows: a row whose createdon
// lies behind a reader's cursor, committed after the reader passed. Faults
// (InjectTranscriptFault) apply to the next transcripts requests: 429 with
// Retry-After and the service-protection error body, 502/503/504, 403 for a
// missing privilege, a body cut in the middle, a next link on a foreign
// host, to the same page or without end, and a redirect.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Transcript is one conversationtranscript row.
type Transcript struct {
	ID                string // conversationtranscriptid
	Name              string // {conversationId}_{botId}
	Content           string // JSON text {"activities":[...]}, up to MaxContentChars
	Metadata          string // JSON text {"BotId","AADTenantId","BotName","BatchId"}
	ConversationStart time.Time
	CreatedOn         time.Time // whole seconds, as Dataverse keeps them
	BotID             string    // _bot_conversationtranscriptid_value
	// VisibleAt is when the row can be read (zero: at CreatedOn).
	VisibleAt time.Time
}

// MaxContentChars is the content column's limit (Memo, 1,048,576).
const MaxContentChars = 1 << 20

// TranscriptFaultKind is a failure a transcripts request can be answered with.
type TranscriptFaultKind int

const (
	// FaultThrottle answers 429 with Retry-After (RetryAfter, default 1s) and
	// the service-protection error 0x80072322.
	FaultThrottle TranscriptFaultKind = iota + 1
	FaultBadGateway
	FaultUnavailable
	FaultGatewayTimeout
	// FaultForbidden answers 403: the caller lacks Read on the table.
	FaultForbidden
	// FaultCutBody answers 200 with the page's body cut in half.
	FaultCutBody
	// FaultForeignNextLink answers the page with a next link on another host.
	FaultForeignNextLink
	// FaultSelfNextLink answers the page with a next link to itself.
	FaultSelfNextLink
	// FaultEndlessNextLink answers the page with a next link that is new
	// every time, even past the last row.
	FaultEndlessNextLink
	// FaultRedirect answers 307 to Location.
	FaultRedirect
)

// TranscriptFault is one injected failure.
type TranscriptFault struct {
	Kind       TranscriptFaultKind
	RetryAfter time.Duration
	Location   string // for FaultRedirect
}

// TranscriptRequest is what the stand-in recorded of one transcripts request.
type TranscriptRequest struct {
	Filter, Select, OrderBy, Prefer string
	SkipToken                       bool
	Status                          int
	Fault                           TranscriptFaultKind
	Rows                            int
	Bytes                           int
}

type transcriptTable struct {
	rows     []Transcript
	now      time.Time // zero: real time
	faults   []TranscriptFault
	requests []TranscriptRequest
}

// AddTranscripts adds rows (CreatedOn is truncated to whole seconds).
func (s *Server) AddTranscripts(rows ...Transcript) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		r.CreatedOn = r.CreatedOn.UTC().Truncate(time.Second)
		if r.VisibleAt.IsZero() {
			r.VisibleAt = r.CreatedOn
		}
		s.transcripts.rows = append(s.transcripts.rows, r)
	}
	slices.SortStableFunc(s.transcripts.rows, compareTranscripts)
}

func compareTranscripts(a, b Transcript) int {
	if c := a.CreatedOn.Compare(b.CreatedOn); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// TranscriptCount is how many rows the table holds, visible or not.
func (s *Server) TranscriptCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.transcripts.rows)
}

// SetNow sets the stand-in's clock for row visibility.
func (s *Server) SetNow(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transcripts.now = t
}

// Advance moves the stand-in's clock on.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transcripts.now = s.nowLocked().Add(d)
}

// Now is the stand-in's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Server) nowLocked() time.Time {
	if s.transcripts.now.IsZero() {
		return time.Now()
	}
	return s.transcripts.now
}

// InjectTranscriptFault makes the next n transcripts requests fail with f
// (after faults injected before).
func (s *Server) InjectTranscriptFault(n int, f TranscriptFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.transcripts.faults = append(s.transcripts.faults, f)
	}
}

// TranscriptRequests returns the transcripts requests served so far.
func (s *Server) TranscriptRequests() []TranscriptRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.transcripts.requests)
}

var (
	filterShape  = regexp.MustCompile(`^createdon ge (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)(?: and \((.+)\))?$`)
	botShape     = regexp.MustCompile(`^_bot_conversationtranscriptid_value eq '?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})'?$`)
	pageSizePref = regexp.MustCompile(`odata\.maxpagesize=(\d+)`)
)

const transcriptColumns = "conversationtranscriptid,name,content,metadata,conversationstarttime,createdon,_bot_conversationtranscriptid_value"

// skip is the position a $skiptoken holds: after the row with this key.
type skip struct {
	CreatedOn time.Time `json:"c"`
	ID        string    `json:"i"`
}

func (s *Server) serveTranscripts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rec := TranscriptRequest{Filter: q.Get("$filter"), Select: q.Get("$select"), OrderBy: q.Get("$orderby"), Prefer: r.Header.Get("Prefer")}
	s.mu.Lock()
	var fault TranscriptFault
	if len(s.transcripts.faults) > 0 {
		fault, s.transcripts.faults = s.transcripts.faults[0], s.transcripts.faults[1:]
	}
	now := s.nowLocked()
	rows := slices.Clone(s.transcripts.rows)
	s.mu.Unlock()
	rec.Fault = fault.Kind
	defer func() {
		s.mu.Lock()
		s.transcripts.requests = append(s.transcripts.requests, rec)
		s.mu.Unlock()
	}()

	badRequest := func(msg string) {
		rec.Status = http.StatusBadRequest
		writeError(w, http.StatusBadRequest, "0x80060888", msg)
	}
	if rec.Select != transcriptColumns {
		badRequest("The query parameter $select is not the one the receiver sends: " + rec.Select)
		return
	}
	if rec.OrderBy != "createdon asc,conversationtranscriptid asc" {
		badRequest("The query parameter $orderby is not the one the receiver sends: " + rec.OrderBy)
		return
	}
	m := filterShape.FindStringSubmatch(rec.Filter)
	if m == nil {
		badRequest("Syntax error at position 0 in '" + rec.Filter + "'.")
		return
	}
	from, _ := time.Parse(time.RFC3339Nano, m[1])
	bots := map[string]bool{}
	if m[2] != "" {
		for _, part := range strings.Split(m[2], " or ") {
			b := botShape.FindStringSubmatch(part)
			if b == nil {
				badRequest("Syntax error in '" + part + "'.")
				return
			}
			bots[strings.ToLower(b[1])] = true
		}
	}
	var after *skip
	if tok := q.Get("$skiptoken"); tok != "" {
		rec.SkipToken = true
		var sk skip
		raw, err := base64.RawURLEncoding.DecodeString(cookieValue(tok))
		if err != nil || json.Unmarshal(raw, &sk) != nil {
			badRequest("The $skiptoken is not valid.")
			return
		}
		after = &sk
	}

	switch fault.Kind {
	case FaultThrottle:
		wait := fault.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		rec.Status = http.StatusTooManyRequests
		writeError(w, http.StatusTooManyRequests, "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds.")
		return
	case FaultBadGateway, FaultUnavailable, FaultGatewayTimeout:
		rec.Status = map[TranscriptFaultKind]int{FaultBadGateway: 502, FaultUnavailable: 503, FaultGatewayTimeout: 504}[fault.Kind]
		writeError(w, rec.Status, "0x80040216", "An unexpected error occurred.")
		return
	case FaultRedirect:
		rec.Status = http.StatusTemporaryRedirect
		w.Header().Set("Location", fault.Location)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	case FaultForbidden:
		rec.Status = http.StatusForbidden
		writeError(w, http.StatusForbidden, "0x80040220", "Principal user (Id=00000000-0000-0000-0000-000000000000, type=8, roleCount=1) is missing prvReadconversationtranscript privilege (Id=2b3c1d3e-0000-0000-0000-000000000000) on OTC=10194 for entity 'conversationtranscript'.")
		return
	}

	pageSize := 5000
	if pm := pageSizePref.FindStringSubmatch(rec.Prefer); pm != nil {
		if n, _ := strconv.Atoi(pm[1]); n > 0 && n <= 5000 {
			pageSize = n
			w.Header().Set("Preference-Applied", "odata.maxpagesize="+pm[1])
		}
	}
	var value []map[string]any
	more := false
	var last Transcript
	for _, t := range rows {
		if t.VisibleAt.After(now) || t.CreatedOn.Before(from) || (len(bots) > 0 && !bots[strings.ToLower(t.BotID)]) {
			continue
		}
		if after != nil && compareTranscripts(t, Transcript{CreatedOn: after.CreatedOn, ID: after.ID}) <= 0 {
			continue
		}
		if len(value) == pageSize {
			more = true
			break
		}
		value = append(value, transcriptJSON(t))
		last = t
	}
	page := map[string]any{
		"@odata.context": s.URL + "/api/data/v9.2/$metadata#conversationtranscripts(" + transcriptColumns + ")",
		"value":          value,
	}
	if value == nil {
		page["value"] = []any{}
	}
	switch fault.Kind {
	case FaultSelfNextLink:
		page["@odata.nextLink"] = s.URL + r.URL.RequestURI()
		more = false
	case FaultEndlessNextLink:
		if !more {
			// Past the last row: a new position after it, every time.
			last = Transcript{CreatedOn: now.Add(time.Duration(len(s.TranscriptRequests())) * time.Second), ID: "ffffffff"}
			more = true
		}
	}
	if more {
		raw, _ := json.Marshal(skip{CreatedOn: last.CreatedOn, ID: last.ID})
		cookie := `<cookie pagenumber="2" pagingcookie="` + base64.RawURLEncoding.EncodeToString(raw) + `" istracking="False" />`
		base := s.URL
		if fault.Kind == FaultForeignNextLink {
			base = "https://evil.example.com"
		}
		qs := removeSkipToken(r.URL.RawQuery) + "&$skiptoken=" + url.QueryEscape(cookie)
		page["@odata.nextLink"] = base + r.URL.Path + "?" + qs
	}
	body, _ := json.Marshal(page)
	rec.Rows, rec.Bytes, rec.Status = len(value), len(body), http.StatusOK
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
	if fault.Kind == FaultCutBody {
		body = body[:len(body)/2]
	}
	_, _ = w.Write(body)
}

// cookieValue takes the pagingcookie attribute out of a $skiptoken.
func cookieValue(tok string) string {
	const attr = `pagingcookie="`
	i := strings.Index(tok, attr)
	if i < 0 {
		return ""
	}
	rest := tok[i+len(attr):]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

func removeSkipToken(raw string) string {
	var keep []string
	for _, part := range strings.Split(raw, "&") {
		if part != "" && !strings.HasPrefix(part, "$skiptoken=") && !strings.HasPrefix(part, "%24skiptoken=") {
			keep = append(keep, part)
		}
	}
	return strings.Join(keep, "&")
}

func transcriptJSON(t Transcript) map[string]any {
	return map[string]any{
		"@odata.etag":                         fmt.Sprintf(`W/"%d"`, t.CreatedOn.Unix()%1000000),
		"conversationtranscriptid":            t.ID,
		"name":                                t.Name,
		"content":                             t.Content,
		"metadata":                            t.Metadata,
		"conversationstarttime":               t.ConversationStart.UTC().Format("2006-01-02T15:04:05Z"),
		"createdon":                           t.CreatedOn.UTC().Format("2006-01-02T15:04:05Z"),
		"_bot_conversationtranscriptid_value": t.BotID,
	}
}

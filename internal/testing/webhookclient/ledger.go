package webhookclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/aktocheck"
)

// Record outcomes: the values of RecordHeader. Only Accepted promises the
// record was in the pipeline's hands when the call was answered.
const (
	Accepted   = "accepted"
	Deadline   = "deadline"
	Refused    = "refused"
	Overloaded = "overloaded"
	// Unanswered is the Ledger's name for a call that got no answer at all
	// (connection refused or reset: the collector was down or died).
	Unanswered = "unanswered"
)

// allowed is the only answer body observe mode gives.
var allowed = []byte(`{"blockAction":false}`)

// Ledger is the ground truth of a run of calls: each call sent, what its
// answer said, and the records a Kafka topic holds of it. Register a call
// with Sending before it goes out and its answer with Answered; Add each
// record read from the topic. Safe for concurrent use.
//
// A record is matched to its call by conversation and step id (request
// headers), never by its record id, which serves only to recognise
// repeats: every copy of a call must carry the same record id, and no two
// calls may share one.
type Ledger struct {
	// Epoch, when set, says how many SIGKILLs came before a record was
	// written at offset of partition (see harness.KillMarks): a repeat is
	// allowed only when a kill separates it from the copy before it.
	Epoch func(partition int32, offset int64) int

	mu       sync.Mutex
	calls    map[string]*ledgerEntry // by conversation id + step id
	order    []*ledgerEntry
	byRecord map[string]string // record id -> call key
	report   LedgerReport
	problems map[string]int
}

type ledgerEntry struct {
	call     Call
	outcome  string // "" until answered
	seen     int
	recordID string
	epoch    int // of the last copy seen
	wrong    bool
}

// LedgerReport is what a Ledger found.
type LedgerReport struct {
	Sent int
	// Answers counts the calls by what their answer said (RecordHeader:
	// Accepted, Deadline, Refused, Overloaded) or Unanswered.
	Answers map[string]int
	// Accepted calls are the ones that must reach the topic: Delivered of
	// them did, Lost did not.
	Accepted, Delivered, Lost int
	// DeliveredAnyway counts calls not answered Accepted (answered at the
	// deadline, or not answered at all) whose record arrived nonetheless.
	DeliveredAnyway int
	// Duplicated counts records repeating a call already seen; of them,
	// RepeatsWithNewRecordID carry another record id than the first copy
	// (never allowed) and RepeatsWithoutKill were not separated from the
	// copy before them by a SIGKILL (with Epoch set).
	Duplicated, RepeatsWithNewRecordID, RepeatsWithoutKill int
	// Wrong counts calls with a record that says something else than the
	// call (path, agent, tool, user's message, cross-tenant flag, verdict),
	// that carries one of the call's credentials, or shares its record id
	// with another call.
	Wrong int
	// Unexpected counts records of no call sent, and of calls answered
	// Overloaded (whose record the receiver never passes on).
	Unexpected int
	// BadAnswers counts answers other than 200 {"blockAction":false} with
	// a RecordHeader (an observe-mode receiver gives no other).
	BadAnswers int
	Records    int
	// MaxLatency is the longest answer; OverBudget counts answers that
	// took longer than Copilot Studio's 1-second budget.
	MaxLatency time.Duration
	OverBudget int
	Problems   []string
}

// Budget is how long Copilot Studio waits for an answer, network included.
const Budget = time.Second

// NewLedger is an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{calls: map[string]*ledgerEntry{}, byRecord: map[string]string{}, problems: map[string]int{},
		report: LedgerReport{Answers: map[string]int{}}}
}

func callKey(conversation, step string) string { return conversation + "\x00" + step }

// Sending registers a call about to be sent.
func (l *Ledger) Sending(c Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := callKey(c.ConversationID, c.StepID)
	if _, dup := l.calls[k]; dup {
		panic("webhookclient: two generated calls share conversation and step id " + k)
	}
	e := &ledgerEntry{call: c}
	l.calls[k] = e
	l.order = append(l.order, e)
	l.report.Sent++
}

// Answered records the answer to a call registered with Sending (err: the
// call got none).
func (l *Ledger) Answered(c Call, a Answer, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.calls[callKey(c.ConversationID, c.StepID)]
	if e == nil {
		panic("webhookclient: Answered for a call never registered with Sending")
	}
	r := &l.report
	if err != nil {
		e.outcome = Unanswered
		r.Answers[Unanswered]++
		if e.seen > 0 {
			l.settleUnaccepted(e)
		}
		return
	}
	r.MaxLatency = max(r.MaxLatency, a.Latency)
	if a.Latency > Budget {
		r.OverBudget++
	}
	switch a.Record {
	case Accepted, Deadline, Refused, Overloaded:
	default:
		a.Record = ""
	}
	if a.Status != 200 || !bytes.Equal(bytes.TrimSpace(a.Body), allowed) || a.Record == "" {
		r.BadAnswers++
		l.problem("answer", "call %s (%s): answered %d %q, %s %q; want 200 %s with a record outcome",
			c.ConversationID, c.Variant, a.Status, a.Body, RecordHeader, a.Record, allowed)
		e.outcome = fmt.Sprintf("status %d", a.Status)
		r.Answers[e.outcome]++
		return
	}
	e.outcome = a.Record
	r.Answers[a.Record]++
	if a.Record == Accepted {
		r.Accepted++
		if e.seen > 0 {
			r.Delivered++
		}
	} else if e.seen > 0 {
		l.settleUnaccepted(e)
	}
}

// settleUnaccepted counts a record of a call not answered Accepted.
func (l *Ledger) settleUnaccepted(e *ledgerEntry) {
	if e.outcome == Overloaded {
		l.report.Unexpected++
		l.problem("overloaded", "call %s was answered %s (its record never passed on) but reached the topic", e.call.ConversationID, Overloaded)
		return
	}
	l.report.DeliveredAnyway++
}

// toolCallRecord is what the Ledger reads of an Akto tool-call record.
type toolCallRecord struct {
	Path            string `json:"path"`
	RequestHeaders  string `json:"requestHeaders"`
	RequestPayload  string `json:"requestPayload"`
	ResponsePayload string `json:"responsePayload"`
	StatusCode      string `json:"statusCode"`
	Tag             string `json:"tag"`
}

// Add checks one record read from the topic at offset of partition.
func (l *Ledger) Add(value []byte, partition int32, offset int64) {
	epoch := 0
	if l.Epoch != nil {
		epoch = l.Epoch(partition, offset)
	}
	var rec toolCallRecord
	var headers, tag map[string]string
	var payload struct {
		Text string `json:"text"`
	}
	err := json.Unmarshal(value, &rec)
	if err == nil {
		err = errors.Join(json.Unmarshal([]byte(rec.RequestHeaders), &headers), json.Unmarshal([]byte(rec.Tag), &tag),
			json.Unmarshal([]byte(rec.RequestPayload), &payload))
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	r := &l.report
	r.Records++
	if err != nil {
		r.Unexpected++
		l.problem("undecodable", "record at %d/%d is not a tool-call record: %v: %.200q", partition, offset, err, value)
		return
	}
	e := l.calls[callKey(headers[schema.AktoHeaderConversationID], headers[schema.AktoHeaderStepID])]
	if e == nil {
		r.Unexpected++
		l.problem("unexpected", "record of no call sent: %s", rec.Path)
		return
	}
	id := headers[schema.AktoHeaderMessageID]
	e.seen++
	if e.seen == 1 {
		e.recordID, e.epoch = id, epoch
		switch e.outcome {
		case Accepted:
			r.Delivered++
		case "":
			// not answered yet: Answered counts it
		default:
			l.settleUnaccepted(e)
		}
	} else {
		r.Duplicated++
		if id != e.recordID {
			r.RepeatsWithNewRecordID++
			l.problem("newid", "call %s repeated under record id %q, first seen as %q", e.call.ConversationID, id, e.recordID)
		}
		if l.Epoch != nil && epoch <= e.epoch {
			r.RepeatsWithoutKill++
			l.problem("repeat", "call %s repeated with no SIGKILL since its previous copy (epoch %d)", e.call.ConversationID, epoch)
		}
		e.epoch = max(e.epoch, epoch)
	}
	if other, taken := l.byRecord[id]; id == "" || (taken && other != callKey(e.call.ConversationID, e.call.StepID)) {
		l.markWrong(e, "record id %q is empty or names another call too", id)
	}
	l.byRecord[id] = callKey(e.call.ConversationID, e.call.StepID)
	if diff := compareCall(&e.call, &rec, headers, tag, payload.Text, value); diff != "" {
		l.markWrong(e, "%s", diff)
	}
}

func (l *Ledger) markWrong(e *ledgerEntry, format string, args ...any) {
	if e.wrong {
		return
	}
	e.wrong = true
	l.report.Wrong++
	l.problem("wrong", "call %s (%s): %s", e.call.ConversationID, e.call.Variant, fmt.Sprintf(format, args...))
}

// compareCall says how a record differs from its call, or "".
func compareCall(c *Call, rec *toolCallRecord, headers, tag map[string]string, text string, value []byte) string {
	var diffs []string
	if !strings.HasPrefix(rec.Path, "/copilot/conversation/") || !strings.HasSuffix(rec.Path, "/tool/"+c.StepID) {
		diffs = append(diffs, fmt.Sprintf("path %q", rec.Path))
	}
	if bot, want := tag[schema.AktoTagBotName], aktocheck.Sanitize(c.AgentName); bot != want {
		diffs = append(diffs, fmt.Sprintf("bot-name %q, want %q", bot, want))
	}
	if tool := headers[schema.AktoHeaderToolID]; tool != c.ToolID {
		diffs = append(diffs, fmt.Sprintf("tool %q, want %q", tool, c.ToolID))
	}
	if cross := headers[schema.AktoHeaderCrossTenant] == "true"; cross != c.CrossTenant() {
		diffs = append(diffs, fmt.Sprintf("cross-tenant %t, want %t", cross, c.CrossTenant()))
	}
	if rec.StatusCode != "200" || rec.ResponsePayload != string(allowed) {
		diffs = append(diffs, fmt.Sprintf("verdict %s %q, want 200 %s", rec.StatusCode, rec.ResponsePayload, allowed))
	}
	for _, secret := range []string{c.Secret, c.Password} {
		if secret != "" && bytes.Contains(value, []byte(secret)) {
			diffs = append(diffs, fmt.Sprintf("carries the credential %.12s...", secret))
		}
	}
	// The user's message as sent, a credential in it masked: what is
	// around the credential is unchanged.
	if before, after, found := strings.Cut(c.UserMessage, c.Secret); c.Secret != "" && found {
		if !strings.HasPrefix(text, before) || !strings.HasSuffix(text, after) || len(text) <= len(before)+len(after) {
			diffs = append(diffs, fmt.Sprintf("user's message %q, want %q with its credential masked", text, c.UserMessage))
		}
	} else if text != c.UserMessage {
		diffs = append(diffs, fmt.Sprintf("user's message %q, want %q", text, c.UserMessage))
	}
	return strings.Join(diffs, "; ")
}

// Accepted is how many calls have been answered Accepted so far.
func (l *Ledger) Accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.report.Accepted
}

// Answers is how many calls have been answered with outcome so far.
func (l *Ledger) Answers(outcome string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.report.Answers[outcome]
}

// Delivered is how many calls answered Accepted are on the topic so far.
func (l *Ledger) Delivered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.report.Delivered
}

// Records is how many records have been added so far.
func (l *Ledger) Records() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.report.Records
}

// Report is the tally so far, the lost calls listed first.
func (l *Ledger) Report() LedgerReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.report
	r.Answers = make(map[string]int, len(l.report.Answers))
	for k, v := range l.report.Answers {
		r.Answers[k] = v
	}
	r.Lost = r.Accepted - r.Delivered
	var lost []string
	for _, e := range l.order {
		if e.outcome == Accepted && e.seen == 0 && len(lost) < maxProblemsPerKind {
			lost = append(lost, fmt.Sprintf("lost: call %s (%s, %s), answered %s", e.call.ConversationID, e.call.Variant, e.call.AgentName, Accepted))
		}
	}
	r.Problems = append(lost, slices.Clone(l.report.Problems)...)
	return r
}

// maxProblemsPerKind bounds LedgerReport.Problems.
const maxProblemsPerKind = 5

func (l *Ledger) problem(kind, format string, args ...any) {
	if l.problems[kind] >= maxProblemsPerKind {
		return
	}
	l.problems[kind]++
	l.report.Problems = append(l.report.Problems, fmt.Sprintf(format, args...))
}

// Err is nil when every call answered Accepted reached the topic once,
// correctly, every answer was 200 {"blockAction":false}, and nothing else
// arrived; with repeatsAllowed, repeats are accepted too when they carry
// the first copy's record id and (with Epoch) a SIGKILL came between.
func (r LedgerReport) Err(repeatsAllowed bool) error {
	if r.Lost == 0 && r.Wrong == 0 && r.Unexpected == 0 && r.BadAnswers == 0 && r.RepeatsWithNewRecordID == 0 &&
		r.RepeatsWithoutKill == 0 && (repeatsAllowed || r.Duplicated == 0) {
		return nil
	}
	return errors.New(r.String())
}

func (r LedgerReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "calls sent %d, answered %s; accepted %d: delivered %d, lost %d; not accepted but delivered %d; duplicated %d (%d under a new record id, %d with no SIGKILL between), wrong %d, unexpected records %d, bad answers %d, records %d; slowest answer %v (%d over %v)",
		r.Sent, formatAnswers(r.Answers), r.Accepted, r.Delivered, r.Lost, r.DeliveredAnyway, r.Duplicated, r.RepeatsWithNewRecordID,
		r.RepeatsWithoutKill, r.Wrong, r.Unexpected, r.BadAnswers, r.Records, r.MaxLatency.Round(time.Millisecond), r.OverBudget, Budget)
	for _, p := range r.Problems {
		b.WriteString("\n  ")
		b.WriteString(p)
	}
	return b.String()
}

// formatAnswers lists the answer counts, the record outcomes first.
func formatAnswers(answers map[string]int) string {
	keys := make([]string, 0, len(answers))
	for k := range answers {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if i := slices.Index([]string{Accepted, Deadline, Refused, Overloaded, Unanswered}, k); i >= 0 {
			return i
		}
		return 99
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := rank(a) - rank(b); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", answers[k], k)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

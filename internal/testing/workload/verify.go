package workload

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Report is what a Verifier found. Counts are of turns, except Duplicated,
// Unexpected and Undecodable, which count records.
type Report struct {
	Expected   int // turns in the ground truth
	Delivered  int // expected turns seen at least once
	Lost       int // expected turns never seen
	Duplicated int // records repeating a turn already seen (allowed after a crash, with the same turn id)
	// RepeatsWithNewTurnID are repeats whose turn id differs from the first
	// record's: a consumer cannot drop them, so they are never allowed.
	RepeatsWithNewTurnID int
	Wrong                int // expected turns with a record whose request, replies, agent, channel, time or outcome differ
	Unexpected           int // records that match no expected turn
	Undecodable          int // records that are not Akto traffic records at all (also counted in Unexpected)
	Records              int // records seen
	// OptionalDelivered counts turns declared Optional that arrived (they
	// are checked like the others but not counted as lost when absent).
	OptionalDelivered int
	// Ignored counts records of conversations declared Ignore (bad input,
	// whose fate the caller judges from IgnoredRecords).
	Ignored int
	// Problems explains the first few of each kind, for a failure message.
	Problems []string
}

// Err is nil when every expected turn was delivered once, correctly paired,
// and nothing else arrived; with repeatsAllowed, repeats carrying the first
// record's turn id are accepted too (the crash case).
func (r Report) Err(repeatsAllowed bool) error {
	if r.Lost == 0 && r.Wrong == 0 && r.Unexpected == 0 && r.RepeatsWithNewTurnID == 0 &&
		(repeatsAllowed || r.Duplicated == 0) {
		return nil
	}
	return errors.New(r.String())
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "turns expected %d, delivered %d, lost %d, duplicated %d (%d under a new turn id), wrong %d, unexpected records %d (%d undecodable), records %d",
		r.Expected, r.Delivered, r.Lost, r.Duplicated, r.RepeatsWithNewTurnID, r.Wrong, r.Unexpected, r.Undecodable, r.Records)
	if r.OptionalDelivered > 0 || r.Ignored > 0 {
		fmt.Fprintf(&b, ", optional turns delivered %d, ignored records %d", r.OptionalDelivered, r.Ignored)
	}
	for _, p := range r.Problems {
		b.WriteString("\n  ")
		b.WriteString(p)
	}
	return b.String()
}

// maxProblemsPerKind bounds Report.Problems so a broken run stays readable.
const maxProblemsPerKind = 5

// Verifier checks delivered Akto records against the expected turns. Add
// records as they are consumed (it is safe for concurrent use) and ask for
// the Report at the end; Delivered tells a test when everything has arrived.
type Verifier struct {
	mu       sync.Mutex
	expected map[turnKey]*expectation
	order    []*expectation // ground-truth order, for stable reports
	ignore   map[string]bool
	ignored  []Delivered
	report   Report
	problems map[string]int // per kind, to cap Problems
}

// turnKey finds the expected turn of a record without the processor's turn
// id: the conversation and the user message's activity id, or for a greeting
// the text of its first reply.
type turnKey struct{ conversation, request string }

type expectation struct {
	turn        *Turn
	optional    bool
	seen        int
	firstTurnID string
	wrong       bool
}

func keyOf(conversation, requestActivityID string, replies []string) (turnKey, bool) {
	if requestActivityID != "" {
		return turnKey{conversation, "activity\x00" + requestActivityID}, true
	}
	if len(replies) > 0 {
		return turnKey{conversation, "greeting\x00" + normalizeText(replies[0])}, true
	}
	return turnKey{}, false
}

// NewVerifier expects exactly the given turns. It panics if two of them
// cannot be told apart, which is a bug in the ground truth, not in the
// pipeline under test.
func NewVerifier(turns []Turn) *Verifier {
	v := &Verifier{expected: make(map[turnKey]*expectation, len(turns)), ignore: map[string]bool{}, problems: map[string]int{}}
	v.expect(turns, false)
	return v
}

// Expect adds turns that must arrive, like those given to NewVerifier.
func (v *Verifier) Expect(turns []Turn) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.expect(turns, false)
}

// Optional adds turns that may or may not arrive: rows the pipeline is not
// promised to fetch (ingested later than the overlap reaches back). If they
// arrive they must be right and arrive once, like the others.
func (v *Verifier) Optional(turns []Turn) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.expect(turns, true)
}

// Ignore sets conversations aside: their records are collected for
// IgnoredRecords and counted as Ignored, neither expected nor unexpected.
// For bad input, whose outcome the caller checks itself.
func (v *Verifier) Ignore(conversationIDs ...string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, id := range conversationIDs {
		v.ignore[id] = true
	}
}

// IgnoredRecords are the decoded records of ignored conversations.
func (v *Verifier) IgnoredRecords() []Delivered {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.ignored)
}

func (v *Verifier) expect(turns []Turn, optional bool) {
	for i := range turns {
		t := &turns[i]
		k, ok := keyOf(t.ConversationID, t.RequestActivityID, t.Replies)
		if !ok {
			panic(fmt.Sprintf("workload: turn %d of %s has neither a request nor a reply", t.Index, t.ConversationID))
		}
		if _, dup := v.expected[k]; dup {
			panic(fmt.Sprintf("workload: two expected turns of %s share the key %q", t.ConversationID, k.request))
		}
		e := &expectation{turn: t, optional: optional}
		v.expected[k] = e
		v.order = append(v.order, e)
		if !optional {
			v.report.Expected++
		}
	}
}

// Add checks one Kafka record value.
func (v *Verifier) Add(value []byte) {
	d, err := DecodeAkto(value)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.report.Records++
	if err != nil {
		v.report.Undecodable++
		v.report.Unexpected++
		v.problem("undecodable", "undecodable record: %v: %.200q", err, value)
		return
	}
	if v.ignore[d.ConversationID] {
		v.report.Ignored++
		v.ignored = append(v.ignored, d)
		return
	}
	k, ok := keyOf(d.ConversationID, d.RequestActivityID, d.Replies)
	e := v.expected[k]
	if !ok || e == nil {
		v.report.Unexpected++
		v.problem("unexpected", "unexpected record: conversation %q, request activity %q, text %.80q, replies %.160q",
			d.ConversationID, d.RequestActivityID, d.RequestText, d.Replies)
		return
	}
	e.seen++
	if e.seen == 1 {
		if e.optional {
			v.report.OptionalDelivered++
		} else {
			v.report.Delivered++
		}
		e.firstTurnID = d.TurnID
	} else {
		v.report.Duplicated++
		if d.TurnID != e.firstTurnID || d.TurnID == "" {
			v.report.RepeatsWithNewTurnID++
			v.problem("newid", "turn %d of %q repeated under turn id %q, first seen as %q",
				e.turn.Index, e.turn.ConversationID, d.TurnID, e.firstTurnID)
		}
	}
	if diff := compare(e.turn, &d); diff != "" && !e.wrong {
		e.wrong = true
		v.report.Wrong++
		v.problem("wrong", "turn %d of %q (%s) is wrong: %s", e.turn.Index, e.turn.ConversationID, e.turn.Channel, diff)
	}
}

// Delivered is how many expected turns have been seen so far.
func (v *Verifier) Delivered() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.report.Delivered
}

// OptionalDelivered is how many Optional turns have been seen so far.
func (v *Verifier) OptionalDelivered() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.report.OptionalDelivered
}

// Records is how many records have been added so far.
func (v *Verifier) Records() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.report.Records
}

// Report is the tally so far, with the lost turns listed first.
func (v *Verifier) Report() Report {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := v.report
	r.Lost = r.Expected - r.Delivered
	var lost []string
	for _, e := range v.order {
		if e.seen == 0 && !e.optional && len(lost) < maxProblemsPerKind {
			t := e.turn
			lost = append(lost, fmt.Sprintf("lost: turn %d of %q (%s, %s, greeting %t, %d replies, request %.60q)",
				t.Index, t.ConversationID, t.Agent, t.Channel, t.Greeting(), len(t.Replies), t.RequestText))
		}
	}
	r.Problems = append(lost, slices.Clone(v.report.Problems)...)
	return r
}

func (v *Verifier) problem(kind, format string, args ...any) {
	if v.problems[kind] >= maxProblemsPerKind {
		return
	}
	v.problems[kind]++
	v.report.Problems = append(v.report.Problems, fmt.Sprintf(format, args...))
}

// Verify checks a complete set of record values in one go.
func Verify(turns []Turn, values [][]byte) Report {
	v := NewVerifier(turns)
	for _, val := range values {
		v.Add(val)
	}
	return v.Report()
}

// compare says how a delivered record differs from its turn, or "".
func compare(t *Turn, d *Delivered) string {
	var diffs []string
	if normalizeText(t.RequestText) != normalizeText(d.RequestText) {
		diffs = append(diffs, fmt.Sprintf("request text %.80q, want %.80q", d.RequestText, t.RequestText))
	}
	if !slices.EqualFunc(t.Replies, d.Replies, func(a, b string) bool { return normalizeText(a) == normalizeText(b) }) {
		diffs = append(diffs, fmt.Sprintf("replies %.300q, want %.300q", d.Replies, t.Replies))
	}
	if t.Failed != d.Failed {
		diffs = append(diffs, fmt.Sprintf("failed %t, want %t", d.Failed, t.Failed))
	}
	if d.BotName != SanitizeAgentName(t.Agent, false) && d.BotName != SanitizeAgentName(t.Agent, true) {
		diffs = append(diffs, fmt.Sprintf("bot-name %q, want %q", d.BotName, SanitizeAgentName(t.Agent, false)))
	}
	if d.Channel != t.Channel {
		diffs = append(diffs, fmt.Sprintf("channel %q, want %q", d.Channel, t.Channel))
	}
	if !t.Greeting() {
		if want := strconv.FormatInt(t.RequestTime.Unix(), 10); d.Time != want {
			diffs = append(diffs, fmt.Sprintf("time %q, want %q", d.Time, want))
		}
	}
	return strings.Join(diffs, "; ")
}

// normalizeText makes a text comparable after a JSON round trip: invalid
// UTF-8 comes back as U+FFFD (one per byte or one per run, depending on the
// encoder), so every run of invalid bytes and replacement characters counts
// as one U+FFFD.
func normalizeText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, utf8.RuneError) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	for strings.Contains(s, "\uFFFD\uFFFD") {
		s = strings.ReplaceAll(s, "\uFFFD\uFFFD", "\uFFFD")
	}
	return s
}

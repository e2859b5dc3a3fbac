package pairing

import (
	"math"
	"time"
)

// Kind is what a telemetry row is to a turn.
type Kind uint8

const (
	KindFlow    Kind = iota + 1 // TopicStart/End, GenerativeAnswers, Agent*, updates, custom events
	KindRequest                 // BotMessageReceived of type message: the user speaks
	KindEvent                   // any other BotMessageReceived (event, invoke, conversationUpdate, ...)
	KindReply                   // BotMessageSend: the agent speaks
	KindAction                  // TopicAction
	KindError                   // OnErrorLog: the turn failed
	// KindStep is what a generative agent did, from a transcript: its
	// plan, a tool step, a knowledge search (DynamicPlan*,
	// UniversalSearchToolTraceData, KnowledgeTraceData). It joins the turn
	// of the user message its reply-to id names, as a reply does.
	KindStep
	// KindStepError is a step that failed or was blocked, or an error trace
	// (ErrorTraceData, DynamicServerError): a KindStep that fails its turn.
	KindStepError
	// KindContext is a conversation-level trace (ConversationInfo,
	// SessionInfo): it belongs to no turn. It opens none, is held with the
	// turn time puts it in (before the first turn: with that turn) and
	// leaves with it, but is in no turn's output; a turn of nothing else is
	// not emitted (Selection.Absorbed counts such rows).
	KindContext
	kindLimit
)

// Valid reports whether k is one of the kinds above (stored state is
// checked with it).
func (k Kind) Valid() bool { return k > 0 && k < kindLimit }

// IsStep reports whether k is a plan, step or error activity (KindStep,
// KindStepError).
func (k Kind) IsStep() bool { return k.in(steps) }

// kindSet is a set of kinds. What a kind does in pairing is which of the
// sets below it belongs to: a new kind is added to those sets, and the
// planner, the turn and the memory accounting follow.
type kindSet uint32

func (k Kind) in(s kindSet) bool { return s&(1<<k) != 0 }

const (
	// opensTurn: a user message starts a turn.
	opensTurn = kindSet(1 << KindRequest)
	// asks: the activities a reply-to id can name; a row that names one
	// joins its turn.
	asks = kindSet(1<<KindRequest | 1<<KindEvent)
	// joinsByReplyTo: rows placed by their reply-to id when they have one
	// (and it names an ask), rather than by time.
	joinsByReplyTo = kindSet(1<<KindReply | 1<<KindStep | 1<<KindStepError)
	// answers: the agent speaks. A turn holding one is answered; a turn
	// without a user message opens with the first of them.
	answers = kindSet(1 << KindReply)
	// fails: the turn failed.
	fails = kindSet(1<<KindError | 1<<KindStepError)
	// steps: what the agent did, in the turn's steps.
	steps = kindSet(1<<KindStep | 1<<KindStepError)
	// conversationLevel: belongs to no turn (see KindContext).
	conversationLevel = kindSet(1 << KindContext)
	// namedDetail: Detail is a name repeated on most rows (a node kind),
	// kept once like topic names.
	namedDetail = kindSet(1 << KindAction)
)

// Row is one telemetry row, reduced to what pairing and output need. Its
// strings may share memory with the record it was decoded from (pdata does
// not copy on read), so a buffered row costs its 128 bytes and nothing
// more. The core owns the rows it holds: a *Row handed out (Turn.Row,
// Conversation.Rows) is read-only.
type Row struct {
	// The first 64 bytes hold what ordering and planning read for every
	// row (rows are two cache lines; planning a conversation mostly
	// touches only the first line of each row).
	At int64 // event time, Unix nanoseconds
	// lagLow and lagHigh are how long after At the row was ingested, in
	// milliseconds (negative when the event's clock ran ahead): the low 32
	// and the high 16 bits, 6 bytes around Kind where the ingestion time
	// itself would take 8. A transcript's rows are ingested when it is
	// written, which can be weeks after its activities: the lag is kept
	// whole, or the watermark would lose that row's ingestion time. Set it
	// with SetObserved or SetLagMillis.
	lagLow   uint32
	Kind     Kind
	lagHigh  int16
	Item     ItemID // unique per row
	Activity string // the activity's own id (request, event, reply)

	ReplyTo string // reply: the activity id it answers
	Text    string // request and reply text; error message
	Topic   string // topic name (flow, action, error rows)
	// Detail depends on Kind: request: the user id; action: the node kind
	// (SendActivity, HttpRequest, ...); error: the error code; step: what
	// the processor packs of the activity (its type, name, tool, state).
	// For a step, Text is the activity's value, JSON text as sent.
	Detail string
}

// Observed is the row's ingestion time, Unix nanoseconds, at millisecond
// precision. Every completion decision is made on it, never on event time,
// which a fast clock can put ahead.
func (r *Row) Observed() int64 { return r.At + r.LagMillis()*int64(time.Millisecond) }

// SetObserved records the ingestion time.
func (r *Row) SetObserved(observed int64) {
	r.SetLagMillis((observed - r.At) / int64(time.Millisecond))
}

// LagMillis is how long after its event time the row was ingested, in
// milliseconds.
func (r *Row) LagMillis() int64 { return int64(r.lagHigh)<<32 | int64(r.lagLow) }

// maxLagMillis is the longest lag kept: what a time.Duration holds (292
// years). Only a garbage timestamp is further from its ingestion time.
const maxLagMillis = math.MaxInt64 / int64(time.Millisecond)

// SetLagMillis records the ingestion time as a lag after the event time,
// in milliseconds; one past maxLagMillis is clamped.
func (r *Row) SetLagMillis(lag int64) {
	lag = min(max(lag, -maxLagMillis), maxLagMillis)
	r.lagLow, r.lagHigh = uint32(lag), int16(lag>>32)
}

// before orders rows by event time, ties by item id, so that the order is
// the same whatever order the rows arrived in.
func (r *Row) before(o *Row) bool {
	if r.At != o.At {
		return r.At < o.At
	}
	return r.Item.compare(o.Item) < 0
}

// Context is what a row carries that belongs to its conversation rather
// than to the row: the first non-empty channel and locale are kept.
type Context struct {
	Conversation string // required
	Channel      string
	Locale       string
}

// Source is a handle the caller gives each distinct source of rows (an
// agent's resource): the core keeps it with the conversation and hands it
// back, and never looks inside.
type Source uint32

// Input is one row to add, with its conversation and source.
type Input struct {
	Row     Row
	Context Context
	Source  Source

	conv *Conversation // looked up by Add
}

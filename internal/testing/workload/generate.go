package workload

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// Config says what to generate. Start from DefaultConfig: the rates are used
// as given, so a zero rate means "never".
type Config struct {
	Seed          uint64
	Conversations int
	// Conversations start at uniformly random times in [Start, Start+Span).
	// A zero Start is 2026-02-18T00:00:00Z; a zero Span is one hour.
	Start time.Time
	Span  time.Duration
	// Agents talked to; nil means DefaultAgents.
	Agents []Agent

	GreetingRate       float64 // share of conversations that open with a greeting
	MissingReplyIDRate float64 // share of replies logged without replyActivityId
	// LateRate is the share of conversations ingested late: all their rows
	// 10 minutes to 10m+MaxLateDelay after the usual 20 s to 3 min, as when
	// a batch of telemetry is held up. Their event times then lie far behind
	// their ingestion times, which only an ingestion-time cursor gets right.
	LateRate     float64
	MaxLateDelay time.Duration
	// FixedIngestionDelay, when set, replaces the random 20 s to 3 min: every
	// row is ingested exactly this long after its event (plus lateness), so
	// a conversation's rows arrive in event order with event-time gaps.
	FixedIngestionDelay time.Duration
}

// DefaultConfig is a realistic mix: half the conversations greet first, one
// reply in twelve has no replyActivityId, one conversation in fifty is
// ingested up to two hours late.
func DefaultConfig(seed uint64, conversations int) Config {
	return Config{
		Seed:               seed,
		Conversations:      conversations,
		GreetingRate:       0.5,
		MissingReplyIDRate: 1.0 / 12,
		LateRate:           0.02,
		MaxLateDelay:       2 * time.Hour,
	}
}

// DefaultStart is where conversations start when Config.Start is zero.
var DefaultStart = time.Date(2026, 2, 18, 0, 0, 0, 0, time.UTC)

// Turn is what one correctly paired record must say: a user message (empty
// for a greeting) with the agent's replies in send order.
type Turn struct {
	ConversationID string
	Agent          string // display name, as cloud_RoleInstance has it
	Channel        string
	Index          int // position in its conversation, greeting included, from 0

	RequestText       string
	RequestActivityID string    // empty for a greeting
	RequestTime       time.Time // the user message's timestamp; zero for a greeting
	Replies           []string  // reply texts in send order; none for an unanswered message
	Failed            bool      // an OnErrorLog row belongs to the turn

	ItemIDs []string // every row the turn holds, in event-time order
}

// Greeting reports whether the turn has replies but no user message.
func (t *Turn) Greeting() bool { return t.RequestActivityID == "" }

// Conversation is one generated conversation: its rows in event-time order
// and its turns in order.
type Conversation struct {
	ID      string
	Agent   string
	Channel string
	Rows    []Row
	Turns   []Turn
}

// Workload is a whole generated data set.
type Workload struct {
	Rows          []Row  // ordered by ingestion time, then item id
	Turns         []Turn // by conversation, then turn order
	Conversations int
}

// Generate builds the whole workload in memory. For very large runs prefer
// ForEachConversation, which holds one conversation at a time.
func Generate(cfg Config) *Workload {
	w := &Workload{Conversations: cfg.Conversations}
	ForEachConversation(cfg, func(c Conversation) {
		w.Rows = append(w.Rows, c.Rows...)
		w.Turns = append(w.Turns, c.Turns...)
	})
	SortByIngestion(w.Rows)
	return w
}

// SortByIngestion orders rows as an ingestion-time cursor reads them.
func SortByIngestion(rows []Row) {
	slices.SortFunc(rows, func(a, b Row) int {
		if c := a.IngestionTime.Compare(b.IngestionTime); c != 0 {
			return c
		}
		return strings.Compare(a.ItemID, b.ItemID)
	})
}

// ForEachConversation generates the conversations one by one, in order.
// Conversation i depends only on (Seed, i), so any one can be regenerated
// alone and the sequence is the same on every run.
func ForEachConversation(cfg Config, fn func(Conversation)) {
	if cfg.Agents == nil {
		cfg.Agents = DefaultAgents
	}
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	if cfg.Span == 0 {
		cfg.Span = time.Hour
	}
	g := &generator{cfg: cfg}
	for i := range cfg.Conversations {
		fn(g.conversation(i))
	}
}

// generator holds the state of the conversation being built.
type generator struct {
	cfg Config
	rng *rand.Rand
	buf []byte // reused for customDimensions

	conv       Conversation
	agent      *Agent
	userID     string
	userName   string
	locale     string
	designKey  string // "designMode" or "DesignMode": both spellings exist
	designMode string
	teams      []dim         // extra dimensions on msteams
	late       time.Duration // extra ingestion delay of a late conversation
	at         time.Time
	seq        int // Direct Line activity sequence number
	turn       *Turn
}

func (g *generator) conversation(i int) Conversation {
	g.rng = rand.New(rand.NewPCG(g.cfg.Seed, uint64(i)))
	g.agent = &g.cfg.Agents[g.rng.IntN(len(g.cfg.Agents))]
	channel := pick(g.rng, g.agent.Channels)
	g.conv = Conversation{ID: g.conversationID(channel), Agent: g.agent.Name, Channel: channel}
	g.at = g.cfg.Start.Add(time.Duration(g.rng.Int64N(int64(g.cfg.Span)))).Truncate(time.Millisecond)
	g.seq = 0
	g.late = 0
	if g.cfg.LateRate > 0 && g.rng.Float64() < g.cfg.LateRate {
		g.late = 10*time.Minute + time.Duration(g.rng.Int64N(int64(max(g.cfg.MaxLateDelay, time.Second))))
	}
	g.locale = pick(g.rng, locales)
	g.userName = pick(g.rng, firstNames) + " " + pick(g.rng, lastNames)
	g.designKey = "DesignMode"
	if g.rng.IntN(2) == 0 {
		g.designKey = "designMode"
	}
	g.designMode = "False"
	if channel == "pva-studio" {
		g.designMode = "True"
	}
	g.teams = nil
	switch channel {
	case "msteams":
		g.userID = "29:1" + g.token(43)
		g.teams = []dim{{"TeamsTenantId", g.guid()}, {"TeamsUserAadObjectId", g.guid()}}
	case "webchat", "directline":
		g.userID = "dl_" + g.guid()
	default:
		g.userID = g.guid()
	}

	if g.rng.Float64() < g.cfg.GreetingRate {
		g.greeting()
	}
	for n := 1 + g.geometric(0.35, 8); n > 0; n-- {
		g.userTurn()
	}
	g.closeTurn()
	return g.conv
}

// greeting: the agent speaks first, sometimes in answer to the canvas's
// startConversation event (or Teams' conversationUpdate), which is not a
// user message and so opens no request.
func (g *generator) greeting() {
	g.openTurn("", "", time.Time{})
	replyTo := ""
	if g.rng.IntN(2) == 0 {
		kind, name := "event", "startConversation"
		if g.conv.Channel == "msteams" {
			kind, name = "conversationUpdate", ""
		}
		replyTo = g.activityID()
		dims := []dim{{"type", kind}}
		if name != "" {
			dims = append(dims, dim{"name", name})
		}
		dims = append(dims, dim{"channelId", g.conv.Channel}, dim{"conversationId", g.conv.ID},
			dim{"activityId", replyTo}, dim{"fromId", g.userID}, dim{"recipientId", g.agentID()},
			dim{"recipientName", g.agent.Name}, dim{"locale", g.locale}, dim{g.designKey, g.designMode})
		g.emit(schema.EventMessageReceived, append(dims, g.teams...))
	}
	g.topic("Greeting", "OnConversationStart")
	g.action("Greeting", "SendActivity")
	g.reply(replyTo, fmt.Sprintf(pick(g.rng, greetings), g.agent.Name))
	if g.rng.IntN(3) == 0 {
		g.reply(replyTo, pick(g.rng, greetingFollowUps))
	}
	g.topicEnd("Greeting")
}

// userTurn: a user message and what the agent does about it.
func (g *generator) userTurn() {
	g.advance(4*time.Second, 90*time.Second)
	text := fmt.Sprintf(pick(g.rng, g.agent.Asks), pick(g.rng, g.agent.Subjects))
	id := g.activityID()
	g.openTurn(text, id, g.at)
	dims := []dim{{"type", "message"}, {"channelId", g.conv.Channel}, {"conversationId", g.conv.ID},
		{"activityId", id}, {"fromId", g.userID}, {"fromName", g.userName}, {"recipientId", g.agentID()},
		{"recipientName", g.agent.Name}, {"locale", g.locale}, {g.designKey, g.designMode}, {"text", text}}
	g.emit(schema.EventMessageReceived, append(dims, g.teams...))

	topic := pick(g.rng, g.agent.Topics)
	switch p := g.rng.Float64(); {
	case p < 0.50: // a topic answers
		g.topic(topic, "OnRecognizedIntent")
		for n := 1 + g.rng.IntN(3); n > 0; n-- {
			g.action(topic, pick(g.rng, actionKinds))
		}
		g.reply(id, g.answer())
		if g.rng.IntN(10) < 3 {
			g.reply(id, pick(g.rng, answerSentences))
		}
		if g.rng.IntN(2) == 0 {
			g.topicEnd(topic)
		}
	case p < 0.80: // generative answers: a detailed answer, then a summary, sometimes a follow-up
		g.topic("ConversationalBoosting", "OnUnknownIntent")
		g.action("ConversationalBoosting", "SearchAndSummarizeContent")
		answer := g.answer()
		g.emit(schema.EventGenerative, []dim{{"conversationId", g.conv.ID}, {"channelId", g.conv.Channel},
			{"TopicName", g.topicName("ConversationalBoosting")}, {"Message", text}, {"Result", "Answered"},
			{"Summary", answer[:min(len(answer), 60)]}, {g.designKey, g.designMode}})
		g.reply(id, answer)
		g.reply(id, pick(g.rng, summaryLeads)+pick(g.rng, answerSentences))
		if g.rng.IntN(4) == 0 {
			g.reply(id, "Was this answer helpful?")
		}
	case p < 0.88: // nobody answers
	case p < 0.95: // fails, and says so
		g.topic(topic, "OnRecognizedIntent")
		g.action(topic, "InvokeFlowAction")
		code := g.fail()
		g.reply(id, fmt.Sprintf(pick(g.rng, errorReplies), code, g.conv.ID, g.at.Format(time.RFC3339)))
	default: // fails silently
		g.topic(topic, "OnRecognizedIntent")
		g.action(topic, "HttpRequest")
		g.fail()
	}
}

func (g *generator) fail() string {
	code := pick(g.rng, errorCodes)
	g.turn.Failed = true
	g.emit(schema.EventOnErrorLog, []dim{{"conversationId", g.conv.ID}, {"channelId", g.conv.Channel},
		{"ErrorCode", code}, {"ErrorMessage", "The action failed: " + code + " (" + g.token(8) + ")"}, {g.designKey, g.designMode}})
	return code
}

func (g *generator) topic(short, trigger string) {
	g.emit(schema.EventTopicStart, []dim{{"conversationId", g.conv.ID}, {"channelId", g.conv.Channel},
		{"TopicName", g.topicName(short)}, {"Trigger", trigger}, {"Action", "Started"}, {g.designKey, g.designMode}})
}

func (g *generator) topicEnd(short string) {
	g.emit(schema.EventTopicEnd, []dim{{"conversationId", g.conv.ID}, {"channelId", g.conv.Channel},
		{"TopicName", g.topicName(short)}, {"Action", "Ended"}, {g.designKey, g.designMode}})
}

func (g *generator) action(short, kind string) {
	g.emit(schema.EventTopicAction, []dim{{"conversationId", g.conv.ID}, {"channelId", g.conv.Channel},
		{"TopicName", g.topicName(short)}, {"TopicId", g.topicName(short)}, {"Kind", kind},
		{"ActionId", strings.ToLower(kind[:1]) + kind[1:] + "_" + g.token(6)}, {g.designKey, g.designMode}})
}

// reply logs a BotMessageSend answering replyTo; some replies are logged
// without replyActivityId, as real telemetry sometimes is.
func (g *generator) reply(replyTo, text string) {
	dims := []dim{{"conversationId", g.conv.ID}, {"channelId", g.conv.Channel}}
	if replyTo != "" && g.rng.Float64() >= g.cfg.MissingReplyIDRate {
		dims = append(dims, dim{"replyActivityId", replyTo})
	}
	dims = append(dims, dim{"recipientId", g.userID}, dim{"recipientName", g.userName},
		dim{"locale", g.locale}, dim{g.designKey, g.designMode}, dim{"text", text})
	g.advance(300*time.Millisecond, 4*time.Second)
	g.emit(schema.EventMessageSend, dims)
	g.turn.Replies = append(g.turn.Replies, text)
}

// answer is a reply body with a reference number, so that two turns' replies
// are almost never the same text and a reply attached to the wrong turn shows.
func (g *generator) answer() string {
	var b strings.Builder
	b.WriteString(pick(g.rng, answerSentences))
	b.WriteByte(' ')
	b.WriteString(pick(g.rng, answerSentences))
	if g.rng.IntN(3) == 0 {
		b.WriteString("\n\n- ")
		b.WriteString(pick(g.rng, answerSentences))
	}
	b.WriteString(" Reference: KB")
	b.WriteString(strconv.Itoa(100000 + g.rng.IntN(900000)))
	b.WriteByte('.')
	return b.String()
}

func (g *generator) openTurn(text, activityID string, at time.Time) {
	g.closeTurn()
	g.conv.Turns = append(g.conv.Turns, Turn{
		ConversationID: g.conv.ID, Agent: g.agent.Name, Channel: g.conv.Channel, Index: len(g.conv.Turns),
		RequestText: text, RequestActivityID: activityID, RequestTime: at,
	})
	g.turn = &g.conv.Turns[len(g.conv.Turns)-1]
}

func (g *generator) closeTurn() { g.turn = nil }

// emit appends a row to the current turn, a little after the previous one:
// rows of a conversation never share a timestamp, so "sent before" is exact.
func (g *generator) emit(name string, dims []dim) {
	if name != schema.EventMessageSend && (name != schema.EventMessageReceived || g.turn.RequestTime.IsZero()) {
		g.advance(50*time.Millisecond, 400*time.Millisecond)
	}
	g.buf = encodeDims(g.buf[:0], dims)
	row := Row{
		Timestamp:        g.at,
		Name:             name,
		ItemID:           g.guid(),
		CustomDimensions: string(g.buf),
		RoleInstance:     g.agent.Name,
		IngestionTime:    g.at.Add(g.ingestionDelay()),
	}
	g.conv.Rows = append(g.conv.Rows, row)
	g.turn.ItemIDs = append(g.turn.ItemIDs, row.ItemID)
}

// ingestionDelay: 20 s to 3 min (the reference's "typically"), plus the
// conversation's lateness.
func (g *generator) ingestionDelay() time.Duration {
	if g.cfg.FixedIngestionDelay > 0 {
		return g.cfg.FixedIngestionDelay + g.late
	}
	d := 20*time.Second + time.Duration(g.rng.ExpFloat64()*float64(30*time.Second))
	return (min(d, 3*time.Minute) + g.late).Truncate(time.Millisecond)
}

func (g *generator) advance(lo, hi time.Duration) {
	g.at = g.at.Add(lo + time.Duration(g.rng.Int64N(int64(hi-lo)))).Truncate(time.Millisecond)
}

func (g *generator) topicName(short string) string { return g.agent.Schema + ".topic." + short }

func (g *generator) agentID() string {
	if g.conv.Channel == "msteams" {
		return "28:" + g.agent.Schema
	}
	return g.agent.Schema
}

// conversationID in the shape each channel uses. Teams ids run past 130
// characters and channel threads carry ':', '@', ';' and '=', which the
// record path must escape.
func (g *generator) conversationID(channel string) string {
	switch channel {
	case "msteams":
		if g.rng.IntN(5) == 0 {
			return "19:" + g.token(32) + "@thread.v2;messageid=" + strconv.FormatInt(1700000000000+g.rng.Int64N(1e11), 10)
		}
		return "a:1" + g.token(130+g.rng.IntN(20))
	case "webchat", "directline":
		return g.token(22) + "-" + pick(g.rng, []string{"us", "eu", "in", "au"})
	default:
		return g.guid()
	}
}

// activityID of a user-side activity, in the channel's shape: Teams uses the
// message's epoch milliseconds, Direct Line "<conversation>|<sequence>".
func (g *generator) activityID() string {
	switch g.conv.Channel {
	case "msteams":
		g.advance(time.Millisecond, 2*time.Millisecond) // distinct ms: the id is the time
		return strconv.FormatInt(g.at.UnixMilli(), 10)
	case "webchat", "directline":
		g.seq += 1 + g.rng.IntN(3) // bot activities take sequence numbers too
		return fmt.Sprintf("%s|%07d", g.conv.ID, g.seq)
	default:
		return g.guid()
	}
}

func (g *generator) guid() string {
	var b [36]byte
	hi, lo := g.rng.Uint64(), g.rng.Uint64()
	j := 0
	for i := range 32 {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b[j] = '-'
			j++
		}
		var nib uint64
		if i < 16 {
			nib = hi >> (60 - 4*i)
		} else {
			nib = lo >> (60 - 4*(i-16))
		}
		b[j] = hexDigits[nib&0xf]
		j++
	}
	return string(b[:])
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func (g *generator) token(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = tokenAlphabet[g.rng.IntN(len(tokenAlphabet))]
	}
	return string(b)
}

// geometric draws how many more of something there are: each further one
// with probability p, at most limit.
func (g *generator) geometric(p float64, limit int) int {
	n := 0
	for n < limit && g.rng.Float64() < p {
		n++
	}
	return n
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

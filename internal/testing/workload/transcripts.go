package workload

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
)

// Transcripts: conversations as Copilot Studio writes them to Dataverse
// (conversationtranscript rows, content {"activities":[...]}), with the
// ground truth of the turns a correct pipeline delivers from them and the
// plan steps each turn holds. What real transcripts do is in the mix: plans
// with completed, failed, blocked and never finished steps, knowledge
// searches, conversations split over several rows (BatchId) and resumed
// after a pause (same name, new row), activities out of array order and
// repeated, rows committed after later ones (late rows).

// TranscriptConfig says what to generate. Start from DefaultTranscriptConfig.
type TranscriptConfig struct {
	Seed          uint64
	Conversations int
	// Conversations start at random times in [Start, Start+Span); zero
	// Start is DefaultStart, zero Span one hour.
	Start time.Time
	Span  time.Duration
	// Agents talked to; nil means DefaultAgents, with TranscriptBotID ids.
	Agents []Agent

	GreetingRate  float64 // conversations the agent opens
	PlanRate      float64 // user turns the generative orchestrator plans
	SplitRate     float64 // sessions split over two or three rows
	ResumeRate    float64 // conversations resumed after a pause: a second row, same name
	ShuffleRate   float64 // rows whose activities array is out of time order
	DuplicateRate float64 // rows that repeat their first user message
	LateRate      float64 // rows committed (visible) after createdon, by up to MaxLateCommit
	MaxLateCommit time.Duration
	// PadTo, when set, pads each session's knowledge results until its
	// content is about this many bytes (for 1 MB transcripts).
	PadTo int
}

// DefaultTranscriptConfig is a realistic mix.
func DefaultTranscriptConfig(seed uint64, conversations int) TranscriptConfig {
	return TranscriptConfig{
		Seed: seed, Conversations: conversations,
		GreetingRate: 0.4, PlanRate: 0.7, SplitRate: 0.1, ResumeRate: 0.1,
		ShuffleRate: 0.3, DuplicateRate: 0.1, LateRate: 0.05, MaxLateCommit: 5 * time.Minute,
	}
}

// TranscriptTurn is one expected turn: the Turn a Verifier checks, the rows
// its activities are in, and its plan steps.
type TranscriptTurn struct {
	Turn
	RowIDs []string // conversationtranscriptid of every row holding one of its activities
	Steps  []ExpectedStep
	// StepFailed: a step of the turn failed or was blocked, or an error
	// trace belongs to it (Turn.Failed says the same).
	StepFailed bool
}

// ExpectedStep is one plan step as the turn must report it.
type ExpectedStep struct {
	PlanID, StepID, ToolID, ToolKind string
	State                            string // schema.StepState* value
	Arguments                        string // JSON text; empty when never bound
	Result                           string // JSON text of the observation; empty when none
	Knowledge                        bool   // a knowledge search result is attached
}

// TranscriptWorkload is a generated data set.
type TranscriptWorkload struct {
	Rows  []fakedataverse.Transcript // by createdon, then id
	Bots  []fakedataverse.Bot        // the agents, for the stand-in's bots table
	Turns []TranscriptTurn
	// ConversationItemIDs are the item ids of conversation-level activities
	// (ConversationInfo, SessionInfo) that belong to no turn.
	ConversationItemIDs []string
	Conversations       int
}

// Summary counts the cases in the workload.
func (w *TranscriptWorkload) Summary() map[string]int {
	s := map[string]int{"rows": len(w.Rows), "turns": len(w.Turns), "conversations": w.Conversations}
	for _, r := range w.Rows {
		var m struct{ BatchId int }
		_ = json.Unmarshal([]byte(r.Metadata), &m)
		if m.BatchId > 0 {
			s["split_pieces"]++
		}
		if r.VisibleAt.After(r.CreatedOn) {
			s["late_rows"]++
		}
	}
	for _, t := range w.Turns {
		for _, st := range t.Steps {
			s["steps_"+st.State]++
		}
		if t.Greeting() {
			s["greetings"]++
		}
	}
	return s
}

// TranscriptBotID is the Dataverse bot id of agent i.
func TranscriptBotID(i int) string { return fmt.Sprintf("198eca5f-0000-4000-8000-%012x", 0xa0+i) }

// GenerateTranscripts builds the workload.
func GenerateTranscripts(cfg TranscriptConfig) *TranscriptWorkload {
	if cfg.Agents == nil {
		cfg.Agents = DefaultAgents
	}
	if cfg.Start.IsZero() {
		cfg.Start = DefaultStart
	}
	if cfg.Span == 0 {
		cfg.Span = time.Hour
	}
	w := &TranscriptWorkload{Conversations: cfg.Conversations}
	for i, a := range cfg.Agents {
		w.Bots = append(w.Bots, fakedataverse.Bot{BotID: TranscriptBotID(i), Name: a.Name, SchemaName: a.Schema, AuthenticationMode: 1 + i%3, PublishedOn: "2026-01-15T09:00:00Z"})
	}
	for i := range cfg.Conversations {
		g := &tgen{cfg: cfg, w: w, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)))}
		g.conversation()
	}
	slices.SortFunc(w.Rows, func(a, b fakedataverse.Transcript) int {
		if c := a.CreatedOn.Compare(b.CreatedOn); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return w
}

// tact is one generated activity with the turn it belongs to (-1: none).
type tact struct {
	fields map[string]any
	turn   int
	itemID string
}

type tgen struct {
	cfg   TranscriptConfig
	w     *TranscriptWorkload
	rng   *rand.Rand
	agent int
	bot   string
	name  string
	conv  string
	ch    string
	at    time.Time
	seq   int
	turns []TranscriptTurn // of this conversation
	acts  []tact           // of the current session
	user  string
	final int // index of the turn in w.Turns of turns[0]
}

func (g *tgen) conversation() {
	g.agent = g.rng.IntN(len(g.cfg.Agents))
	a := &g.cfg.Agents[g.agent]
	g.bot = TranscriptBotID(g.agent)
	g.ch = pick(g.rng, a.Channels)
	if g.ch == "m365extensions" {
		g.ch = "m365copilot"
	}
	g.conv = fmt.Sprintf("%s%x", map[bool]string{true: "a:1", false: "Dl"}[g.ch == "msteams"], g.rng.Uint64())
	g.name = g.conv + "_" + g.bot
	g.user = fmt.Sprintf("29:1%x", g.rng.Uint64())
	g.at = g.cfg.Start.Add(time.Duration(g.rng.Int64N(int64(g.cfg.Span)))).Truncate(time.Millisecond)
	sessions := 1
	if g.rng.Float64() < g.cfg.ResumeRate {
		sessions = 2
	}
	for s := range sessions {
		g.session(s == 0)
		g.at = g.at.Add(35*time.Minute + time.Duration(g.rng.Int64N(int64(time.Hour))))
	}
	g.w.Turns = append(g.w.Turns, g.turns...)
}

// session writes one session's activities into one or more rows.
func (g *tgen) session(first bool) {
	start := g.at
	g.acts = nil
	g.emit(-1, map[string]any{"type": "trace", "valueType": "ConversationInfo", "from": map[string]any{"id": "", "role": 0},
		"value": map[string]any{"isDesignMode": g.ch == "pva-studio", "locale": "en-US"}})
	if first && g.rng.Float64() < g.cfg.GreetingRate {
		g.openTurn("", "", time.Time{})
		g.reply("", fmt.Sprintf("Hello, I'm %s. How can I help?", g.cfg.Agents[g.agent].Name))
	}
	for n := 1 + g.rng.IntN(4); n > 0; n-- {
		g.userTurn()
	}
	g.emit(-1, map[string]any{"type": "trace", "valueType": "SessionInfo", "id": "0", "from": map[string]any{"id": "", "role": 0},
		"value": map[string]any{"startTimeUtc": start.Format(time.RFC3339), "endTimeUtc": g.at.Format(time.RFC3339), "type": "Engaged", "outcome": "Resolved"}})
	g.pad()
	g.write(start)
}

func (g *tgen) openTurn(text, id string, at time.Time) {
	g.turns = append(g.turns, TranscriptTurn{Turn: Turn{
		ConversationID: g.conv, Agent: g.cfg.Agents[g.agent].Name, Channel: g.ch, Index: len(g.turns),
		RequestText: text, RequestActivityID: id, RequestTime: at,
	}})
}

func (g *tgen) cur() *TranscriptTurn { return &g.turns[len(g.turns)-1] }

func (g *tgen) userTurn() {
	g.at = g.at.Add(5*time.Second + time.Duration(g.rng.Int64N(int64(80*time.Second))))
	a := &g.cfg.Agents[g.agent]
	text := fmt.Sprintf(pick(g.rng, a.Asks), pick(g.rng, a.Subjects))
	id := strconv.FormatInt(g.at.UnixMilli(), 10)
	if g.ch != "msteams" {
		g.seq += 2
		id = fmt.Sprintf("%s|%07d", g.conv, g.seq)
	}
	g.openTurn(text, id, g.at.Truncate(time.Second))
	turn := len(g.turns) - 1
	g.emit(turn, map[string]any{"type": "message", "id": id, "from": map[string]any{"id": g.user, "aadObjectId": "11111111-aaaa-bbbb-cccc-000000000001", "role": 1},
		"channelId": g.ch, "text": text, "channelData": map[string]any{"tenant": map[string]any{"id": "72f988bf-86f1-41af-91ab-2d7cd011db47"}}})
	switch p := g.rng.Float64(); {
	case p < g.cfg.PlanRate:
		g.plan(turn, id)
	case p < g.cfg.PlanRate+(1-g.cfg.PlanRate)/2:
		g.reply(id, g.answerText())
	default: // unanswered
	}
}

func (g *tgen) plan(turn int, replyTo string) {
	schemaName := g.cfg.Agents[g.agent].Schema
	planID := g.guid()
	tools := []string{"P:UniversalSearchTool"}
	for n := g.rng.IntN(3); n > 0; n-- {
		tools = append(tools, pick(g.rng, []string{
			schemaName + ".action.Office365Outlook-SendanemailV2", schemaName + ".action.GetTicket",
			"MCP:" + schemaName + ".topic.github:create_issue", schemaName + ".topic.Escalate",
			schemaName + ".InvokeConnectedAgentTaskAction.Payroll",
		}))
	}
	g.event(turn, replyTo, "DynamicPlanReceived", true, map[string]any{"planIdentifier": planID, "steps": tools, "isFinalPlan": true})
	for _, tool := range tools {
		stepID := g.guid()
		kind := schema.ToolKindOf(tool, "")
		typ := map[string]string{schema.ToolKindKnowledge: "KnowledgeSource", schema.ToolKindTopic: "CustomTopic"}[kind]
		if typ == "" {
			typ = "Action"
		}
		g.event(turn, replyTo, "DynamicPlanStepTriggered", true, map[string]any{"planIdentifier": planID, "stepId": stepID, "taskDialogId": tool,
			"thought": "The user asked about this; " + tool + " can answer it.", "state": 1, "type": typ})
		st := ExpectedStep{PlanID: planID, StepID: stepID, ToolID: tool, ToolKind: kind, State: schema.StepStateTriggered}
		if kind == schema.ToolKindKnowledge {
			g.event(turn, replyTo, "UniversalSearchToolTraceData", false, map[string]any{"toolId": tool,
				"knowledgeSources": []string{schemaName + ".knowledge.Wiki"}, "outputKnowledgeSources": []string{schemaName + ".knowledge.Wiki"},
				"fullResults": []any{map[string]any{"Name": "Wiki", "Text": g.answerText()}}})
			st.Knowledge = true
			g.cur().Steps = append(g.cur().Steps, st)
			continue // knowledge steps rarely finish in Dataverse
		}
		args := fmt.Sprintf(`{"subject":"%s","ticketId":"%d"}`, pick(g.rng, answerSentences), g.rng.IntN(100000))
		g.event(turn, replyTo, "DynamicPlanStepBindUpdate", false, map[string]any{"planIdentifier": planID, "stepId": stepID, "taskDialogId": tool, "arguments": json.RawMessage(args)})
		st.Arguments = args
		switch p := g.rng.Float64(); {
		case p < 0.7:
			result := fmt.Sprintf(`{"Response":{"status":"done","ref":"%s"}}`, g.guid())
			g.event(turn, replyTo, "DynamicPlanStepFinished", false, map[string]any{"planIdentifier": planID, "stepId": stepID, "taskDialogId": tool,
				"observation": json.RawMessage(result), "state": "completed", "executionTime": "00:00:01.2500000"})
			st.State, st.Result = schema.StepStateCompleted, result
		case p < 0.8:
			g.event(turn, replyTo, "DynamicPlanStepFinished", false, map[string]any{"planIdentifier": planID, "stepId": stepID, "taskDialogId": tool,
				"state": "failed", "executionTime": "00:00:30", "error": map[string]any{"code": "ConnectorRequestFailure", "message": "The connector returned 502"}})
			st.State = schema.StepStateFailed
			g.cur().StepFailed = true
		case p < 0.9:
			g.event(turn, replyTo, "DynamicPlanStepBlocked", false, map[string]any{"stepId": stepID, "taskDialogId": tool,
				"messageBlockedError": map[string]any{"code": "ContentFiltered", "message": "The request was blocked by content moderation."}})
			st.State = schema.StepStateBlocked
			g.cur().StepFailed = true
		default: // never finishes
		}
		g.cur().Steps = append(g.cur().Steps, st)
	}
	if g.cur().StepFailed && g.rng.IntN(2) == 0 {
		g.emit(turn, map[string]any{"type": "trace", "valueType": "ErrorTraceData", "id": g.guid(), "replyToId": replyTo, "from": map[string]any{"id": g.bot, "role": 0},
			"value": map[string]any{"errorCode": "FlowActionException", "errorMessage": "The action failed.", "isUserError": false}})
	}
	g.reply(replyTo, g.answerText())
	g.event(turn, replyTo, "DynamicPlanFinished", true, map[string]any{"planId": planID})
	g.cur().Failed = g.cur().StepFailed
}

func (g *tgen) event(turn int, replyTo, name string, withValueType bool, value map[string]any) {
	a := map[string]any{"type": "event", "name": name, "id": g.guid(), "replyToId": replyTo, "from": map[string]any{"id": g.bot, "role": 0}, "value": value}
	if withValueType {
		a["valueType"] = name
	}
	g.emit(turn, a)
}

func (g *tgen) reply(replyTo, text string) {
	a := map[string]any{"type": "message", "id": g.guid(), "from": map[string]any{"id": g.bot, "role": 0}, "channelId": g.ch, "textFormat": "markdown", "text": text}
	if replyTo != "" {
		a["replyToId"] = replyTo
	}
	g.at = g.at.Add(300*time.Millisecond + time.Duration(g.rng.Int64N(int64(3*time.Second))))
	g.emit(len(g.turns)-1, a)
	g.cur().Replies = append(g.cur().Replies, text)
}

// emit stamps an activity (timestamp, timestampMs) a little after the
// previous one and computes its item id as the receiver will.
func (g *tgen) emit(turn int, a map[string]any) {
	g.at = g.at.Add(time.Duration(5+g.rng.IntN(200)) * time.Millisecond)
	a["timestamp"] = g.at.Unix()
	a["timestampMs"] = g.at.UnixMilli()
	id, _ := a["id"].(string)
	kind, _ := a["valueType"].(string)
	if kind == "" {
		kind, _ = a["name"].(string)
	}
	if kind == "" {
		kind, _ = a["type"].(string)
	}
	value, _ := json.Marshal(a["value"])
	if a["value"] == nil {
		value = nil
	}
	text, _ := a["text"].(string)
	item := schema.TranscriptItemID(g.name, id, kind, g.at.UnixMilli(), value, text)
	g.acts = append(g.acts, tact{fields: a, turn: turn, itemID: item})
	if turn >= 0 {
		g.turns[turn].ItemIDs = append(g.turns[turn].ItemIDs, item)
	} else {
		g.w.ConversationItemIDs = append(g.w.ConversationItemIDs, item)
	}
}

// pad grows the session's first knowledge result until the content is
// about PadTo bytes.
func (g *tgen) pad() {
	if g.cfg.PadTo <= 0 {
		return
	}
	size := 0
	for _, a := range g.acts {
		b, _ := json.Marshal(a.fields)
		size += len(b) + 1
	}
	var text strings.Builder
	for text.Len() < g.cfg.PadTo-size {
		text.WriteString(pick(g.rng, answerSentences))
		text.WriteByte(' ')
	}
	g.emit(-1, map[string]any{"type": "trace", "valueType": "GenerativeAnswersSupportData", "id": g.guid(), "from": map[string]any{"id": g.bot, "role": 0},
		"value": map[string]any{"searchResults": text.String()}})
}

// write puts the session's activities into rows: one, or two or three
// pieces of a split, in array order possibly not time order, with repeats.
func (g *tgen) write(start time.Time) {
	pieces := 1
	if g.rng.Float64() < g.cfg.SplitRate && len(g.acts) >= 6 {
		pieces = 2 + g.rng.IntN(2)
	}
	created := g.at.Add(30*time.Minute + time.Duration(g.rng.Int64N(int64(5*time.Minute)))).Truncate(time.Second)
	per := (len(g.acts) + pieces - 1) / pieces
	for p := range pieces {
		acts := g.acts[min(p*per, len(g.acts)):min((p+1)*per, len(g.acts))]
		list := make([]map[string]any, len(acts))
		for i := range acts {
			list[i] = acts[i].fields
		}
		if g.rng.Float64() < g.cfg.DuplicateRate {
			for _, a := range acts {
				if a.fields["type"] == "message" {
					list = append(list, a.fields) // a repeat, same id and time
					break
				}
			}
		}
		if g.rng.Float64() < g.cfg.ShuffleRate && len(list) > 2 {
			// Bot messages and DynamicPlanFinished written before earlier activities.
			for i := len(list) - 1; i > 0; i-- {
				if list[i]["type"] == "message" || list[i]["name"] == "DynamicPlanFinished" {
					j := g.rng.IntN(i)
					list[i], list[j] = list[j], list[i]
				}
			}
		}
		content, _ := json.Marshal(map[string]any{"activities": list})
		row := fakedataverse.Transcript{
			ID: g.guid(), Name: g.name, Content: string(content), BotID: g.bot,
			Metadata:          fmt.Sprintf(`{"BotId":"%s","AADTenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47","BotName":"%s","BatchId":%d}`, g.guid(), g.cfg.Agents[g.agent].Schema, p),
			ConversationStart: start.Truncate(time.Second), CreatedOn: created.Add(time.Duration(p) * time.Second),
		}
		if g.rng.Float64() < g.cfg.LateRate {
			row.VisibleAt = row.CreatedOn.Add(time.Duration(g.rng.Int64N(int64(max(g.cfg.MaxLateCommit, time.Second)))))
		}
		g.w.Rows = append(g.w.Rows, row)
		for _, a := range acts {
			if a.turn >= 0 && (len(g.turns[a.turn].RowIDs) == 0 || g.turns[a.turn].RowIDs[len(g.turns[a.turn].RowIDs)-1] != row.ID) {
				g.turns[a.turn].RowIDs = append(g.turns[a.turn].RowIDs, row.ID)
			}
		}
	}
}

func (g *tgen) answerText() string {
	return pick(g.rng, answerSentences) + " " + pick(g.rng, answerSentences) + " Reference: KB" + strconv.Itoa(100000+g.rng.IntN(900000)) + "."
}

func (g *tgen) guid() string {
	hi, lo := g.rng.Uint64(), g.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", hi>>32, (hi>>16)&0xffff, hi&0xfff, (lo>>48)&0xfff, lo&0xffffffffffff)
}

// VerifierTurns returns w's turns for a Verifier, each user message's time
// read from the transcript itself: the generator's RequestTime is its clock
// before it stamped the message, a second apart now and then, and a
// record's time is the message's own.
func (w *TranscriptWorkload) VerifierTurns() []Turn {
	sent := map[string]time.Time{} // by conversation and activity id
	for _, r := range w.Rows {
		var content struct {
			Activities []struct {
				Type        string `json:"type"`
				ID          string `json:"id"`
				TimestampMs int64  `json:"timestampMs"`
				From        struct {
					Role int `json:"role"`
				} `json:"from"`
			} `json:"activities"`
		}
		if json.Unmarshal([]byte(r.Content), &content) != nil {
			continue // a row generated malformed on purpose
		}
		conversation := r.Name[:strings.LastIndexByte(r.Name, '_')]
		for _, a := range content.Activities {
			if a.Type == "message" && a.From.Role == 1 {
				sent[conversation+"\x00"+a.ID] = time.UnixMilli(a.TimestampMs)
			}
		}
	}
	turns := make([]Turn, len(w.Turns))
	for i := range w.Turns {
		turns[i] = w.Turns[i].Turn
		if at, ok := sent[turns[i].ConversationID+"\x00"+turns[i].RequestActivityID]; ok {
			turns[i].RequestTime = at
		}
	}
	return turns
}

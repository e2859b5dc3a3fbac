package workload

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// Summary counts what a workload contains, for logs and for the fault
// suite's results.
type Summary struct {
	Conversations, Rows, Turns                int
	Greetings, Unanswered, Failed, MultiReply int
	RepliesWithoutReplyTo                     int // BotMessageSend rows with no replyActivityId
	EventRows                                 int // non-message BotMessageReceived rows (greeting triggers)
	LateRows                                  int // rows ingested more than 5 minutes after their event
	LongConversationIDs                       int // conversations whose id is over 130 characters
	Agents, Channels                          []string
}

// Summarize counts the cases in w. It parses every row, so it is for tests
// and reports, not hot paths.
func Summarize(w *Workload) Summary {
	s := Summary{Conversations: w.Conversations, Rows: len(w.Rows), Turns: len(w.Turns)}
	agents, channels := map[string]bool{}, map[string]bool{}
	for i := range w.Turns {
		t := &w.Turns[i]
		switch {
		case t.Greeting():
			s.Greetings++
		case len(t.Replies) == 0:
			s.Unanswered++
		}
		if t.Failed {
			s.Failed++
		}
		if len(t.Replies) > 1 {
			s.MultiReply++
		}
		if t.Index == 0 && len(t.ConversationID) > 130 {
			s.LongConversationIDs++
		}
		agents[t.Agent], channels[t.Channel] = true, true
	}
	for _, r := range w.Rows {
		if r.IngestionTime.Sub(r.Timestamp) > 5*time.Minute {
			s.LateRows++
		}
		if r.Name != schema.EventMessageSend && r.Name != schema.EventMessageReceived {
			continue
		}
		var dims map[string]string
		_ = json.Unmarshal([]byte(r.CustomDimensions), &dims)
		if r.Name == schema.EventMessageSend && dims["replyActivityId"] == "" {
			s.RepliesWithoutReplyTo++
		}
		if r.Name == schema.EventMessageReceived && dims["type"] != "message" {
			s.EventRows++
		}
	}
	for a := range agents {
		s.Agents = append(s.Agents, a)
	}
	for c := range channels {
		s.Channels = append(s.Channels, c)
	}
	slices.Sort(s.Agents)
	slices.Sort(s.Channels)
	return s
}

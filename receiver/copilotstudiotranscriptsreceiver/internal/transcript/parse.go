// Package transcript reads one Copilot Studio conversation transcript (a row
// of Dataverse's conversationtranscript table) into its activities, in time
// order and without repeats, and turns them into log records in the schema
// of internal/schema. It copes with what real transcripts do: activities out
// of array order, repeated activities, conversations split over several rows,
// valueType missing, planId vs planIdentifier, int or string step states,
// and content that is not JSON or was cut.
package transcript

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// Row is one conversationtranscripts row as the Web API returns it, reduced
// to the columns the receiver selects.
type Row struct {
	ID                string // conversationtranscriptid
	Name              string // {conversationId}_{botId}
	Content           string // JSON text: {"activities":[...]}
	Metadata          string // JSON text: {"BotId","AADTenantId","BotName","BatchId"}
	ConversationStart string // conversationstarttime, as sent
	BotID             string // _bot_conversationtranscriptid_value
	CreatedOn         time.Time
}

// Reasons a row is skipped (the receiver's rows_dropped metric).
const (
	ReasonNotJSON       = "content_not_json"
	ReasonTruncated     = "content_truncated"
	ReasonNotTranscript = "content_not_transcript"
	ReasonTooLarge      = "content_too_large"
)

// Error says why a row's content cannot be read.
type Error struct {
	Reason string // one of the Reason* values
	Detail string // never the content itself
}

func (e *Error) Error() string { return e.Reason + ": " + e.Detail }

// Metadata is the row's metadata column.
type Metadata struct {
	BotID       string
	AADTenantID string
	BotName     string // the agent's schema name in current content
	BatchID     int    // orders the pieces of a split conversation
}

// Activity is one activity of a transcript.
type Activity struct {
	Index       int   // position in the row's activities array
	TimestampMS int64 // timestampMs, else timestamp (seconds) * 1000; 0 when neither
	Type        string
	ID          string
	Name        string
	ValueType   string
	Kind        string // valueType, else name, else type
	Role        int    // RoleUser, RoleBot or RoleUnknown
	FromID      string
	AADObjectID string
	ReplyToID   string
	ChannelID   string
	Locale      string
	TenantID    string // channelData.tenant.id
	Text        string
	HasText     bool
	Value       json.RawMessage // nil when absent or null
	Attachments json.RawMessage // nil when absent, null or empty
	ItemID      string
}

// Values of Activity.Role: Bot Framework's from.role.
const (
	RoleUnknown = -1
	RoleBot     = 0
	RoleUser    = 1
)

// Transcript is a parsed row.
type Transcript struct {
	Row            *Row
	ConversationID string // Name up to its last '_'
	AgentID        string // BotID, else Name after its last '_'
	Meta           Metadata
	Activities     []Activity // time order, repeats removed
	// Duplicates counts the activities removed as repeats.
	Duplicates int
}

// Parse reads a row. maxContentBytes bounds the content (0: no bound); an
// error is always an *Error.
func Parse(row *Row, maxContentBytes int) (*Transcript, error) {
	if maxContentBytes > 0 && len(row.Content) > maxContentBytes {
		return nil, &Error{ReasonTooLarge, fmt.Sprintf("content is %d bytes, over the %d bytes allowed", len(row.Content), maxContentBytes)}
	}
	t := &Transcript{Row: row, AgentID: row.BotID, ConversationID: row.Name}
	if i := strings.LastIndexByte(row.Name, '_'); i > 0 {
		t.ConversationID = row.Name[:i]
		if t.AgentID == "" {
			t.AgentID = row.Name[i+1:]
		}
	}
	t.Meta = parseMetadata(row.Metadata)

	var content struct {
		Activities *[]rawActivity `json:"activities"`
	}
	if err := json.Unmarshal([]byte(row.Content), &content); err != nil {
		return nil, contentError(row.Content, err)
	}
	if content.Activities == nil {
		return nil, &Error{ReasonNotTranscript, "content has no activities array"}
	}
	raw := *content.Activities
	acts := make([]Activity, len(raw))
	for i := range raw {
		raw[i].into(&acts[i], i)
	}
	// Array order is not time order: sort by time, ties in array order.
	slices.SortStableFunc(acts, func(a, b Activity) int {
		if a.TimestampMS != b.TimestampMS {
			if a.TimestampMS < b.TimestampMS {
				return -1
			}
			return 1
		}
		return a.Index - b.Index
	})
	seen := make(map[string]struct{}, len(acts))
	kept := acts[:0]
	for _, a := range acts {
		a.ItemID = itemID(row.Name, &a)
		if _, dup := seen[a.ItemID]; dup {
			t.Duplicates++
			continue
		}
		seen[a.ItemID] = struct{}{}
		kept = append(kept, a)
	}
	t.Activities = kept
	return t, nil
}

// contentError classifies why content does not decode: cut (it ends inside
// the JSON: Dataverse's 1 MB column limit, a copy that stopped), not JSON at
// all, or JSON of another shape.
func contentError(content string, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &syntax) && strings.Contains(syntax.Error(), "unexpected end")):
		return &Error{ReasonTruncated, fmt.Sprintf("content ends inside its JSON after %d bytes", len(content))}
	case errors.As(err, &syntax):
		return &Error{ReasonNotJSON, fmt.Sprintf("content is not JSON: %s at byte %d of %d", syntax.Error(), syntax.Offset, len(content))}
	case errors.As(err, &typ):
		return &Error{ReasonNotTranscript, fmt.Sprintf("content is not {\"activities\":[...]}: %s at %q", typ.Value, typ.Field)}
	}
	return &Error{ReasonNotJSON, err.Error()}
}

// itemID is the activity's stable item id. Repeats share id, kind and
// time; an activity without an id is also told apart by its content.
func itemID(conversation string, a *Activity) string {
	return schema.TranscriptItemID(conversation, a.ID, a.Kind, a.TimestampMS, a.Value, a.Text)
}

func parseMetadata(s string) Metadata {
	var m struct {
		BotID       flexString `json:"BotId"`
		AADTenantID flexString `json:"AADTenantId"`
		BotName     flexString `json:"BotName"`
		BatchID     flexInt    `json:"BatchId"`
	}
	if strings.TrimSpace(s) == "" || json.Unmarshal([]byte(s), &m) != nil {
		return Metadata{}
	}
	return Metadata{BotID: string(m.BotID), AADTenantID: string(m.AADTenantID), BotName: string(m.BotName), BatchID: int(m.BatchID.n)}
}

// rawActivity is an activity as the content holds it. Fields whose type
// varies between sources (ids as numbers, roles as words, timestamps as ISO
// text in test-pane snapshots) use lenient types, so one odd field never
// costs the whole transcript.
type rawActivity struct {
	Type        flexString      `json:"type"`
	ID          flexString      `json:"id"`
	Timestamp   flexTime        `json:"timestamp"`
	TimestampMS flexInt         `json:"timestampMs"`
	From        *rawFrom        `json:"from"`
	ReplyToID   flexString      `json:"replyToId"`
	ChannelID   flexString      `json:"channelId"`
	Locale      flexString      `json:"locale"`
	Name        flexString      `json:"name"`
	ValueType   flexString      `json:"valueType"`
	Value       json.RawMessage `json:"value"`
	Text        *flexString     `json:"text"`
	Attachments json.RawMessage `json:"attachments"`
	ChannelData json.RawMessage `json:"channelData"`
}

type rawFrom struct {
	ID          flexString `json:"id"`
	Role        flexRole   `json:"role"`
	AADObjectID flexString `json:"aadObjectId"`
}

func (r *rawActivity) into(a *Activity, index int) {
	a.Index = index
	a.Type, a.ID, a.Name, a.ValueType = string(r.Type), string(r.ID), string(r.Name), string(r.ValueType)
	a.ReplyToID, a.ChannelID, a.Locale = string(r.ReplyToID), string(r.ChannelID), string(r.Locale)
	switch {
	case a.ValueType != "":
		a.Kind = a.ValueType
	case a.Name != "":
		a.Kind = a.Name
	default:
		a.Kind = a.Type
	}
	switch {
	case r.TimestampMS.ok && r.TimestampMS.n > 0:
		a.TimestampMS = r.TimestampMS.n
	case r.Timestamp.ok:
		a.TimestampMS = r.Timestamp.ms
	}
	a.Role = RoleUnknown
	if r.From != nil {
		a.FromID, a.AADObjectID = string(r.From.ID), string(r.From.AADObjectID)
		if role, ok := r.From.Role.setRole(); ok {
			a.Role = role
		}
	}
	if r.Text != nil {
		a.Text, a.HasText = string(*r.Text), true
	}
	if !isNull(r.Value) {
		a.Value = r.Value
	}
	if !isNull(r.Attachments) && string(bytes.TrimSpace(r.Attachments)) != "[]" {
		a.Attachments = r.Attachments
	}
	if len(r.ChannelData) > 0 && r.ChannelData[0] == '{' {
		var cd struct {
			Tenant struct {
				ID flexString `json:"id"`
			} `json:"tenant"`
		}
		if json.Unmarshal(r.ChannelData, &cd) == nil {
			a.TenantID = string(cd.Tenant.ID)
		}
	}
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// flexString reads a string, or a number or boolean as its JSON text; null
// and other shapes as "".
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9') || b[0] == 't' || b[0] == 'f'):
		*s = flexString(b)
	default:
		*s = ""
	}
	return nil
}

// flexInt reads an integer given as a number or as a numeric string ("" and
// anything else: not set).
type flexInt struct {
	n  int64
	ok bool
}

func (i *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		s = strings.TrimSpace(v)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*i = flexInt{n, true}
	} else if f, err := strconv.ParseFloat(s, 64); err == nil && f >= -1e18 && f <= 1e18 {
		*i = flexInt{int64(f), true}
	} else {
		*i = flexInt{}
	}
	return nil
}

// flexTime reads timestamp: Unix seconds (what Dataverse content holds), or
// an RFC 3339 text (test-pane snapshots), into milliseconds.
type flexTime struct {
	ms int64
	ok bool
}

func (t *flexTime) UnmarshalJSON(b []byte) error {
	*t = flexTime{}
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		if ts, err := time.Parse(time.RFC3339Nano, v); err == nil {
			*t = flexTime{ts.UnixMilli(), true}
			return nil
		}
		b = []byte(v)
	}
	if f, err := strconv.ParseFloat(string(b), 64); err == nil && f > 0 && f < 1e12 {
		*t = flexTime{int64(f * 1000), true}
	}
	return nil
}

// flexRole reads from.role: 0 or 1, or "bot"/"user" (test-pane snapshots).
type flexRole int

func (r *flexRole) UnmarshalJSON(b []byte) error {
	v := strings.Trim(strings.ToLower(string(b)), `"`)
	switch v {
	case "0", "bot":
		*r = flexRole(RoleBot) | roleSet
	case "1", "user":
		*r = flexRole(RoleUser) | roleSet
	default:
		*r = 0
	}
	return nil
}

// roleSet marks a role that was read; flexRole's low bit is the role.
const roleSet flexRole = 2

func (r flexRole) setRole() (int, bool) { return int(r &^ roleSet), r&roleSet != 0 }

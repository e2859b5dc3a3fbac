package workload

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// AktoRecord is the part of an Akto traffic record (see
// shared/reference/akto-traffic-format.md) the verifier reads. Every field is
// a JSON string; payloads and tag are JSON objects serialised into strings.
type AktoRecord struct {
	Path            string `json:"path"`
	Method          string `json:"method"`
	RequestHeaders  string `json:"requestHeaders"`
	RequestPayload  string `json:"requestPayload"`
	ResponsePayload string `json:"responsePayload"`
	Time            string `json:"time"`
	StatusCode      string `json:"statusCode"`
	Tag             string `json:"tag"`
}

// Delivered is one Kafka record value, decoded into what a turn says.
type Delivered struct {
	TurnID            string
	ConversationID    string
	Index             string // the {n} of the path
	BotName           string // tag bot-name: the sanitised agent name
	Channel           string
	RequestText       string
	RequestActivityID string
	Replies           []string
	Failed            bool
	Time              string
}

// The turn id, the channel and the user message's activity id are read from
// the request headers (schema.AktoHeader*), else from where earlier record
// formats had them: the tag's turn-id and channel, the request payload's
// activityId and channelId.
const tagTurnID = "turn-id"

var tagChannelKeys = []string{"channel", "channel-id", "channelId"}

const pathPrefix = "/copilot/conversation/"

// DecodeAkto parses one record value. It fails only when the value is not a
// traffic record at all; fields it cannot read are left empty, and the
// comparison with the expected turn reports them.
func DecodeAkto(value []byte) (Delivered, error) {
	var rec AktoRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return Delivered{}, fmt.Errorf("record is not an Akto traffic record: %w", err)
	}
	var d Delivered
	rest, ok := strings.CutPrefix(rec.Path, pathPrefix)
	i := strings.LastIndex(rest, "/message/")
	if !ok || i < 0 {
		return Delivered{}, fmt.Errorf("path %q is not %s{id}/message/{n}", rec.Path, pathPrefix)
	}
	id, err := url.PathUnescape(rest[:i])
	if err != nil {
		return Delivered{}, fmt.Errorf("path %q: conversation id: %w", rec.Path, err)
	}
	d.ConversationID, d.Index = id, rest[i+len("/message/"):]
	d.Time = rec.Time
	d.Failed = rec.StatusCode != "200"

	var headers map[string]any
	if rec.RequestHeaders != "" {
		if err := json.Unmarshal([]byte(rec.RequestHeaders), &headers); err != nil {
			return Delivered{}, fmt.Errorf("requestHeaders is not a JSON object: %w", err)
		}
	}
	var tag map[string]any
	if rec.Tag != "" {
		if err := json.Unmarshal([]byte(rec.Tag), &tag); err != nil {
			return Delivered{}, fmt.Errorf("tag is not a JSON object: %w", err)
		}
	}
	d.TurnID = stringOf(headers[schema.AktoHeaderMessageID])
	if d.TurnID == "" {
		d.TurnID = stringOf(tag[tagTurnID])
	}
	d.BotName = stringOf(tag[schema.AktoTagBotName])
	d.Channel = stringOf(headers[schema.AktoHeaderChannel])
	d.RequestActivityID = stringOf(headers[schema.AktoHeaderActivityID])
	for _, k := range tagChannelKeys {
		if d.Channel != "" {
			break
		}
		if c := stringOf(tag[k]); c != "" {
			d.Channel = c
			break
		}
	}

	// An empty payload may be "" or "{}".
	if rec.RequestPayload != "" {
		var req struct {
			Text       string `json:"text"`
			ActivityID string `json:"activityId"`
			Channel    string `json:"channelId"`
		}
		if err := json.Unmarshal([]byte(rec.RequestPayload), &req); err != nil {
			return Delivered{}, fmt.Errorf("requestPayload is not a JSON object: %w", err)
		}
		d.RequestText = req.Text
		if d.RequestActivityID == "" {
			d.RequestActivityID = req.ActivityID
		}
		if d.Channel == "" {
			d.Channel = req.Channel
		}
	}
	if rec.ResponsePayload != "" {
		var resp struct {
			Text     string `json:"text"`
			Messages []struct {
				Text string `json:"text"`
			} `json:"messages"`
		}
		if err := json.Unmarshal([]byte(rec.ResponsePayload), &resp); err != nil {
			return Delivered{}, fmt.Errorf("responsePayload is not a JSON object: %w", err)
		}
		for _, m := range resp.Messages {
			d.Replies = append(d.Replies, m.Text)
		}
		if len(resp.Messages) == 0 && resp.Text != "" {
			d.Replies = []string{resp.Text}
		}
	}
	return d, nil
}

func stringOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// SanitizeAgentName is how Akto's host and bot-name spell an agent: every
// character that is not a letter or a digit becomes '-', runs of '-'
// collapse, leading and trailing '-' go, and the result is lower-cased.
// The reference does not say whether "letter" means ASCII only, so
// asciiOnly picks the reading; the verifier accepts either.
func SanitizeAgentName(name string, asciiOnly bool) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		keep := unicode.IsLetter(r) || unicode.IsDigit(r)
		if asciiOnly {
			keep = r < utf8.RuneSelf && keep
		}
		if keep {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
	}
	return b.String()
}

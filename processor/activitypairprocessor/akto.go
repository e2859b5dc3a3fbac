package activitypairprocessor

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// aktoEncoder writes the Akto traffic record as JSON bytes in the body.
type aktoEncoder struct {
	accountID, vxlanID string
	resources          *resources
	sources            []*aktoSource // by pairing.Source, filled on first use

	buf   []byte
	ids   textArena
	names []string
	texts []span // of the replies' escaped texts in buf
}

// span is a range of bytes.
type span struct{ from, to int }

func (e *aktoEncoder) readsText() bool { return true }

const aktoIPPlaceholder = "0.0.0.0"

// aktoSource is what an Akto record takes from its source resource, written
// once per source: the agent name as Akto spells hosts and tags, the
// request headers (a JSON string), and the agent's members of the tag
// (escaped for inside the tag string).
type aktoSource struct {
	botName string
	headers string
	tagTail string
}

// aktoTagKeys are the agent attributes (from Dataverse, when the receiver
// has them) repeated in the Akto tag, under the tag's own key names. Names
// are sanitised as Akto spells bot-name.
var aktoTagKeys = []struct {
	attr, tag string
	sanitise  bool
}{
	{schema.AppInsightsAppID, "app-id", false},
	{schema.AgentID, "bot-id", false},
	{schema.AgentSchemaName, "bot-schemaname", true},
	{schema.AgentEnvironmentID, "bot-environment-id", false},
	{schema.AgentPublishedState, "bot-published-state", false},
	{schema.AgentAuthenticationMode, "bot-authentication-mode", false},
	{schema.AgentUnauthenticated, "unauthenticated", false},
}

func (e *aktoEncoder) source(src pairing.Source) *aktoSource {
	for int(src) >= len(e.sources) {
		e.sources = append(e.sources, nil)
	}
	if e.sources[src] == nil {
		e.sources[src] = newAktoSource(e.resources.get(src))
	}
	return e.sources[src]
}

func newAktoSource(attrs pcommon.Map) *aktoSource {
	s := &aktoSource{}
	if v, ok := attrs.Get(schema.AgentName); ok {
		s.botName = sanitizeAgentName(v.AsString())
	}
	var b []byte
	b = append(b, `{"host":`...)
	b = appendJSONString(b, s.botName+".copilot-studio")
	b = append(b, `,"content-type":"application/json"}`...)
	s.headers = string(appendJSONString(nil, string(b)))

	b = b[:0]
	for _, k := range aktoTagKeys {
		if v, ok := attrs.Get(k.attr); ok && v.AsString() != "" {
			value := v.AsString()
			if k.sanitise {
				value = sanitizeAgentName(value)
			}
			b = append(b, ',')
			b = appendJSONString(b, k.tag)
			b = append(b, ':')
			b = appendJSONString(b, value)
		}
	}
	s.tagTail = string(appendJSONContent(nil, string(b)))
	return s
}

// sanitizeAgentName spells an agent name as Akto's hosts and tags do: every
// character that is not a letter or a digit becomes '-', runs of '-'
// collapse, leading and trailing '-' go, and the result is lower-cased.
func sanitizeAgentName(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			dash = true
			continue
		}
		if dash && b.Len() > 0 {
			b.WriteByte('-')
		}
		dash = false
		b.WriteRune(r)
	}
	return b.String()
}

func (e *aktoEncoder) encode(rec plog.LogRecord, t *pairing.Turn) {
	attrs := rec.Attributes()
	attrs.EnsureCapacity(2)
	putTurnKeys(attrs, t, &e.ids)
	b := e.record(e.buf[:0], t)
	e.buf = b
	rec.Body().SetEmptyBytes().FromRaw(b)
}

// record appends the Akto traffic record of t. Every field is a JSON
// string; headers, payloads and tag are JSON objects serialised into
// strings, written here in one pass with their texts escaped twice.
func (e *aktoEncoder) record(b []byte, t *pairing.Turn) []byte {
	c := t.Conversation()
	src := e.source(c.Source())
	b = append(b, `{"path":"/copilot/conversation/`...)
	b = appendPathSegment(b, c.ID())
	b = append(b, "/message/"...)
	b = strconv.AppendInt(b, int64(t.Index()), 10)
	b = append(b, `","method":"POST","requestHeaders":`...)
	b = append(b, src.headers...)
	b = append(b, `,"responseHeaders":"{\"content-type\":\"application/json\"}","requestPayload":`...)
	b = e.requestPayload(b, t)
	b = append(b, `,"responsePayload":`...)
	b = e.responsePayload(b, t)
	b = append(b, `,"ip":"`+aktoIPPlaceholder+`","time":"`...)
	b = strconv.AppendInt(b, t.At()/int64(time.Second), 10)
	b = append(b, `","statusCode":"`...)
	if t.Outcome() == pairing.OutcomeFailed {
		b = append(b, "500"...)
	} else {
		b = append(b, "200"...)
	}
	b = append(b, `","type":"HTTP/1.1","status":"OK","akto_account_id":`...)
	b = appendJSONString(b, e.accountID)
	b = append(b, `,"akto_vxlan_id":`...)
	b = appendJSONString(b, e.vxlanID)
	b = append(b, `,"is_pending":"false","source":"MIRRORING","tag":`...)
	b = e.tag(b, t, src)
	return append(b, '}')
}

// appendPathSegment percent-encodes every byte but the unreserved ones
// (RFC 3986), so that Teams ids with ':', '@', ';' and '=' stay one plain
// path segment; url.PathUnescape reads it back.
func appendPathSegment(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&0xf])
	}
	return b
}

// requestPayload is the user's message as a JSON string holding
// {"text","activityId","channelId","locale","userId"}; "" for a turn
// without one.
func (e *aktoEncoder) requestPayload(b []byte, t *pairing.Turn) []byte {
	r := t.Request()
	if r == nil {
		return append(b, `""`...)
	}
	c := t.Conversation()
	b = append(b, `"{\"text\":\"`...)
	b = appendNestedContent(b, r.Text)
	b = append(b, `\",\"activityId\":\"`...)
	b = appendNestedContent(b, r.Activity)
	if ch := c.Channel(); ch != "" {
		b = append(b, `\",\"channelId\":\"`...)
		b = appendNestedContent(b, ch)
	}
	if l := c.Locale(); l != "" {
		b = append(b, `\",\"locale\":\"`...)
		b = appendNestedContent(b, l)
	}
	if r.Detail != "" {
		b = append(b, `\",\"userId\":\"`...)
		b = appendNestedContent(b, r.Detail)
	}
	return append(b, `\"}"`...)
}

// responsePayload is the agent's replies as a JSON string holding
// {"text": the replies joined by newlines, "messages": [{"text",
// "activityId"}, ...]} in send order; "" for a turn without any.
func (e *aktoEncoder) responsePayload(b []byte, t *pairing.Turn) []byte {
	// Each text is escaped once, then copied into its message.
	texts := e.texts[:0]
	for i := range t.Len() {
		if r := t.Row(i); r.Kind == pairing.KindReply {
			if len(texts) == 0 {
				b = append(b, `"{\"text\":\"`...)
			} else {
				b = append(b, `\\n`...) // a newline, escaped twice
			}
			start := len(b)
			b = appendNestedContent(b, r.Text)
			texts = append(texts, span{start, len(b)})
		}
	}
	e.texts = texts
	if len(texts) == 0 {
		return append(b, `""`...)
	}
	b = append(b, `\",\"messages\":[`...)
	n := 0
	for i := range t.Len() {
		if r := t.Row(i); r.Kind == pairing.KindReply {
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, `{\"text\":\"`...)
			b = append(b, b[texts[n].from:texts[n].to]...)
			b = append(b, `\",\"activityId\":\"`...)
			b = appendNestedContent(b, r.Activity)
			b = append(b, `\"}`...)
			n++
		}
	}
	return append(b, `]}"`...)
}

// tag is a JSON string holding {"source":"COPILOT_STUDIO","bot-name",
// "turn-id","channel","topics"} and the agent's own keys.
func (e *aktoEncoder) tag(b []byte, t *pairing.Turn, src *aktoSource) []byte {
	b = append(b, `"{\"source\":\"COPILOT_STUDIO\",\"bot-name\":\"`...)
	b = appendNestedContent(b, src.botName)
	b = append(b, `\",\"turn-id\":\"`...)
	b = t.AppendID(b)
	if ch := t.Conversation().Channel(); ch != "" {
		b = append(b, `\",\"channel\":\"`...)
		b = appendNestedContent(b, ch)
	}
	e.names = t.Topics(e.names[:0])
	if topics := e.names; len(topics) > 0 {
		b = append(b, `\",\"topics\":\"`...)
		for i, name := range topics {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNestedContent(b, name)
		}
	}
	b = append(b, `\"`...)
	b = append(b, src.tagTail...)
	return append(b, `}"`...)
}

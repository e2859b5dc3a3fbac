package activitypairprocessor

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// aktoEncoder writes the Akto traffic record as JSON bytes in the body.
type aktoEncoder struct {
	accountID, vxlanID string
	maxTraces          int
	resources          *resources
	sources            []*aktoSource // by pairing.Source, filled on first use
	// headersHead opens every record's request headers, up to the value of
	// x-akto-message-id (escaped for inside the headers string).
	headersHead string

	buf    []byte
	ids    textArena
	names  []string
	texts  []span // of the replies' escaped texts in buf
	steps  []stepSummary
	traces tracesBuilder
}

func newAktoEncoder(cfg *Config, res *resources) *aktoEncoder {
	var b []byte
	b = append(b, `"{\"host\":\"`...)
	b = appendNestedContent(b, strings.ToLower(cfg.AktoHost))
	b = append(b, `\",\"content-type\":\"application/json\",\"`+schema.AktoHeaderMessageID+`\":\"`...)
	return &aktoEncoder{accountID: cfg.AktoAccountID, vxlanID: cfg.AktoVxlanID, maxTraces: cfg.MaxTracesBytes,
		resources: res, headersHead: string(b)}
}

// span is a range of bytes.
type span struct{ from, to int }

func (e *aktoEncoder) readsText() bool { return true }

const aktoIPPlaceholder = "0.0.0.0"

// aktoSource is what an Akto record takes from its source resource, written
// once per source: the agent's name as Akto spells it, the source's own
// request header (escaped for inside the headers string) and the tag (a
// JSON string: the same for every record of the agent).
type aktoSource struct {
	botName    string
	headerTail string
	tag        string
}

// aktoTagKeys are the agent's attributes (from Dataverse, when the receiver
// has them) that the tag carries, under the tag's own keys, exactly as they
// are. bot-published-state is written only for a published agent.
var aktoTagKeys = []struct{ attr, tag string }{
	{schema.AgentID, schema.AktoTagBotID},
	{schema.AgentSchemaName, schema.AktoTagSchemaName},
	{schema.AgentEnvironmentID, schema.AktoTagEnvironmentID},
	{schema.AgentAuthenticationMode, schema.AktoTagAuthMode},
	{schema.AgentUnauthenticated, schema.AktoTagUnauthenticated},
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
	if v, ok := attrs.Get(schema.AppInsightsAppID); ok && v.AsString() != "" {
		s.headerTail = string(appendHeader(nil, schema.AktoHeaderAppID, v.AsString()))
	}

	var b []byte
	b = append(b, '{')
	b = appendMember(b, schema.AktoTagSource, schema.AktoTagSourceValue)
	b = append(b, ',')
	b = appendMember(b, schema.AktoTagBotName, s.botName)
	b = append(b, ',')
	b = appendMember(b, schema.AktoTagGenAI, schema.AktoGenAIValue)
	for _, k := range aktoTagKeys {
		if v, ok := attrs.Get(k.attr); ok && v.AsString() != "" {
			b = append(b, ',')
			b = appendMember(b, k.tag, v.AsString())
		}
	}
	if v, ok := attrs.Get(schema.AgentPublishedState); ok && v.Str() == schema.PublishedStatePublished {
		b = append(b, ',')
		b = appendMember(b, schema.AktoTagPublishedState, schema.PublishedStatePublished)
	}
	b = append(b, '}')
	s.tag = string(appendJSONString(nil, string(b)))
	return s
}

// appendMember appends "key":"value" (plain JSON).
func appendMember(b []byte, key, value string) []byte {
	b = appendJSONString(b, key)
	b = append(b, ':')
	return appendJSONString(b, value)
}

// appendHeader appends ,"key":"value" escaped for inside the request
// headers string (the keys need no escaping).
func appendHeader(b []byte, key, value string) []byte {
	b = append(b, `,\"`...)
	b = append(b, key...)
	b = append(b, `\":\"`...)
	b = appendNestedContent(b, value)
	return append(b, `\"`...)
}

// sanitizeAgentName spells an agent name as Akto's collections and tags do:
// every run of characters that are not letters, digits or '-' becomes one
// '-', runs of '-' collapse, leading and trailing '-' go, and the result is
// lower-cased (Unicode letters and digits are kept), in that order.
func sanitizeAgentName(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			dash = true // '-' too: a run of them is one separator
			continue
		}
		if dash && b.Len() > 0 {
			b.WriteByte('-')
		}
		dash = false
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
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
	hasSteps := false
	for i := range t.Len() {
		if t.Row(i).Kind.IsStep() {
			hasSteps = true
			break
		}
	}
	b = append(b, `","method":"POST","requestHeaders":`...)
	b = e.requestHeaders(b, t, src, hasSteps)
	b = append(b, `,"responseHeaders":"{\"content-type\":\"application/json\"}","requestPayload":`...)
	b = e.requestPayload(b, t)
	b = append(b, `,"responsePayload":`...)
	b = e.responsePayload(b, t)
	b = append(b, `,"ip":"`+aktoIPPlaceholder+`","time":"`...)
	b = strconv.AppendInt(b, t.At()/int64(time.Second), 10)
	if t.Outcome() == pairing.OutcomeFailed {
		b = append(b, `","statusCode":"500","type":"HTTP/1.1","status":"Internal Server Error"`...)
	} else {
		b = append(b, `","statusCode":"200","type":"HTTP/1.1","status":"OK"`...)
	}
	b = e.trailer(b, src)
	if hasSteps {
		b = append(b, `,"_traces":`...)
		b = appendJSONString(b, unsafeString(e.traces.build(t, e.maxTraces)))
	}
	return append(b, '}')
}

// trailer appends the fields every record of a source ends with: the
// account, is_pending, source and the tag.
func (e *aktoEncoder) trailer(b []byte, src *aktoSource) []byte {
	b = append(b, `,"akto_account_id":`...)
	b = appendJSONString(b, e.accountID)
	b = append(b, `,"akto_vxlan_id":`...)
	b = appendJSONString(b, e.vxlanID)
	b = append(b, `,"is_pending":"false","source":"MIRRORING","tag":`...)
	return append(b, src.tag...)
}

// requestHeaders is a JSON string holding the host, the content type and
// everything that differs per turn: the turn id (x-akto-message-id), its
// conversation, index, user message, channel, locale, user, topics, tool
// calls and error codes.
func (e *aktoEncoder) requestHeaders(b []byte, t *pairing.Turn, src *aktoSource, hasSteps bool) []byte {
	c := t.Conversation()
	b = append(b, e.headersHead...)
	b = t.AppendID(b)
	b = append(b, `\"`...)
	b = appendHeader(b, schema.AktoHeaderConversationID, c.ID())
	b = append(b, `,\"`+schema.AktoHeaderTurnIndex+`\":\"`...)
	b = strconv.AppendInt(b, int64(t.Index()), 10)
	b = append(b, `\"`...)
	if r := t.Request(); r != nil {
		b = appendHeader(b, schema.AktoHeaderActivityID, r.Activity)
		if r.Detail != "" {
			b = appendHeader(b, schema.AktoHeaderUserID, r.Detail)
		}
	}
	if ch := c.Channel(); ch != "" {
		b = appendHeader(b, schema.AktoHeaderChannel, ch)
	}
	if l := c.Locale(); l != "" {
		b = appendHeader(b, schema.AktoHeaderLocale, l)
	}
	e.names = t.Topics(e.names[:0])
	if topics := e.names; len(topics) > 0 {
		b = append(b, `,\"`+schema.AktoHeaderTopics+`\":\"`...)
		for i, name := range topics {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNestedContent(b, name)
		}
		b = append(b, `\"`...)
	}
	b = e.turnExtras(b, t, hasSteps)
	b = append(b, src.headerTail...)
	return append(b, `}"`...)
}

// turnExtras appends the headers only some turns have: the tool calls of a
// planned turn, the error codes of a failed one.
func (e *aktoEncoder) turnExtras(b []byte, t *pairing.Turn, hasSteps bool) []byte {
	if hasSteps {
		e.steps = collectSteps(e.steps[:0], t, false)
		if len(e.steps) > 0 {
			b = append(b, `,\"`+schema.AktoHeaderToolCalls+`\":\"`...)
			for i := range e.steps {
				if i == maxToolCallsListed {
					b = append(b, `, +`...)
					b = strconv.AppendInt(b, int64(len(e.steps)-i), 10)
					b = append(b, " more"...)
					break
				}
				st := &e.steps[i]
				if i > 0 {
					b = append(b, ", "...)
				}
				id := st.toolID
				if id == "" {
					id = st.stepID
				}
				b = appendNestedContent(b, id)
				b = append(b, '=')
				b = append(b, st.state...)
			}
			b = append(b, `\"`...)
		}
	}
	if t.Outcome() == pairing.OutcomeFailed {
		n := 0
		for i := range t.Len() {
			r := t.Row(i)
			code := ""
			switch {
			case r.Kind == pairing.KindError:
				code = r.Detail
			case r.Kind == pairing.KindStepError:
				code = unpackStep(r.Detail).errorCode
			}
			if code == "" {
				continue
			}
			if n == 0 {
				b = append(b, `,\"`+schema.AktoHeaderErrorCodes+`\":\"`...)
			} else {
				b = append(b, ',')
			}
			b = appendNestedContent(b, code)
			n++
		}
		if n > 0 {
			b = append(b, `\"`...)
		}
	}
	return b
}

// maxToolCallsListed bounds the tool-calls header; the rest are counted.
const maxToolCallsListed = 64

// appendPathSegment percent-encodes every byte but the unreserved ones
// (RFC 3986), so that Teams ids with ':', '@', ';' and '=' stay one plain
// path segment; url.PathUnescape reads it back. A segment of dots only
// ("." or "..") has its dots encoded too: as they are, a path resolver
// would read them as "this" or "the parent" segment.
func appendPathSegment(b []byte, s string) []byte {
	dots := strings.Trim(s, ".") == ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '~' || (c == '.' && !dots) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&0xf])
	}
	return b
}

// requestPayload is what the user said, as a JSON string holding
// {"text"}; "" for a turn without a user message.
func (e *aktoEncoder) requestPayload(b []byte, t *pairing.Turn) []byte {
	r := t.Request()
	if r == nil {
		return append(b, `""`...)
	}
	b = append(b, `"{\"text\":\"`...)
	b = appendNestedContent(b, r.Text)
	return append(b, `\"}"`...)
}

// responsePayload is what the agent said, as a JSON string holding
// {"text": the replies joined by newlines} and, when there are several,
// "messages": [{"text"}, ...] in send order; "" for a turn without any.
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
	switch len(texts) {
	case 0:
		return append(b, `""`...)
	case 1:
		return append(b, `\"}"`...)
	}
	b = append(b, `\",\"messages\":[`...)
	for n, sp := range texts {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `{\"text\":\"`...)
		b = append(b, b[sp.from:sp.to]...)
		b = append(b, `\"}`...)
	}
	return append(b, `]}"`...)
}

// unsafeString views b as a string without copying; b must not change
// while the string is in use.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

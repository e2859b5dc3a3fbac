package copilotstudioreceiver

import (
	"bytes"
	"fmt"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// field is what a known customDimensions key becomes.
type field uint8

const (
	fieldOther field = iota // copilotstudio.dimensions.<key>
	fieldActivityType
	fieldActivityName
	fieldActivityValue
	fieldChannelID
	fieldConversationID
	fieldActivityID
	fieldReplyToID
	fieldFromID
	fieldFromName
	fieldRecipientID
	fieldRecipientName
	fieldLocale
	fieldText
	fieldDesignMode
	fieldTopicName
	fieldTopicKind
	fieldErrorCode
	fieldErrorMessage
)

// knownField maps a lower-cased customDimensions key to its field; keys
// case varies across Copilot Studio versions (designMode / DesignMode,
// TopicName / topicName). A switch, because this runs for every key of every
// row and beats a map lookup.
func knownField(lower []byte) field {
	switch string(lower) {
	case "type":
		return fieldActivityType
	case "name":
		return fieldActivityName
	case "value":
		return fieldActivityValue
	case "channelid":
		return fieldChannelID
	case "conversationid":
		return fieldConversationID
	case "activityid":
		return fieldActivityID
	case "replyactivityid", "replytoid":
		return fieldReplyToID
	case "fromid":
		return fieldFromID
	case "fromname":
		return fieldFromName
	case "recipientid":
		return fieldRecipientID
	case "recipientname":
		return fieldRecipientName
	case "locale":
		return fieldLocale
	case "text":
		return fieldText
	case "designmode":
		return fieldDesignMode
	case "topicname":
		return fieldTopicName
	case "kind":
		return fieldTopicKind
	case "errorcode":
		return fieldErrorCode
	case "errormessage":
		return fieldErrorMessage
	}
	return fieldOther
}

// fieldKeys are the attribute keys of the fields that map one to one.
var fieldKeys = [...]string{
	fieldActivityType:   schema.ActivityType,
	fieldActivityName:   schema.ActivityName,
	fieldActivityValue:  schema.ActivityValue,
	fieldChannelID:      schema.ChannelID,
	fieldConversationID: schema.ConversationID,
	fieldActivityID:     schema.ActivityID,
	fieldReplyToID:      schema.ReplyToActivityID,
	fieldFromID:         schema.UserID,
	fieldFromName:       schema.UserName,
	fieldRecipientID:    schema.RecipientID,
	fieldRecipientName:  schema.RecipientName,
	fieldLocale:         schema.Locale,
	fieldTopicName:      schema.TopicName,
	fieldTopicKind:      schema.TopicKind,
	fieldErrorCode:      schema.ErrorCode,
	fieldErrorMessage:   schema.ErrorMessage,
	fieldText:           "",
	fieldDesignMode:     schema.DesignMode,
}

// parseBool reads "True"/"False" in any case (the SDK writes .NET's
// bool.ToString()) and JSON true/false.
func parseBool(v []byte) (bool, bool) {
	switch {
	case len(v) == 4 && (v[0]|0x20) == 't' && (v[1]|0x20) == 'r' && (v[2]|0x20) == 'u' && (v[3]|0x20) == 'e':
		return true, true
	case len(v) == 5 && (v[0]|0x20) == 'f' && (v[1]|0x20) == 'a' && (v[2]|0x20) == 'l' && (v[3]|0x20) == 's' && (v[4]|0x20) == 'e':
		return false, true
	}
	return false, false
}

type dimPair struct {
	keyStart, keyEnd int // into dimensions.keys
	valStart, valEnd int // into dimensions.arena
	kind             appinsights.CellKind
	field            field
}

// dimensions parses a row's customDimensions: a JSON object (sent as a JSON
// string, sometimes as an object) whose values are nearly always strings.
// One is reused row after row, so its buffers stop growing.
type dimensions struct {
	s     appinsights.Scanner
	keys  []byte
	arena []byte // values only
	lower []byte
	pairs []dimPair
	// conversation and activityType index pairs, or -1.
	conversation, activityType int
	// attrs is the number of attributes the pairs become (not the null
	// values, not the text that becomes the body), so the record's map is
	// allocated once at its exact size.
	attrs int
}

func (d *dimensions) value(i int) []byte {
	p := d.pairs[i]
	return d.arena[p.valStart:p.valEnd]
}

func (d *dimensions) parse(row *appinsights.Row, isMessage bool) error {
	d.pairs, d.keys, d.arena = d.pairs[:0], d.keys[:0], d.arena[:0]
	d.conversation, d.activityType, d.attrs = -1, -1, 0
	var data []byte
	switch row.Dimensions.Kind {
	case appinsights.CellNull, appinsights.CellMissing:
		return nil
	case appinsights.CellString, appinsights.CellRaw:
		data = row.Bytes(row.Dimensions)
	}
	if len(bytes.TrimSpace(data)) == 0 && row.Dimensions.Kind == appinsights.CellString {
		return nil
	}
	s := &d.s
	// A string cell was checked (and repaired) as UTF-8 when it was read.
	s.ResetBytes(data, row.Dimensions.Kind == appinsights.CellString)
	if err := s.Expect('{'); err != nil {
		return fmt.Errorf("customDimensions is not a JSON object: %w", err)
	}
	c, err := s.Next()
	if err != nil {
		return fmt.Errorf("customDimensions: %w", err)
	}
	if c == '}' {
		s.Skip()
	} else {
		for {
			var p dimPair
			p.keyStart = len(d.keys)
			if d.keys, err = s.AppendString(d.keys); err != nil {
				return fmt.Errorf("customDimensions: %w", err)
			}
			p.keyEnd = len(d.keys)
			if err := s.Expect(':'); err != nil {
				return fmt.Errorf("customDimensions: %w", err)
			}
			if c, err = s.Next(); err != nil {
				return fmt.Errorf("customDimensions: %w", err)
			}
			p.valStart = len(d.arena)
			if c == '"' {
				p.kind = appinsights.CellString
				d.arena, err = s.AppendString(d.arena)
			} else {
				p.kind = appinsights.CellRaw
				d.arena, err = s.AppendRaw(d.arena)
				if err == nil && string(d.arena[p.valStart:]) == "null" {
					p.kind = appinsights.CellNull
				}
			}
			if err != nil {
				return fmt.Errorf("customDimensions: %w", err)
			}
			p.valEnd = len(d.arena)
			d.lower = appendLower(d.lower[:0], d.keys[p.keyStart:p.keyEnd])
			p.field = knownField(d.lower)
			switch p.field {
			case fieldActivityType, fieldActivityName, fieldActivityValue:
				// Activity properties only on message rows; elsewhere (custom
				// events) "type" or "name" mean something else.
				if !isMessage {
					p.field = fieldOther
				}
			}
			switch {
			case p.field == fieldConversationID && p.kind == appinsights.CellString && p.valEnd > p.valStart:
				d.conversation = len(d.pairs)
			case p.field == fieldActivityType && p.kind == appinsights.CellString:
				d.activityType = len(d.pairs)
			}
			if p.field == fieldOther && p.kind == appinsights.CellString && p.valEnd == p.valStart {
				// An empty custom property says nothing: like null, it makes
				// no attribute (one value less for every processor to scan).
				p.kind = appinsights.CellNull
			}
			if p.kind != appinsights.CellNull && (p.field != fieldText || p.kind != appinsights.CellString) {
				d.attrs++
			}
			d.pairs = append(d.pairs, p)
			more, err := s.EndOf('}')
			if err != nil {
				return fmt.Errorf("customDimensions: %w", err)
			}
			if !more {
				break
			}
		}
	}
	if offset, ok := s.OnlySpaceLeft(); !ok {
		return fmt.Errorf("customDimensions: trailing data after the object at byte %d", offset)
	}
	return nil
}

func appendLower(dst, src []byte) []byte {
	for _, c := range src {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

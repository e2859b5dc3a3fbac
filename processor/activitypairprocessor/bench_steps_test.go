package activitypairprocessor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// stepRows streams transcript rows for n conversations, round-robin, as
// the transcripts receiver writes them: each turn is a user message, a
// plan, a step triggered, bound and finished, a reply and the plan's end
// (seven rows), so one row in seven opens a turn and completes the one
// before, and every emitted turn carries a _traces array and a tool list.
type stepRows struct {
	n    int
	next int
}

const stepCycle = 7

func (g *stepRows) batch(size int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(schema.Source, schema.SourceTranscripts)
	res.PutStr(schema.AgentName, "Helpdesk")
	res.PutStr(schema.AgentID, "198eca5f-0000-4000-8000-0000000000a1")
	res.PutStr(schema.AgentSchemaName, "crx_helpdesk")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	recs.EnsureCapacity(size)
	str := strings.Clone // every string its own allocation, as a receiver's are
	for range size {
		k := g.next
		g.next++
		conv, seq := k%g.n, k/g.n
		pos := seq + conv%stepCycle
		turn, step := pos/stepCycle, pos%stepCycle
		// a conversation that starts mid-turn has no user message for its
		// first rows to name (they would wait reply_timeout for it)
		answered := pos-seq <= stepCycle*turn
		at := base.Add(time.Duration(seq) * 500 * time.Millisecond)
		rec := recs.AppendEmpty()
		rec.SetTimestamp(pcommon.NewTimestampFromTime(at))
		rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(at.Add(30 * time.Minute)))
		a := rec.Attributes()
		a.EnsureCapacity(16)
		convID := "Dl" + strconv.Itoa(conv) + "-aaaaaaaaaaaaaaaaaaaaaa"
		user := convID + "|" + strconv.Itoa(turn)
		stepID := fmt.Sprintf("5f1c0a2e-7c1e-4a0e-9f7e-%012x", k/stepCycle)
		a.PutStr(schema.ConversationID, convID)
		a.PutStr(schema.ItemID, fmt.Sprintf("%08x-0000-8000-8000-%012x", k>>32, k&0xffffffffffff))
		a.PutStr(schema.AgentName, str("Helpdesk"))
		a.PutStr(schema.ChannelID, str("msteams"))
		a.PutStr(schema.Locale, str("en-US"))
		event := func(name, typ string, value string) {
			a.PutStr(schema.EventName, name)
			a.PutStr(schema.ActivityType, str(typ))
			a.PutStr(schema.ActivityName, str(name))
			a.PutStr(schema.ActivityID, str(stepID+"-"+strconv.Itoa(step)))
			if answered {
				a.PutStr(schema.ReplyToActivityID, str(user))
			}
			a.PutStr(schema.ActivityRole, str(schema.RoleBot))
			a.PutStr(schema.ActivityValue, str(value))
			a.PutStr(schema.PlanID, str("p-"+stepID))
		}
		stepAttrs := func(state string) {
			a.PutStr(schema.ToolCallID, str(stepID))
			a.PutStr(schema.ToolID, str("crx_helpdesk.action.GetTicket"))
			a.PutStr(schema.ToolKind, str(schema.ToolKindAction))
			a.PutStr(schema.StepState, str(state))
		}
		switch step {
		case 0:
			a.PutStr(schema.EventName, schema.EventMessageReceived)
			a.PutStr(schema.ActivityType, str("message"))
			a.PutStr(schema.ActivityID, user)
			a.PutStr(schema.ActivityRole, str(schema.RoleUser))
			a.PutStr(schema.UserID, str("29:1f0c9e5a8b7d6c4e3a2b1"))
			rec.Body().SetStr(str("Is ticket 4711 closed? It was about the VPN on my laptop."))
		case 1:
			event(schema.EventPlanReceived, "event", `{"planIdentifier":"p-`+stepID+`","steps":["crx_helpdesk.action.GetTicket"],"isFinalPlan":true}`)
		case 2:
			event(schema.EventPlanStepTriggered, "event", `{"planIdentifier":"p-`+stepID+`","stepId":"`+stepID+`","taskDialogId":"crx_helpdesk.action.GetTicket","thought":"The user asks about a ticket; GetTicket returns its status.","state":1,"type":"Action"}`)
			stepAttrs(schema.StepStateTriggered)
		case 3:
			event(schema.EventPlanStepBindUpdate, "event", `{"planIdentifier":"p-`+stepID+`","stepId":"`+stepID+`","taskDialogId":"crx_helpdesk.action.GetTicket","arguments":{"ticketId":"4711"}}`)
			stepAttrs("")
			a.PutStr(schema.ToolArguments, str(`{"ticketId":"4711"}`))
		case 4:
			event(schema.EventPlanStepFinished, "event", `{"planIdentifier":"p-`+stepID+`","stepId":"`+stepID+`","taskDialogId":"crx_helpdesk.action.GetTicket","observation":{"Response":{"status":"Closed","closedBy":"Dana","closedOn":"2026-02-12","summary":"VPN profile reinstalled"}},"state":"completed","executionTime":"00:00:01.7800000"}`)
			stepAttrs(schema.StepStateCompleted)
			a.PutInt(schema.StepDurationMS, 1780)
		case 5:
			a.PutStr(schema.EventName, schema.EventMessageSend)
			a.PutStr(schema.ActivityType, str("message"))
			if answered {
				a.PutStr(schema.ReplyToActivityID, str(user))
			}
			a.PutStr(schema.ActivityRole, str(schema.RoleBot))
			rec.Body().SetStr(str("Ticket 4711 is closed: Dana reinstalled your VPN profile on 12 February."))
		default:
			event(schema.EventPlanFinished, "event", `{"planId":"p-`+stepID+`"}`)
		}
	}
	return ld
}

// BenchmarkPairingSteps is the processor's cost per row for transcript
// turns with plan and tool steps, at 1000 open conversations, in both
// formats.
func BenchmarkPairingSteps(b *testing.B) {
	for _, format := range []string{formatAkto, formatOTLP} {
		b.Run(format, func(b *testing.B) {
			cfg := createDefaultConfig().(*Config)
			cfg.ReorderWindow = 0
			cfg.Format = format
			p, err := newProcessor(processortest.NewNopSettings(typ), cfg, consumertest.NewNop(), clock.System)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = p.Shutdown(context.Background()) }()
			runRowsBenchmark(b, p, &stepRows{n: 1000}, 7000)
			b.ReportMetric(float64(p.core.OpenTurns()), "open-turns")
		})
	}
}

// toolCallRows is a stream of tool-call records, as the webhook receiver
// writes them (one resource each).
type toolCallRows struct{ next int }

func (g *toolCallRows) batch(size int) plog.Logs {
	ld := plog.NewLogs()
	for range size {
		k := g.next
		g.next++
		one := toolCallLogs(fmt.Sprintf("%032x", k))
		one.ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
	}
	return ld
}

// BenchmarkToolCalls is the cost of passing on a tool-call record (no
// pairing), in both formats.
func BenchmarkToolCalls(b *testing.B) {
	for _, format := range []string{formatAkto, formatOTLP} {
		b.Run(format, func(b *testing.B) {
			cfg := createDefaultConfig().(*Config)
			cfg.Format = format
			p, err := newProcessor(processortest.NewNopSettings(typ), cfg, consumertest.NewNop(), clock.System)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = p.Shutdown(context.Background()) }()
			runRowsBenchmark(b, p, &toolCallRows{}, 0)
		})
	}
}

package activitypairprocessor

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// The sources rows are read from, as the polling receivers describe them
// on every batch (scope attributes schema.ReplayFrom and
// schema.PollInterval): how far back a source may deliver rows again, so
// that the ids of emitted rows are kept until then (pairing.Origin), and
// how often it polls, to check this processor's settings against.
//
// A source is the Application Insights application
// (copilotstudio.appinsights.app_id) or the Dataverse environment
// (copilotstudio.dataverse.url) on the resource: each receiver reads one
// and stamps its own batches. Rows of any other resource have no origin:
// their ids are kept for emitted_ids_ttl only.

// origins names each source an origin, in the order they are first seen
// (or restored).
type origins struct {
	byKey map[string]pairing.Origin
	list  []originState // by origin; [0] is no origin
}

type originState struct {
	key     string
	checked bool // the settings were checked against its poll interval
}

func newOrigins() *origins {
	return &origins{byKey: map[string]pairing.Origin{}, list: make([]originState, 1)}
}

// originKey names the source of a resource's rows, "" if none is known.
func originKey(attrs pcommon.Map) string {
	if v, ok := attrs.Get(schema.AppInsightsAppID); ok && v.Str() != "" {
		return "appinsights " + v.Str()
	}
	if v, ok := attrs.Get(schema.DataverseURL); ok && v.Str() != "" {
		return "dataverse " + v.Str()
	}
	return ""
}

// get returns the origin of a source key, naming it on first use; 0 for
// no key, or past pairing.MaxOrigins sources.
func (os *origins) get(key string) pairing.Origin {
	if key == "" {
		return 0
	}
	if o, ok := os.byKey[key]; ok {
		return o
	}
	if len(os.list) >= pairing.MaxOrigins {
		return 0
	}
	o := pairing.Origin(len(os.list))
	os.list = append(os.list, originState{key: key})
	os.byKey[key] = o
	return o
}

// key is the source key of an origin.
func (os *origins) key(o pairing.Origin) string { return os.list[o].key }

// noteScope reads what a scope of a batch says about its source: the
// replay_from the core keeps emitted ids for, and, on the source's first
// batch, the poll interval the settings are checked against.
func (p *pairProcessor) noteScope(res pcommon.Resource, scope pcommon.InstrumentationScope) {
	attrs := scope.Attributes()
	replayFrom, stamped := attrs.Get(schema.ReplayFrom)
	poll, polls := attrs.Get(schema.PollInterval)
	if !stamped && !polls {
		return
	}
	o := p.origins.get(originKey(res.Attributes()))
	if o == 0 {
		return
	}
	if stamped && replayFrom.Type() == pcommon.ValueTypeInt && replayFrom.Int() > 0 {
		p.core.SetReplayFrom(o, replayFrom.Int())
	}
	if st := &p.origins.list[o]; polls && poll.Type() == pcommon.ValueTypeInt && !st.checked {
		st.checked = true
		for _, problem := range settingsProblems(p.cfg, time.Duration(poll.Int()), 0) {
			p.logger.Error("activitypair's settings do not fit a source's: "+problem.message,
				zap.String("source", st.key), zap.String("scope", scope.Name()))
			p.telemetry.ActivitypairSettingsConflicts.Add(context.Background(), 1,
				metric.WithAttributeSet(attribute.NewSet(attribute.String("setting", problem.setting))))
		}
	}
}

// settingProblem is a setting of this processor that does not fit a
// source's, with what it does and the fix.
type settingProblem struct {
	setting string // reply_timeout, emitted_ids_ttl
	message string
}

// settingsProblems checks cfg against a source polling every poll and
// reading again overlap before its cursor (0 when not known).
func settingsProblems(cfg *Config, poll, overlap time.Duration) []settingProblem {
	var out []settingProblem
	if cfg.ReplyTimeout <= poll {
		out = append(out, settingProblem{"reply_timeout", fmt.Sprintf(
			"reply_timeout %v is not above the receiver's poll_interval %v: a conversation times out between two polls, "+
				"and replies that land in the next poll miss their turn; set the processor's reply_timeout above the receiver's poll_interval "+
				"(e.g. poll_interval + 5m) or lower poll_interval", cfg.ReplyTimeout, poll)})
	}
	if reach := poll + overlap; cfg.EmittedIDsTTL < reach {
		what := fmt.Sprintf("the receiver's poll_interval %v", poll)
		if overlap > 0 {
			what = fmt.Sprintf("the receiver's poll_interval %v plus its overlap %v", poll, overlap)
		}
		out = append(out, settingProblem{"emitted_ids_ttl", fmt.Sprintf(
			"emitted_ids_ttl %v is shorter than %s: rows the receiver delivers again are still dropped until its replay_from passes them, "+
				"but a conversation whose turns all went out is remembered for less than one poll spans: one that goes on after a quiet poll "+
				"starts its turn numbering (the n of /message/{n}) at 0 again, and late replies to it are not recognised; "+
				"set the processor's emitted_ids_ttl to at least %v",
			cfg.EmittedIDsTTL, what, reach)})
	}
	return out
}

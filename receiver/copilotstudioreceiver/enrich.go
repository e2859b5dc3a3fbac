package copilotstudioreceiver

import (
	"context"
	"net/http"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/dataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// newAgents is the agent list of the configured Dataverse environment, its
// reads counted in the dataverse_refreshes metric.
func (r *logsReceiver) newAgents(cfg *DataverseConfig, httpClient *http.Client) (*dataverse.Agents, error) {
	cred, err := azureauth.NewCredential(cfg.credentialConfig(&r.cfg.Auth), httpClient, r.tokenRetry)
	if err != nil {
		return nil, err
	}
	client, err := dataverse.NewClient(cfg.URL, cred, httpClient)
	if err != nil {
		return nil, err
	}
	return dataverse.NewAgents(client, dataverse.AgentsSettings{
		RefreshInterval: cfg.RefreshInterval,
		Clock:           r.clock,
		Logger:          r.logger,
		OnRead: func(ctx context.Context, err error) {
			result := "success"
			if err != nil {
				result = "failure"
			}
			r.telemetry.CopilotstudioDataverseRefreshes.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
		},
	}), nil
}

// awaitAgents holds the first poll until the agent list is read, at most
// dataverse.initial_wait, so that a backlog read at start carries its
// agents' identity. Dataverse never stops the telemetry: past the wait, or
// when the read failed, polling starts without the list.
func (r *logsReceiver) awaitAgents(ctx context.Context) {
	if r.agents == nil {
		return
	}
	wait := r.cfg.Dataverse.Get().InitialWait
	if err := r.agents.WaitFirst(ctx, wait); err != nil && ctx.Err() == nil {
		r.logger.Warn("polling starts without the agent list from Dataverse: turns go on without their agent's identity until it is read, which is tried again when a row of an agent not in the list arrives (at most every minute) and every dataverse.refresh_interval",
			zap.Error(err), zap.Duration("initial_wait", wait))
	}
}

// resolveAgents runs before a window's records are built: when its rows
// name an agent the list lacks, it asks for an early read of the agents and
// waits for it, at most dataverse.initial_wait (the early reads' spacing
// still holds), so that the rows revealing a new agent already carry its
// identity. Past the wait the window goes on; its rows of that agent are
// counted as unenriched.
func (r *logsReceiver) resolveAgents(ctx context.Context, b *windowBuilder) {
	unknown := b.unknownAgents(func(name, topic string) bool {
		_, ok := r.agents.Lookup(name, topic)
		return ok
	})
	if len(unknown) == 0 {
		return
	}
	wait := r.cfg.Dataverse.Get().InitialWait
	if r.manualPolling {
		wait = 0 // no reads run to wait for: ask only
	}
	if r.agents.AwaitUnknown(ctx, unknown, wait) {
		r.logger.Debug("read the agents before building a window that names agents the list lacked", zap.Strings("agents", unknown))
	}
}

// enrich adds the agent's Dataverse facts to each agent's resource. The
// receiver makes one resource per agent, so this costs a lookup per agent
// and batch, not per row. An agent not in the list asks for an early read.
func (r *logsReceiver) enrich(ctx context.Context, logs plog.Logs) {
	var unenriched int64
	for _, rl := range logs.ResourceLogs().All() {
		res := rl.Resource().Attributes()
		name, _ := res.Get(schema.AgentName)
		agent, ok := r.agents.Lookup(name.Str(), firstTopicName(rl))
		if !ok {
			unenriched += int64(countRecords(rl))
			r.agents.Unknown(name.Str())
			continue
		}
		agent.PutResource(res)
	}
	if unenriched > 0 {
		r.telemetry.CopilotstudioRowsUnenriched.Add(ctx, unenriched)
	}
}

// firstTopicName finds a fully qualified topic name among the agent's rows:
// its prefix is the agent's schema name, which is unambiguous where display
// names are not.
func firstTopicName(rl plog.ResourceLogs) string {
	for _, sl := range rl.ScopeLogs().All() {
		for _, lr := range sl.LogRecords().All() {
			if v, ok := lr.Attributes().Get(schema.TopicName); ok && dataverse.SchemaNameOfTopic(v.Str()) != "" {
				return v.Str()
			}
		}
	}
	return ""
}

func countRecords(rl plog.ResourceLogs) int {
	n := 0
	for _, sl := range rl.ScopeLogs().All() {
		n += sl.LogRecords().Len()
	}
	return n
}

package copilotstudioreceiver

import (
	"context"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/dataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudioreceiver/internal/metadata"
)

// agentDirectory keeps what Dataverse knows about the agents, refreshed in
// the background. It never holds up the telemetry: until the first read
// succeeds, or while Dataverse is down, rows go on without its facts (the
// last good list stays in use), and a log line and metrics say so.
type agentDirectory struct {
	client    *dataverse.Client
	dir       dataverse.Directory
	interval  time.Duration
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
}

func newAgentDirectory(cfg *DataverseConfig, receiverAuth *azureauth.Config, httpClient *http.Client, tokenRetry policy.RetryOptions,
	logger *zap.Logger, tb *metadata.TelemetryBuilder,
) (*agentDirectory, error) {
	cred, err := azureauth.NewCredential(cfg.credentialConfig(receiverAuth), httpClient, tokenRetry)
	if err != nil {
		return nil, err
	}
	client, err := dataverse.NewClient(cfg.URL, cred, httpClient)
	if err != nil {
		return nil, err
	}
	return &agentDirectory{client: client, interval: cfg.RefreshInterval, logger: logger, telemetry: tb}, nil
}

// run reads the agents now and then every interval until ctx ends.
func (d *agentDirectory) run(ctx context.Context, sleep func(context.Context, time.Duration) error) {
	for {
		d.refresh(ctx)
		if sleep(ctx, d.interval) != nil {
			return
		}
	}
}

func (d *agentDirectory) refresh(ctx context.Context) {
	agents, err := d.client.Agents(ctx)
	if ctx.Err() != nil {
		return
	}
	result := "success"
	if err != nil {
		result = "failure"
		d.logger.Warn("reading the agents from Dataverse failed; rows go on without the agents' Dataverse facts (the last list read, if any, stays in use)",
			zap.Error(err), zap.Duration("next_try_in", d.interval))
	} else {
		d.dir.Replace(agents)
		d.logger.Info("read the agents from Dataverse", zap.Int("agents", len(agents)))
	}
	d.telemetry.CopilotstudioDataverseRefreshes.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
}

// enrich adds the agent's Dataverse facts to each agent's resource. The
// receiver makes one resource per agent, so this costs a lookup per agent
// and window, not per row.
func (d *agentDirectory) enrich(ctx context.Context, logs plog.Logs) {
	var unenriched int64
	for _, rl := range logs.ResourceLogs().All() {
		res := rl.Resource().Attributes()
		name, _ := res.Get(schema.AgentName)
		agent, ok := d.dir.Lookup(name.Str(), firstTopicName(rl))
		if !ok {
			unenriched += int64(countRecords(rl))
			continue
		}
		res.PutStr(schema.AgentID, agent.ID)
		res.PutStr(schema.AgentSchemaName, agent.SchemaName)
		res.PutStr(schema.AgentEnvironmentID, agent.EnvironmentID)
		res.PutStr(schema.AgentAuthenticationMode, agent.AuthenticationMode)
		res.PutStr(schema.AgentPublishedState, agent.PublishedState)
		res.PutBool(schema.AgentUnauthenticated, agent.Unauthenticated())
	}
	if unenriched > 0 {
		d.telemetry.CopilotstudioRowsUnenriched.Add(ctx, unenriched)
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

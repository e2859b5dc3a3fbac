package copilotstudioreceiver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/cursor"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/dataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/logcap"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/storageclient"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudioreceiver/internal/metadata"
)

// maxMalformedLogs bounds the per-row warnings of one window; the rest are
// still counted and summarised in one line.
const maxMalformedLogs = 100

type logsReceiver struct {
	cfg       *Config
	set       receiver.Settings
	next      consumer.Logs
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	obsrecv   *receiverhelper.ObsReport

	// clock is the receiver's time; tests drive a fake one.
	clock clock.Clock
	// manualPolling (tests) keeps Start from running the poll loop and the
	// Dataverse reads.
	manualPolling bool
	// tokenRetry is azidentity's own retry of token requests (default when
	// zero); tests turn it off because it sleeps for real.
	tokenRetry policy.RetryOptions

	wantedEvents map[string]bool
	// malformed logs the malformed rows of a committed window, capped.
	malformed *logcap.Logger

	// skew is how far the query API's clock is from this host's, as its
	// answers' Date headers tell (used and changed by the poll loop only).
	skew struct {
		offset        time.Duration // service minus host, at most the true one
		known, logged bool
	}

	client  *appinsights.Client
	storage storage.Client
	state   *cursor.Checkpoint
	// agents is the Dataverse agent list; nil when dataverse is not configured.
	agents *dataverse.Agents

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLogsReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*logsReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &logsReceiver{
		cfg: cfg, set: set, next: next, logger: set.Logger, telemetry: tb, obsrecv: obsrecv,
		clock: clock.System, wantedEvents: toSet(cfg.EventNames), malformed: logcap.New(set.Logger, maxMalformedLogs),
	}, nil
}

func (r *logsReceiver) Start(ctx context.Context, host component.Host) error {
	if r.cfg.Auth.Type == azureauth.APIKey {
		r.logger.Warn("auth.type api_key is deprecated: Application Insights API keys were retired on 2026-03-31; use Microsoft Entra ID (auth.type client_secret, client_certificate, workload_identity or managed_identity)")
	}
	if r.cfg.TLS.InsecureSkipVerify {
		r.logger.Warn("tls.insecure_skip_verify is true: the certificates of the query API, the token endpoint and Dataverse are not checked, so anyone on the network path can read the credential and the conversations; set tls.ca_file for a private CA instead")
	}
	hc := r.cfg.httpClientConfig()
	httpClient, err := hc.ToClient(ctx, host.GetExtensions(), r.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("building the HTTP client: %w", err)
	}
	r.client, err = appinsights.NewClient(appinsights.Settings{
		Endpoint: r.cfg.Endpoint, ApplicationID: r.cfg.ApplicationID, Auth: &r.cfg.Auth,
		HTTP: httpClient, TokenRetry: r.tokenRetry,
		MaxResponseBytes: r.cfg.MaxResponseBytes, MaxCellBytes: r.cfg.MaxCellBytes,
	})
	if err != nil {
		return err
	}
	if dv := r.cfg.Dataverse.Get(); dv != nil {
		if r.agents, err = r.newAgents(dv, httpClient); err != nil {
			return fmt.Errorf("dataverse: %w", err)
		}
	}

	if r.cfg.StorageID == nil {
		r.logger.Warn("no storage extension configured: the cursor lives in memory, so a restart re-reads initial_lookback and may deliver rows again; set storage to a file_storage extension")
		r.storage = storage.NewNopClient()
	} else if r.storage, err = storageclient.Get(ctx, host, *r.cfg.StorageID, component.KindReceiver, r.set.ID); err != nil {
		return err
	}
	if r.state, err = r.loadState(ctx); err != nil {
		_ = r.storage.Close(ctx)
		r.storage = nil
		return err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if !r.manualPolling {
		if r.agents != nil {
			r.wg.Go(func() { r.agents.Run(runCtx) })
		}
		r.wg.Go(func() { r.run(runCtx) })
	}
	return nil
}

// loadState resumes from the stored cursor. One that cannot be read fails
// Start (on_unreadable_cursor: stop), saying what to do, or is logged,
// counted and replaced by a fresh start from initial_lookback
// (restart_from_lookback).
func (r *logsReceiver) loadState(ctx context.Context) (*cursor.Checkpoint, error) {
	cp, err := cursor.Load(ctx, r.storage, storageKey(r.cfg.ApplicationID))
	if err != nil {
		if r.cfg.OnUnreadableCursor != UnreadableCursorRestart {
			return nil, cursor.UnreadableError(err, "application_id "+r.cfg.ApplicationID, "rows", r.cfg.InitialLookback)
		}
		r.logger.Error("cannot resume from the stored cursor; on_unreadable_cursor is restart_from_lookback, so polling starts again from initial_lookback: rows in that span are delivered again, and rows older than it that were not delivered yet are not read",
			zap.Error(err), zap.Duration("initial_lookback", r.cfg.InitialLookback))
		r.telemetry.CopilotstudioStateResets.Add(ctx, 1)
	}
	if cp == nil {
		return cursor.New(), nil
	}
	r.logger.Info("resuming from the stored cursor", zap.Time("cursor", cp.Cursor), zap.Int("overlap_item_ids", len(cp.Seen)))
	return cp, nil
}

// storageKey is per application id, so pointing the receiver at another
// resource does not reuse a cursor that means nothing there.
func storageKey(appID string) string { return "cursor/" + appID }

func (r *logsReceiver) Shutdown(ctx context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	var err error
	if r.storage != nil {
		err = r.storage.Close(ctx)
	}
	r.telemetry.Shutdown()
	return err
}

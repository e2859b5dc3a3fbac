package copilotstudiowebhookreceiver

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

// withinTest bounds a wait that only a broken receiver would make long.
const withinTest = 10 * time.Second

func TestDeadlineAnswersWhileThePipelineHoldsTheRecord(t *testing.T) {
	g := newGate()
	f := newFixture(t, g, fixtureOptions{configure: func(c *Config) { c.AnswerDeadline = 20 * time.Millisecond }})

	a := f.analyze(webhookclient.Example())
	// The pipeline has not returned (it cannot: the gate is closed), and
	// the call is answered all the same: allowed, marked deadline.
	assert.Equal(t, http.StatusOK, a.Status)
	assert.Equal(t, `{"blockAction":false}`, string(a.Body))
	assert.Equal(t, outcomeDeadline, a.Record)
	<-g.entered
	assert.Equal(t, int64(1), f.calls(endpointAnalyze, outcomeDeadline))
	assert.Equal(t, int64(1), f.sum("copilotstudio_webhook_records_pending"))

	// The caller hung up long ago; the record is still delivered.
	g.release <- nil
	require.NoError(t, f.rcv.Shutdown(context.Background()))
	assert.Equal(t, int64(1), f.sum("copilotstudio_webhook_late_records", attribute.String("result", lateAccepted)))
	assert.Equal(t, int64(0), f.sum("copilotstudio_webhook_records_pending"))
}

func TestLateRefusalIsCountedAndLogged(t *testing.T) {
	g := newGate()
	f := newFixture(t, g, fixtureOptions{configure: func(c *Config) { c.AnswerDeadline = 20 * time.Millisecond }})
	a := f.analyze(webhookclient.Example())
	require.Equal(t, outcomeDeadline, a.Record)
	<-g.entered
	g.release <- errQueueFull
	require.NoError(t, f.rcv.Shutdown(context.Background()))
	assert.Equal(t, int64(1), f.sum("copilotstudio_webhook_late_records", attribute.String("result", lateRefused)))
	lines := f.logged("refused by the pipeline later")
	require.Len(t, lines, 1)
	assert.Len(t, lines[0].ContextMap()["record_id"], 32)
}

func TestRefusingPipelineNeverFailsTheCall(t *testing.T) {
	f := newFixture(t, consumertest.NewErr(errQueueFull), fixtureOptions{})
	for range 3 {
		a := f.analyze(webhookclient.Example())
		assert.Equal(t, http.StatusOK, a.Status)
		assert.Equal(t, `{"blockAction":false}`, string(a.Body))
		assert.Equal(t, outcomeRefused, a.Record)
	}
	assert.Equal(t, int64(3), f.calls(endpointAnalyze, outcomeRefused))
	lines := f.logged("refused by the pipeline (the call is allowed")
	require.Len(t, lines, 3)
	assert.Equal(t, errQueueFull.Error(), lines[0].ContextMap()["error"])
}

func TestLogLinesAreCapped(t *testing.T) {
	f := newFixture(t, consumertest.NewErr(errQueueFull), fixtureOptions{})
	for range logLinesPerMinute + 5 {
		require.Equal(t, http.StatusOK, f.analyze(webhookclient.Example()).Status)
	}
	assert.Len(t, f.logged("refused by the pipeline (the call is allowed"), logLinesPerMinute)
	f.rcv.endLogRounds()
	lines := f.logged("more tool-call records not taken by the pipeline")
	require.Len(t, lines, 1)
	assert.Equal(t, int64(5), lines[0].ContextMap()["not_logged"])
}

func TestOverloadedPipeline(t *testing.T) {
	g := newGate()
	f := newFixture(t, g, fixtureOptions{configure: func(c *Config) {
		c.AnswerDeadline = 20 * time.Millisecond
		c.MaxPendingRecords = 1
	}})
	require.Equal(t, outcomeDeadline, f.analyze(webhookclient.Example()).Record)
	<-g.entered
	// One record is already in the pipeline: the next call is allowed at
	// once, its record not passed on.
	a := f.analyze(webhookclient.Example())
	assert.Equal(t, http.StatusOK, a.Status)
	assert.Equal(t, outcomeOverloaded, a.Record)
	assert.Equal(t, int64(1), f.calls(endpointAnalyze, outcomeOverloaded))
	assert.Len(t, f.logged("max_pending_records"), 1)
	select {
	case <-g.entered:
		t.Fatal("an overloaded call's record reached the pipeline")
	default:
	}
	g.release <- nil
}

func TestShutdownAbandonsRecordsThePipelineDoesNotTake(t *testing.T) {
	g := newGate()
	f := newFixture(t, g, fixtureOptions{configure: func(c *Config) { c.AnswerDeadline = 20 * time.Millisecond }})
	f.rcv.shutdownGrace = 10 * time.Millisecond
	require.Equal(t, outcomeDeadline, f.analyze(webhookclient.Example()).Record)
	<-g.entered
	// Never released: shutdown cancels it after the grace period.
	done := make(chan error, 1)
	go func() { done <- f.rcv.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(withinTest):
		t.Fatal("shutdown hangs on a record the pipeline does not take")
	}
	assert.Equal(t, int64(1), f.sum("copilotstudio_webhook_late_records", attribute.String("result", lateAbandoned)))
	assert.NotEmpty(t, f.logged("still in the pipeline; cancelling them"))
}

package faults

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// The broker-down scenario: an outage that outlasts the sending queue.
//
// collector-config.yaml's queue holds queue_size turns (10,000) and blocks
// when full (block_on_overflow): the processor's call into the exporter
// waits, so does the receiver's, which keeps its cursor, and the rest of the
// backlog waits in Application Insights. The scenario checks each of those
// steps from outside, SIGKILLs the collector while it waits, restarts it,
// and only then brings the broker back; the suite then expects every turn.

// minOutageConversations is the short form's backlog here: about 1,200
// turns, so that half of them still fill more than the queue's batch
// (sending_queue::batch::min_size, 500 turns), which the collector requires
// the queue to hold.
const minOutageConversations = 600

// outageBacklog (tune) gives the short form a backlog its shrunk queue can
// be half of; the full form's 10,000 conversations are left as they are.
func outageBacklog(cfg *workload.Config) {
	cfg.Conversations = max(cfg.Conversations, minOutageConversations)
}

// brokerDown (setup): producers are refused from the start; the collector
// serves pprof, whose goroutine list shows the pipeline waiting on the full
// queue; the short form shrinks the queue below its backlog.
func (r *run) brokerDown() {
	r.kafka.SetProduceDown(true)
	port, err := harness.FreePort()
	if err != nil {
		r.t.Fatal(err)
	}
	r.env["PPROF_ENDPOINT"] = "127.0.0.1:" + strconv.Itoa(port)
	r.overlays = append(r.overlays, filepath.Join(filepath.Dir(harness.CollectorConfigPath()), "collector-config.pprof.yaml"))
	if r.sz.queueShare > 0 {
		r.env["KAFKA_QUEUE_SIZE"] = strconv.Itoa(int(math.Ceil(float64(len(r.work.Turns)) * r.sz.queueShare)))
	}
}

// outlastQueue (during) waits for the queue to fill and the pipeline to
// push back, kills and restarts the collector, checks it resumed from its
// kept cursor with the queue intact and retries the broker, then brings the
// broker back.
func (r *run) outlastQueue() {
	t := r.t
	turns := len(r.work.Turns)
	var capacity float64
	if err := r.waitFor("the sending queue's capacity reported", func() bool {
		capacity = r.metric("otelcol_exporter_queue_capacity")
		return capacity > 0
	}); err != nil {
		t.Fatal(err)
	}
	if float64(turns) <= capacity {
		t.Fatalf("the backlog's %d turns fit in the queue (capacity %v): the outage would not outlast it", turns, capacity)
	}

	// The queue is full: the processor's call into the exporter waits for
	// room that a broker down never makes.
	if err := r.waitFor("the pipeline waiting on the full sending queue", r.waitingOnQueue); err != nil {
		t.Fatalf("%v (queue size %v of %v)", err, r.metric("otelcol_exporter_queue_size"), capacity)
	}
	queued := r.metric("otelcol_exporter_queue_size")
	if queued > capacity {
		t.Fatalf("the queue holds %v turns, over its capacity %v", queued, capacity)
	}
	if n := r.verifier.Records(); n != 0 {
		t.Fatalf("%d records reached a broker that was down", n)
	}
	// The receiver waits inside that call: it has not read the whole
	// backlog, the rest is still in Application Insights.
	lastRow := r.work.Rows[0].IngestionTime
	for _, row := range r.work.Rows {
		if row.IngestionTime.After(lastRow) {
			lastRow = row.IngestionTime
		}
	}
	read := r.azure.AnsweredUpTo()
	if !read.Before(lastRow) {
		t.Fatalf("the receiver has read up to %s, past the backlog's last row (%s): nothing waited in Application Insights", read, lastRow)
	}
	unread := 0
	for _, row := range r.work.Rows {
		if !row.IngestionTime.Before(read) {
			unread++
		}
	}
	requests := r.azure.AppInsights.Requests()
	waitingOn := requests[len(requests)-1] // the answer the receiver is passing on
	refused := r.kafka.ProduceRefused()
	r.note("the queue filled at %v turns (capacity %v) of the backlog's %d; %d rows still in Application Insights", queued, capacity, turns, unread)

	r.kill()

	// The restarted receiver reads again from its kept cursor: no later
	// than the window it was passing on when it was killed.
	if err := r.waitFor("the restarted receiver's first query", func() bool {
		return len(r.azure.AppInsights.Requests()) > len(requests)
	}); err != nil {
		t.Fatal(err)
	}
	first := r.azure.AppInsights.Requests()[len(requests)]
	if first.IngestLower.IsZero() || first.IngestLower.After(waitingOn.IngestLower) {
		t.Fatalf("after the restart the receiver asked from %s, after the window it was passing on (from %s): its cursor moved past rows it never handed on",
			first.IngestLower, waitingOn.IngestLower)
	}
	// The queue came back whole, and the restarted exporter retries the
	// broker, which still refuses it.
	if err := r.waitFor("the queue restored after the SIGKILL", func() bool {
		return r.metric("otelcol_exporter_queue_size") >= queued
	}); err != nil {
		t.Fatalf("%v: %v turns queued before the SIGKILL, %v after", err, queued, r.metric("otelcol_exporter_queue_size"))
	}
	if err := r.waitFor("the restarted exporter refused by the broker", func() bool {
		return r.kafka.ProduceRefused() > refused
	}); err != nil {
		t.Fatal(err)
	}
	r.note("after the SIGKILL the receiver read again from %s (the window it was passing on began at %s), the queue held %v turns; the broker refused %d produce requests in all",
		first.IngestLower.Format(time.RFC3339), waitingOn.IngestLower.Format(time.RFC3339), r.metric("otelcol_exporter_queue_size"), r.kafka.ProduceRefused())
	r.kafka.SetProduceDown(false)
}

// waitingOnQueue reports whether a goroutine of the collector waits in the
// persistent queue's Offer for room (block_on_overflow), from the goroutine
// list pprof serves.
func (r *run) waitingOnQueue() bool {
	stacks, err := goroutines(r.ctx, r.env["PPROF_ENDPOINT"])
	if err != nil {
		return false
	}
	return offerWaiting(stacks)
}

// offerWaiting finds, in a debug=1 goroutine list, a stack whose top frames
// are the queue's condition wait called from persistentQueue.Offer.
func offerWaiting(stacks string) bool {
	for _, stack := range strings.Split(stacks, "\n\n") {
		wait := strings.Index(stack, "exporterhelper/internal/queue.(*cond).Wait+")
		offer := strings.Index(stack, "exporterhelper/internal/queue.(*persistentQueue[...]).Offer+")
		if wait >= 0 && offer > wait {
			return true
		}
	}
	return false
}

func goroutines(ctx context.Context, endpoint string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+endpoint+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("pprof goroutines: %s", resp.Status)
	}
	return string(body), err
}

package faults

import (
	"strconv"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

// The webhook scenarios: collector-config.yaml with
// collector-config.webhook.yaml, and callers playing Copilot Studio
// (internal/testing/webhookclient): threat-detection calls of every shape
// the reference lists, each its own conversation, with a token the Entra ID
// stand-in signed, sent one after the other by each caller while the
// scenario runs. The ground truth is what was sent and how each call was
// answered: every call answered `Otelcol-Record: accepted` must reach the
// topic as its own record, once (after a crash: again only after the kill,
// under the same record id), saying what its call said; every answer must
// be 200 {"blockAction":false}. Calls answered at the deadline, as
// overloaded, or not at all (the collector was down) are counted.

func webhookScenarios() []scenario {
	return []scenario{
		{
			name: "webhook: broker down, then back",
			what: "Kafka refuses producers while callers keep calling: the sending queue fills, the pipeline pushes back, and calls are answered at the receiver's deadline, then as overloaded once max_pending_records records wait; then the broker comes back and calls are accepted again",
			path: webhookPath,
			env: func(sz size) map[string]string {
				env := map[string]string{}
				if sz.webhookQueue > 0 {
					env["KAFKA_QUEUE_SIZE"] = strconv.Itoa(sz.webhookQueue)
				}
				if sz.pendingRecords > 0 {
					env["WEBHOOK_MAX_PENDING_RECORDS"] = strconv.Itoa(sz.pendingRecords)
				}
				return env
			},
			setup:  func(r *run) { r.kafka.SetProduceDown(true) },
			during: func(r *run) { r.webhookBrokerDown() },
			check:  func(r *run) { r.noteCalls() },
		},
		{
			name:  "webhook: SIGKILL while calls flow, repeated",
			what:  "the collector is SIGKILLed and restarted while callers keep calling: after random numbers of accepted calls, and right after records reached the topic",
			path:  webhookPath,
			crash: true,
			during: func(r *run) {
				l := r.webhook.ledger
				flow := r.webhook.flow(r, r.sz.callers)
				defer flow.Stop()
				per := max(20, r.sz.conversations/(r.sz.kills+1))
				for i := 1; i <= r.sz.kills; i++ {
					accepted, records := l.Accepted(), l.Records()
					n := per/2 + r.rng.IntN(per)
					r.waitCalls("calls accepted before a kill", func() bool { return l.Accepted() >= accepted+n })
					if i%2 == 0 {
						// with a batch on its way to the broker, or just sent
						r.waitCalls("records on the topic before a kill", func() bool { return l.Records() > records })
					}
					r.kill()
					flow.Resume()
				}
				accepted := l.Accepted()
				r.waitCalls("calls accepted after the last restart", func() bool { return l.Accepted() >= accepted+per/2 })
				flow.Stop()
			},
			check: func(r *run) { r.noteCalls() },
		},
	}
}

// webhookRun is a webhook scenario's world.
type webhookRun struct {
	endpoint *harness.Webhook
	client   *webhookclient.Client
	gen      *webhookclient.Generator
	ledger   *webhookclient.Ledger
}

// prepareWebhook points the collector's webhook receiver at a loopback
// endpoint that accepts the Entra ID stand-in's tokens.
func (r *run) prepareWebhook(dir string, seed uint64) {
	endpoint, err := r.azure.NewWebhook(dir)
	if err != nil {
		r.t.Fatal(err)
	}
	client, err := endpoint.Client(r.sz.callers)
	if err != nil {
		r.t.Fatal(err)
	}
	ledger := webhookclient.NewLedger()
	ledger.Epoch = r.kills.Epoch
	r.webhook = &webhookRun{endpoint: endpoint, client: client, ledger: ledger,
		gen: webhookclient.NewGenerator(seed, webhookclient.Options{StableAgents: true})}
	r.overlays = append(r.overlays, harness.WebhookOverlayPath())
	r.pathEnv = endpoint.Env()
}

// flow starts callers.
func (w *webhookRun) flow(r *run, callers int) *webhookclient.Flow {
	return webhookclient.StartFlow(r.ctx, w.client, w.gen, w.ledger, callers)
}

func (r *run) waitCalls(what string, cond func() bool) {
	r.t.Helper()
	if err := r.waitFor(what, cond); err != nil {
		r.t.Fatalf("%v\n%s", err, r.webhook.ledger.Report())
	}
}

// webhookBrokerDown (during; the broker is down from the start): calls
// until the pipeline pushes back all the way, checked in order, then the
// broker comes back and calls are accepted again.
func (r *run) webhookBrokerDown() {
	t, l := r.t, r.webhook.ledger
	flow := r.webhook.flow(r, r.sz.callers)
	defer flow.Stop()
	// The queue fills: calls wait for the pipeline until the deadline.
	r.waitCalls("calls answered at the deadline", func() bool { return l.Answers(webhookclient.Deadline) > 0 })
	queued := r.metric("otelcol_exporter_queue_size")
	// max_pending_records records wait: further calls are not passed on.
	r.waitCalls("calls answered as overloaded", func() bool { return l.Answers(webhookclient.Overloaded) >= 2*r.sz.callers })
	flow.Stop()
	if n := l.Records(); n != 0 {
		t.Fatalf("%d records reached a broker that was down", n)
	}
	if refused := r.kafka.ProduceRefused(); refused == 0 {
		t.Fatal("the broker refused no produce request: the exporter never tried it")
	}
	down := l.Report()
	r.note("while the broker was down: %d calls answered accepted (the queue held %v records when calls began to wait), %d at the deadline, %d overloaded; the broker refused %d produce requests",
		down.Answers[webhookclient.Accepted], queued, down.Answers[webhookclient.Deadline], down.Answers[webhookclient.Overloaded], r.kafka.ProduceRefused())

	r.kafka.SetProduceDown(false)
	back := r.webhook.flow(r, r.sz.callers)
	defer back.Stop()
	accepted := l.Accepted()
	more := max(20, r.sz.conversations/20)
	r.waitCalls("calls accepted after the broker came back", func() bool { return l.Accepted() >= accepted+more })
	back.Stop()
}

// noteCalls (check) says how the calls were answered and what became of
// those not answered accepted, for RESULTS.md.
func (r *run) noteCalls() {
	rep := r.webhook.ledger.Report()
	answers := "every answer 200 {\"blockAction\":false}"
	if rep.BadAnswers > 0 {
		answers = strconv.Itoa(rep.BadAnswers) + " answers other than 200 {\"blockAction\":false}"
	}
	r.note("%d calls: %d answered accepted, %d at the deadline, %d overloaded, %d unanswered (the collector was down); %s, the slowest after %v (%d over Copilot Studio's %v); %d calls not answered accepted reached the topic anyway (records the pipeline took after the answer)",
		rep.Sent, rep.Answers[webhookclient.Accepted], rep.Answers[webhookclient.Deadline], rep.Answers[webhookclient.Overloaded],
		rep.Answers[webhookclient.Unanswered], answers, rep.MaxLatency.Round(time.Millisecond), rep.OverBudget, webhookclient.Budget, rep.DeliveredAnyway)
}

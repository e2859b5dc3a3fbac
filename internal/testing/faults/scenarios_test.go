package faults

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeentra"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// pageEnv makes the receiver read the backlog in many pages, so that faults
// injected "during" a run land in the middle of it, between a message and
// its replies.
func pageEnv(sz size) map[string]string {
	return map[string]string{"MAX_ROWS_PER_QUERY": strconv.Itoa(sz.rowLimit)}
}

// scenarios are the Application Insights path's, then the transcripts'
// (transcripts_test.go) and the webhook's (webhook_test.go).
func scenarios() []scenario {
	return append([]scenario{
		{
			name: "baseline",
			what: "no fault: the reference run",
			env:  pageEnv,
		},
		{
			name: "429 storm with Retry-After",
			what: "storms of 429 ThrottledError with Retry-After (1-2 s), before the first poll and twice while the backlog is read",
			env:  pageEnv,
			setup: func(r *run) {
				r.inject(2*r.sz.burst+1, fakeappinsights.Fault{Kind: fakeappinsights.Throttle, RetryAfter: time.Second})
			},
			during: func(r *run) {
				r.afterPages(2)
				r.inject(2*r.sz.burst+1, fakeappinsights.Fault{Kind: fakeappinsights.Throttle, RetryAfter: time.Second})
				r.afterPages(4)
				r.inject(r.sz.burst, fakeappinsights.Fault{Kind: fakeappinsights.Throttle, RetryAfter: 2 * time.Second})
			},
			check: func(r *run) { r.injectedServed() },
		},
		{
			name: "500/503/504 bursts",
			what: "bursts of 500, then 503, then 504, before the first poll and while the backlog is read",
			env:  pageEnv,
			setup: func(r *run) {
				r.inject(r.sz.burst, fakeappinsights.Fault{Kind: fakeappinsights.InternalError})
			},
			during: func(r *run) {
				r.afterPages(2)
				r.inject(r.sz.burst, fakeappinsights.Fault{Kind: fakeappinsights.Unavailable})
				r.afterPages(4)
				r.inject(r.sz.burst, fakeappinsights.Fault{Kind: fakeappinsights.GatewayTimeout})
			},
			check: func(r *run) { r.injectedServed() },
		},
		{
			name: "partial failure responses",
			what: "200 answers carrying a PartialError next to half the rows, and 200 bodies cut off mid-row",
			env:  pageEnv,
			setup: func(r *run) {
				r.inject(r.sz.burst, fakeappinsights.Fault{Kind: fakeappinsights.PartialResult})
			},
			during: func(r *run) {
				r.afterPages(2)
				r.inject(r.sz.burst, fakeappinsights.Fault{Kind: fakeappinsights.PartialResult})
				r.afterPages(4)
				r.inject(r.sz.burst, fakeappinsights.Fault{Kind: fakeappinsights.MalformedJSON})
			},
			check: func(r *run) { r.injectedServed() },
		},
		{
			name:  "token endpoint fails for a while",
			what:  "the Entra ID token endpoint answers 500 for the first token requests, and again after a SIGKILL forces a new token",
			env:   pageEnv,
			crash: true,
			setup: func(r *run) {
				r.azure.Entra.FailNext(2*r.sz.burst, fakeentra.ServerError)
			},
			during: func(r *run) {
				r.afterPages(2)
				r.azure.Entra.FailNext(2*r.sz.burst, fakeentra.ServerError)
				r.kill()
			},
			check: func(r *run) {
				// each failure is met once, then one token per run succeeds
				if n, want := r.azure.Entra.TokenRequests(), 4*r.sz.burst+2; n < want {
					r.t.Errorf("%d token requests, want at least %d: the injected failures were not all met", n, want)
				}
				r.note("%d token requests", r.azure.Entra.TokenRequests())
			},
		},
		{
			name: "responses stall past the client timeout",
			what: "query answers that never come; the receiver's client timeout (2 s here) gives up and retries",
			env: func(sz size) map[string]string {
				env := pageEnv(sz)
				env["APPINSIGHTS_TIMEOUT"] = "2s"
				return env
			},
			setup: func(r *run) {
				r.inject(r.sz.burst, fakeappinsights.Fault{Kind: fakeappinsights.Stall})
			},
			during: func(r *run) {
				r.afterPages(2)
				r.inject(r.sz.burst, fakeappinsights.Fault{Kind: fakeappinsights.Stall})
			},
			check: func(r *run) { r.injectedServed() },
		},
		{
			name: "broker down, then back",
			what: "Kafka refuses producers from the start and for longer than the sending queue (file_storage) lasts: the queue fills to its capacity, " +
				"the pipeline pushes back and the receiver waits with its cursor kept while the rest of the backlog stays in Application Insights; " +
				"the collector is SIGKILLed while the broker is down and restarted, then the broker comes back",
			env:    pageEnv,
			crash:  true,
			tune:   outageBacklog,
			setup:  func(r *run) { r.brokerDown() },
			during: func(r *run) { r.outlastQueue() },
		},
		{
			name:  "SIGKILL at random points, repeated",
			what:  "the collector is SIGKILLed and restarted at random points: while pages are read, between a message and its replies, while turns are sent",
			env:   pageEnv,
			crash: true,
			during: func(r *run) {
				turns := len(r.work.Turns)
				for i := 1; i <= r.sz.kills; i++ {
					if i%2 == 1 {
						// after a random number of further pages
						r.afterPages(r.pages() + 1 + r.rng.IntN(3))
					} else {
						// once a random share of the turns is on the topic
						target := turns * (i + r.rng.IntN(2)) / (r.sz.kills + 2)
						_ = r.waitFor("turns on the topic before a kill", func() bool { return r.verifier.Delivered() >= target })
					}
					r.kill()
				}
			},
		},
		{
			name: "a window over the row limit",
			what: "max_rows_per_query far below the backlog, so every window is split in time until each part fits",
			env: func(sz size) map[string]string {
				return map[string]string{"MAX_ROWS_PER_QUERY": strconv.Itoa(sz.rowLimit / 4)}
			},
			check: func(r *run) {
				limit := r.sz.rowLimit / 4
				full := 0
				for _, q := range r.azure.AppInsights.Requests() {
					if q.Rows > limit {
						full++
					}
				}
				if full == 0 {
					r.t.Error("no answer went over the row limit: the split was never exercised")
				}
				r.note("%d answers over the limit of %d rows were split", full, limit)
			},
		},
		{
			name: "more rows in one instant than the row limit",
			what: "a burst of rows sharing one ingestion time, more than max_rows_per_query: time slicing alone cannot split it",
			env:  pageEnv,
			setup: func(r *run) {
				// Conversations that all happened before the instant, their
				// rows ingested together at it (a held-up batch released).
				instant := time.Now().Add(-100 * time.Minute).Truncate(time.Millisecond)
				burst := workload.Generate(workload.Config{Seed: r.rng.Uint64(), Conversations: r.sz.rowLimit / 5,
					Start: instant.Add(-75 * time.Minute), Span: time.Hour})
				for i := range burst.Rows {
					burst.Rows[i].IngestionTime = instant
				}
				if len(burst.Rows) <= r.sz.rowLimit {
					r.t.Fatalf("burst of %d rows is not over the limit %d", len(burst.Rows), r.sz.rowLimit)
				}
				r.verifier.Expect(burst.Turns)
				r.load(burst.Rows...)
				r.note("%d rows share the ingestion time %s; the limit is %d", len(burst.Rows), instant.Format(time.RFC3339Nano), r.sz.rowLimit)
			},
		},
		{
			name: "event times ahead of ingestion time",
			what: "1 % of conversations (at least 5) carry event timestamps 20 minutes ahead of their ingestion time (a client clock running fast); everything else is as usual",
			env:  pageEnv,
			prepare: func(r *run) {
				ahead := map[string]bool{}
				share := max(0.01, 5/float64(r.sz.conversations))
				for i := range r.work.Turns {
					t := &r.work.Turns[i]
					if t.Index == 0 && r.rng.Float64() < share {
						ahead[t.ConversationID] = true
					}
					if ahead[t.ConversationID] && !t.RequestTime.IsZero() {
						t.RequestTime = t.RequestTime.Add(20 * time.Minute)
					}
				}
				for i := range r.work.Rows {
					if ahead[conversationOf(r.work.Rows[i])] {
						r.work.Rows[i].Timestamp = r.work.Rows[i].Timestamp.Add(20 * time.Minute)
					}
				}
				r.note("%d conversations 20 minutes ahead", len(ahead))
			},
		},
		{
			name: "late-ingested rows inside and outside the overlap",
			what: "whole conversations that become queryable after the cursor has passed their ingestion time: inside the overlap they must arrive once; further back the receiver is not promised to see them",
			env: func(sz size) map[string]string {
				env := pageEnv(sz)
				// The late rows come after the watermark, so their last turns
				// wait for the wall-clock timeout; it can be short because
				// every row here is ingested a fixed 30 s after its event, so
				// a turn's rows arrive at most ~15 s apart in ingestion time.
				env["REPLY_TIMEOUT"] = "20s"
				return env
			},
			tune: func(cfg *workload.Config) { cfg.FixedIngestionDelay = 30 * time.Second },
			during: func(r *run) {
				r.waitDelivered()
				// The receiver re-reads the last minute (overlap) of each window.
				cursor := r.latestUpper()
				inside := r.lateConversations(cursor.Add(-20 * time.Second))
				outside := r.lateConversations(cursor.Add(-10 * time.Minute))
				r.verifier.Expect(inside.Turns)
				r.verifier.Optional(outside.Turns)
				r.load(inside.Rows...)
				r.load(outside.Rows...)
				pages := r.pages()
				r.afterPages(pages + 2) // the rows are offered to at least two polls
				r.note("%d late turns inside the overlap, %d outside", len(inside.Turns), len(outside.Turns))
			},
			check: func(r *run) {
				r.note("%d of the turns outside the overlap were delivered anyway", r.verifier.OptionalDelivered())
			},
		},
		{
			name: "duplicate rows across pages",
			what: "rows served twice: the same itemId again in the same page and re-ingested up to 30 s later, on another page",
			env:  pageEnv,
			setup: func(r *run) {
				var dups []workload.Row
				for _, row := range r.work.Rows {
					switch p := r.rng.Float64(); {
					case p < 0.01:
						dups = append(dups, row)
					case p < 0.04:
						row.IngestionTime = row.IngestionTime.Add(time.Millisecond + time.Duration(r.rng.Int64N(int64(30*time.Second))))
						dups = append(dups, row)
					}
				}
				r.load(dups...)
				r.note("%d rows served twice", len(dups))
			},
		},
		{
			name:  "bad input",
			what:  "malformed rows amid good ones: customDimensions not JSON / not an object / empty, missing ids, an unknown activity type, a 1 MB text, invalid UTF-8, an unknown event name, cells of the wrong type",
			env:   pageEnv,
			setup: func(r *run) { r.plantBadInput() },
			check: func(r *run) { r.checkBadInput() },
		},
		{
			name: "bodies that are not query results",
			what: "200 answers that are an HTML page, {\"tables\":[]}, an empty body: each retried, none taken as an empty window",
			env:  pageEnv,
			setup: func(r *run) {
				r.tamper.ReplaceNext(1, NotJSON)
			},
			during: func(r *run) {
				r.afterPages(2)
				r.tamper.ReplaceNext(1, EmptyTables)
				r.afterPages(4)
				r.tamper.ReplaceNext(1, EmptyBody)
				r.afterPages(6)
				r.tamper.ReplaceNext(r.sz.burst, NotJSON)
			},
			check: func(r *run) {
				if n := r.tamper.PendingBodies(); n != 0 {
					r.t.Errorf("%d injected bodies were never served", n)
				}
			},
		},
	}, append(transcriptScenarios(), webhookScenarios()...)...)
}

// pages is how many query answers with rows the stand-in has given.
func (r *run) pages() int {
	n := 0
	for _, q := range r.azure.AppInsights.Requests() {
		if q.Status == http.StatusOK && q.Rows > 0 {
			n++
		}
	}
	return n
}

// afterPages waits until the stand-in has answered n queries with rows, or
// every expected turn is delivered (then there are no more pages to wait for).
func (r *run) afterPages(n int) {
	r.t.Helper()
	want := r.verifier.Report().Expected
	if err := r.waitFor(strconv.Itoa(n)+" pages served", func() bool {
		return r.pages() >= n || r.verifier.Delivered() >= want
	}); err != nil {
		r.t.Fatal(err)
	}
}

// inject queues n faults at the stand-in and remembers them, so that
// injectedServed can check the scenario really happened.
func (r *run) inject(n int, f fakeappinsights.Fault) {
	r.azure.AppInsights.InjectFault(n, f)
	if r.injected == nil {
		r.injected = map[fakeappinsights.FaultKind]int{}
	}
	r.injected[f.Kind] += n
}

// injectedServed checks the stand-in answered every injected fault.
func (r *run) injectedServed() {
	served := map[fakeappinsights.FaultKind]int{}
	for _, q := range r.azure.AppInsights.Requests() {
		served[q.Fault]++
	}
	for kind, n := range r.injected {
		if served[kind] < n {
			r.t.Errorf("fault %s served %d times, %d injected: the scenario did not happen", faultName(kind), served[kind], n)
		}
		r.note("fault %s served %d times", faultName(kind), served[kind])
	}
}

func faultName(k fakeappinsights.FaultKind) string {
	return map[fakeappinsights.FaultKind]string{
		fakeappinsights.Throttle: "429", fakeappinsights.InternalError: "500", fakeappinsights.Unavailable: "503",
		fakeappinsights.GatewayTimeout: "504", fakeappinsights.PartialResult: "partial", fakeappinsights.MalformedJSON: "cut-off body",
		fakeappinsights.Stall: "stall",
	}[k]
}

// lateConversations makes a few conversations that happened an hour ago,
// whose rows were all ingested in the 30 s up to latest (in event order)
// but only become queryable now, when the stand-in is given them.
func (r *run) lateConversations(latest time.Time) *workload.Workload {
	cfg := workload.DefaultConfig(r.rng.Uint64(), max(5, r.sz.conversations/20))
	cfg.Start, cfg.Span, cfg.LateRate = time.Now().Add(-time.Hour), 10*time.Minute, 0
	w := workload.Generate(cfg)
	slices.SortFunc(w.Rows, func(a, b workload.Row) int { return a.Timestamp.Compare(b.Timestamp) })
	step := 30 * time.Second / time.Duration(len(w.Rows))
	for i := range w.Rows {
		w.Rows[i].IngestionTime = latest.Add(-time.Duration(len(w.Rows)-i) * step)
	}
	return w
}

// plantBadInput loads the bad-input cases among the main workload's rows
// (ingested in its middle, so they share pages and batches with good rows).
func (r *run) plantBadInput() {
	mid := r.work.Rows[len(r.work.Rows)/2].IngestionTime
	cases := badInput(r.rng.Uint64(), mid)
	for _, c := range cases {
		r.load(c.rows...)
		r.verifier.Ignore(c.conversation)
		if c.tamper != nil {
			c.tamper(r.tamper)
		}
	}
	r.bad = cases
}

// checkBadInput: the good turns are judged by the verifier; here each bad
// row must have been skipped with a log line naming it, or (where repair is
// acceptable) delivered intact.
func (r *run) checkBadInput() {
	out := r.col.Output()
	records := r.verifier.IgnoredRecords()
	carrying := func(marker string) []workload.Delivered {
		var hits []workload.Delivered
		for _, d := range records {
			if strings.Contains(d.RequestText, marker) || strings.Contains(strings.Join(d.Replies, "\n"), marker) {
				hits = append(hits, d)
			}
		}
		return hits
	}
	for _, c := range r.bad {
		hits := carrying(c.marker)
		logged := c.broken != "" && strings.Contains(out, c.broken)
		switch {
		case c.mustSkip && len(hits) > 0:
			r.t.Errorf("bad input %q: the malformed row reached Kafka (%d records)", c.name, len(hits))
		case len(hits) == 0 && c.broken != "" && !logged:
			r.t.Errorf("bad input %q: dropped, but no log line names item %s", c.name, c.broken)
		case len(hits) > 1:
			r.t.Errorf("bad input %q: delivered %d times", c.name, len(hits))
		}
		fate := "skipped"
		if len(hits) > 0 {
			fate = "delivered"
		}
		if logged {
			fate += ", logged"
		}
		r.note("bad input %q: %s", c.name, fate)
	}
}

// conversationOf reads a row's conversation id (the generator always writes one).
func conversationOf(row workload.Row) string {
	var dims struct {
		ConversationID string `json:"conversationId"`
	}
	_ = json.Unmarshal([]byte(row.CustomDimensions), &dims)
	return dims.ConversationID
}

// Package freshness measures how soon a turn reaches the Kafka exporter on
// the Application Insights and transcripts paths, and what a profile of
// shorter timings costs in pairing, without waiting hours of real time per
// profile.
//
// A simulation runs the real components in process: the query API and
// Entra ID stand-ins (HTTPS, the real client-secret flow), the copilotstudio
// receiver and the processors of collector-config.yaml's logs pipeline
// (memory_limiter aside), loaded from that file and a profile's overlays and
// variables as the collector loads them, with the same file_storage; a
// recorder stands where the Kafka exporter is. The stand-in, the receiver
// and the activitypair processor read one simulated clock. Time moves only
// from one timer of theirs to the next (a poll's Sleep, a sweep's tick),
// and only when what the previous one started is done: the receiver is back
// in its Sleep (its poll and every ConsumeLogs of it returned), the
// processor's sweep has recorded its gauges. Between their timers the
// components do nothing, so this is exact, not an approximation by steps;
// and a run gives the same figures on every machine.
//
// A workload (internal/testing/workload) gives the rows with their
// ingestion times and the ground truth. A row becomes queryable at its
// ingestion time, as the stand-in serves it, unless Spec.Visible makes it
// later: the late-ingestion fault, a row the service stamps with an
// ingestion_time() it then makes queryable only after the receiver's window
// passed that time.
//
// Per turn record: freshness = the simulated time the recorder received it
// - the latest time one of its rows became queryable. Fidelity compares the
// records' item ids with the ground truth turn by turn (exact, split,
// merged, lost).
//
// The transcripts path (transcripts.go) runs the same way with the
// copilotstudio_transcripts receiver and the Dataverse stand-in, whose clock
// the simulation moves instead: a turn's freshness starts when the latest of
// its transcript rows could be read (createdon, or a late row's commit).
//
// BenchmarkFreshness reports both for the profiles it compares, as
// Freshness/<path>/<profile> results that cmd/benchreport renders as the
// freshness table of BENCHMARKS.md (make bench).
package freshness

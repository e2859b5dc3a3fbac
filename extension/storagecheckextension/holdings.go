package storagecheckextension

import (
	"regexp"
	"strings"
)

// holding says what a file_storage file holds, known by its name
// (file_storage names each file <kind>_<type>_<name>[_<name>]), and what
// moving it aside costs.
type holding struct {
	prefix string
	// holds: what is in the file.
	holds string
	// aside: what starting without it loses or repeats, and how to turn a
	// loss into repeats.
	aside string
}

// Longest prefix first: a type may be another's prefix.
var holdings = []holding{
	{
		prefix: "receiver_copilotstudio_transcripts_",
		holds:  "the copilotstudio_transcripts receiver's cursor (the createdon of the last transcript read and passed on) and the row ids of its overlap",
		aside: "the receiver reads again from its initial_lookback (24h by default): transcripts of that span already sent are sent again; " +
			"if the cursor was older than that (the collector was stopped longer), the transcripts in between are never read",
	},
	{
		prefix: "receiver_copilotstudio_",
		holds:  "the copilotstudio receiver's cursor (how far, in ingestion time, it has read Application Insights and passed the rows on) and the item ids of its overlap",
		aside: "the receiver reads again from INITIAL_LOOKBACK (initial_lookback, 24h by default): turns of that span already sent reach Kafka again, under their turn ids; " +
			"if the cursor was older than that (the collector was stopped longer), the rows in between are never read",
	},
	{
		prefix: "processor_activitypair_",
		holds:  "the activitypair processor's open turns (user messages still waiting for replies, whose rows the receiver has already read and will not read again) and the ids of the rows it has already emitted",
		aside: "the open turns are lost. To get them back at the price of repeats, move the receiver's file (receiver_copilotstudio_) aside as well: " +
			"the receiver then reads INITIAL_LOOKBACK (24h by default) again, and turns of that span already sent reach Kafka again, under their turn ids",
	},
	{
		prefix: "exporter_kafka_",
		holds:  "the Kafka exporter's sending queue: turns the pipeline has accepted (the receiver's cursor is past their rows) that Kafka has not acknowledged yet",
		aside: "the turns in the queue are lost. To get them back at the price of repeats, move the receiver's (receiver_copilotstudio_) and the activitypair processor's (processor_activitypair_) files aside as well: " +
			"the receiver then reads INITIAL_LOOKBACK (24h by default) again, and turns of that span already sent reach Kafka again, under their turn ids",
	},
}

// hashedName is file_storage's name for a file whose plain name is too long.
var hashedName = regexp.MustCompile(`^[0-9a-f]{64}$`)

var kinds = []string{"receiver_", "processor_", "exporter_", "extension_", "connector_", "other_"}

// isStateFile reports whether file_storage could have named a file so: a
// component's store, not a compaction leftover (tempdb*), a file moved
// aside before (ours: .corrupt-<time>; file_storage's recreate: .backup),
// nor anything else kept in the directory.
func isStateFile(name string) bool {
	if strings.Contains(name, ".corrupt-") || strings.HasSuffix(name, ".backup") {
		return false
	}
	if hashedName.MatchString(name) {
		return true
	}
	for _, k := range kinds {
		if strings.HasPrefix(name, k) && len(name) > len(k) {
			return true
		}
	}
	return false
}

// describe is what the file named name holds and what moving it aside costs.
func describe(name string) (holds, aside string) {
	for _, h := range holdings {
		if strings.HasPrefix(name, h.prefix) {
			return h.holds, h.aside
		}
	}
	if hashedName.MatchString(name) {
		return "a component's state (file_storage names a file by a hash when the component's name is too long for a file name)",
			"that component starts with empty state: see its README for what that loses or repeats"
	}
	kind, rest, _ := strings.Cut(name, "_")
	return "the state the " + kind + " " + strings.TrimSuffix(rest, "_") + " keeps in file_storage",
		"that component starts with empty state: see its README for what that loses or repeats"
}

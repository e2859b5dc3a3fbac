// Package pairing cuts Copilot Studio telemetry rows into conversation
// turns: a user message, the agent's replies, and what the agent did in
// between. Plain rows go in, turns come out: it knows nothing of pdata or
// storage. The activitypair processor decodes log records into Rows, the
// encoders write the turns it selects, and the persistence stores its
// changes and snapshots and gives them back through Restore.
//
// One batch (the rows of one ConsumeLogs call) goes through it like this:
//
//	core.Add(inputs, now)          // a few rows at a time, as many times as needed
//	core.EndBatch()                // the conversations they went to are planned again
//	sel.Reset()
//	core.SelectComplete(&sel)      // complete turns
//	core.SelectEvictions(&sel)     // and what the memory bounds force out
//	for sel.NextPart(n) {          // a few conversations at a time
//		for conv, turns := range sel.Conversations() {
//			for t := range sel.Turns() { /* encode t */ }
//		}
//		core.Commit(&sel)          // once the next consumer took them
//	}
//	core.Prune()
//	/* save core.Changes(), then core.Saved() */
//	core.Settle(emitted, saved)    // done with the batch's records
//
// A timeout sweep selects with SelectComplete and SelectIdle instead, a
// shutdown without storage with SelectAll. A source that says how far back
// it may deliver rows again is an Origin (SetReplayFrom): the ids of its
// emitted rows are kept until then.
//
// The rules, in the order the files hold them: rows are kept per
// conversation in event-time order (conversation.go); the planner cuts them
// into turns at each user message and places replies by their reply-to id
// (plan.go); a turn is complete once the ingestion-time watermark has
// passed its end by the reorder window (schedule.go); a selection takes
// complete, idle or evicted turns and Commit removes them, remembering
// their ids so a row read again is dropped (selection.go, emitted.go).
// What the memory bounds count, what the budget gives up and how kept rows
// stop sharing the caller's memory is in memory.go, what a row kind does
// in row.go. The processor's README says the same for users.
package pairing

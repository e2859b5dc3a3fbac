// Package workload generates realistic Copilot Studio telemetry at scale, with
// the ground truth of what a correct pipeline must deliver, and verifies what
// reached Kafka against that ground truth.
//
// Generate (or ForEachConversation, which streams) turns a seeded Config into
// rows shaped as the Application Insights query API returns them from
// customEvents (timestamp, name, itemId, customDimensions as a JSON string,
// cloud_RoleInstance, ingestion time) and the Turns those rows make: one user
// message with the agent's replies, greetings with no user message, messages
// nobody answered, failed turns. The same seed gives the same rows, byte for
// byte, on every run.
//
// The rows follow the rules the activitypair processor pairs by, so the ground
// truth is unambiguous: a BotMessageSend with replyActivityId answers the user
// message with that activity id; one without answers the latest user message
// of its conversation sent before it (or is a greeting when there is none);
// flow rows (TopicStart, TopicAction, GenerativeAnswers, OnErrorLog, ...)
// belong to the latest user message of their conversation sent before them,
// or to the greeting. TestGroundTruthFollowsPairingRules checks this.
//
// A Verifier takes the expected Turns and the raw Kafka record values (Akto
// traffic records, JSON bytes) and counts turns delivered, lost, duplicated,
// wrong and unexpected. It matches a record to its turn by conversation id and
// request activity id (for a greeting: by its first reply text), not by the
// processor's turn id, which it uses only to recognise a repeat.
package workload

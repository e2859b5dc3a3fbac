// Package activitypairprocessor pairs Copilot Studio user messages with the
// agent's replies: one log record per conversation turn, in Akto's traffic
// format or as structured OTLP logs.
package activitypairprocessor

//go:generate go tool mdatagen metadata.yaml

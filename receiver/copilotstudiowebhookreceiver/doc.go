//go:generate go tool mdatagen metadata.yaml

// Package copilotstudiowebhookreceiver serves Microsoft Copilot Studio's
// external threat detection webhook (validate, analyze-tool-execution) in
// observe mode: every authenticated, readable call is allowed, and the tool
// call it announces becomes one OTel log record. See README.md.
package copilotstudiowebhookreceiver

//go:generate go tool mdatagen metadata.yaml

// Package copilotstudiotranscriptsreceiver polls a Dataverse environment for
// Microsoft Copilot Studio conversation transcripts and emits one log record
// per activity, in the schema the copilotstudio receiver uses, plan and tool
// steps included.
package copilotstudiotranscriptsreceiver

//go:generate go tool mdatagen metadata.yaml

// Package copilotstudioreceiver polls Azure Application Insights for the
// telemetry Microsoft Copilot Studio agents write there and emits one OTel log
// record per row. See README.md for configuration and output schema.
package copilotstudioreceiver

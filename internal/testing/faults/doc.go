// Package faults is the fault-injection suite: it runs the real
// otelcol-copilotstudio binary with collector-config.yaml against the
// Application Insights and Entra ID stand-ins and a kfake broker, breaks one
// thing per scenario (throttling, server errors, partial and malformed
// answers, token failures, stalls, a Kafka outage, SIGKILLs, row limits,
// late and duplicate rows, bad input), and checks every record on the topic
// against the ground truth of a generated workload (internal/testing/workload).
//
// The scenarios live in the package's tests (go test ./internal/testing/faults;
// `make faults` for the full size). The non-test code here is what they
// inject with: Tamper, a proxy that corrupts answers the stand-in would
// answer correctly, and the bad-input rows. See README.md.
package faults

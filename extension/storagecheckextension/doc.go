// Package storagecheckextension checks the bbolt files of a file_storage
// directory when the collector starts, before any component opens them: a
// corrupt file makes bbolt panic in a goroutine of its own, which no caller
// can recover, so without this check the collector crash-loops. A corrupt
// file stops the collector with a message that says what the file holds and
// how to recover, or, when configured, is moved aside.
package storagecheckextension

//go:generate go tool mdatagen metadata.yaml

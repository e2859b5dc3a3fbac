// Package cardmaskprocessor masks payment card numbers in log bodies and
// attributes: runs of 13 to 19 digits, grouped by spaces or dashes or not,
// with a card network's prefix and length, that pass the Luhn check.
package cardmaskprocessor

//go:generate go tool mdatagen metadata.yaml

// Package retryafter reads an HTTP Retry-After header, the one way every
// client of this module (the query API, Dataverse, Akto's ingestion service)
// learns how long a throttled service wants it to wait.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse reads delay-seconds (fractions accepted, as some services send them)
// or an HTTP date, which counts from now and is never negative. ok is false
// when the header is absent or unreadable: each caller has its own default.
func Parse(header string, now time.Time) (d time.Duration, ok bool) {
	header = strings.TrimSpace(header)
	if header == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(header, 64); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second)), true
	}
	if at, err := http.ParseTime(header); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

package copilotstudiowebhookreceiver

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/webhookclient"
)

// BenchmarkAnalyzeCall is one analyze call with the reference's example body
// and a real RS256 token (checked on every call, as Copilot Studio's one
// token per hour is), answered once a no-op pipeline took the record.
//
//   - handler: the receiver's own work, called in-process (token check,
//     body read and decode, record, hand-over, answer);
//   - loopback: the same through the HTTP server on 127.0.0.1, client
//     included in the CPU figure.
//
// cpu-µs/call is the process's CPU time (getrusage) per call, GC included.
func BenchmarkAnalyzeCall(b *testing.B) {
	f := newFixture(b, consumertest.NewNop(), fixtureOptions{})
	token := f.mint(f.good)
	body := webhookclient.Example()
	url := f.client.BaseURL + "/analyze-tool-execution?api-version=2025-05-01"

	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		cpu := harness.SelfCPUTime()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("x-ms-correlation-id", "6b1f3c2e-0a4d-4e8f-9b7c-5d2a1e0f3c4b")
			w := httptest.NewRecorder()
			f.rcv.ServeHTTP(w, req)
			if w.Code != http.StatusOK || w.Header().Get(RecordHeader) != outcomeAccepted {
				b.Fatalf("answer %d %s", w.Code, w.Body)
			}
		}
		reportCPU(b, cpu)
	})

	b.Run("loopback", func(b *testing.B) {
		b.ReportAllocs()
		client := f.withToken(token)
		client.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		cpu := harness.SelfCPUTime()
		for b.Loop() {
			a, err := client.Analyze(context.Background(), body)
			require.NoError(b, err)
			if a.Status != http.StatusOK || a.Record != outcomeAccepted {
				b.Fatalf("answer %d %s", a.Status, a.Body)
			}
		}
		reportCPU(b, cpu)
	})
}

func reportCPU(b *testing.B, before time.Duration) {
	b.ReportMetric(float64((harness.SelfCPUTime()-before).Microseconds())/float64(b.N), "cpu-µs/call")
}

package aktoexporter

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeakto"
	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
)

// benchBatch is what the sending queue hands the exporter at once
// (collector-config.akto-http.yaml: batch max_size).
const benchBatch = 500

// benchTurns is a batch of Akto records of about 1.6 KB, the size of an
// ordinary turn: a question, a two-part answer, headers and tag, with the
// escaping the processor writes.
func benchTurns(n int) plog.Logs {
	ld := plog.NewLogs()
	records := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	answer := strings.Repeat(`You can reset your password yourself: go to aka.ms/sspr, \\\"verify\\\" with your phone.\\n`, 9)
	for i := range n {
		id := fmt.Sprintf("%032x", i)
		rec := records.AppendEmpty()
		rec.Attributes().PutStr(schema.TurnID, id)
		body := `{"path":"/copilot/conversation/a%3A1EBqwyJRd0mFhz0aWtde` + id[:8] + `/message/` + fmt.Sprint(i%9) + `","method":"POST",` +
			`"requestHeaders":"{\"host\":\"hr-agent.copilot.microsoft.com\",\"content-type\":\"application/json\",\"x-akto-message-id\":\"` + id + `\",\"x-copilotstudio-channel\":\"msteams\",\"x-copilotstudio-locale\":\"en-US\"}",` +
			`"responseHeaders":"{\"content-type\":\"application/json\"}",` +
			`"requestPayload":"{\"text\":\"How do I reset my password? I tried the \\\"forgot password\\\" link twice.\"}",` +
			`"responsePayload":"{\"text\":\"` + answer + `\"}",` +
			`"ip":"0.0.0.0","time":"1795589679","statusCode":"200","type":"HTTP/1.1","status":"OK","akto_account_id":"1000000","akto_vxlan_id":"0","is_pending":"false","source":"MIRRORING",` +
			`"tag":"{\"source\":\"COPILOT_STUDIO\",\"bot-name\":\"hr-agent\",\"gen-ai\":\"Gen AI\"}"}`
		rec.Body().SetEmptyBytes().FromRaw([]byte(body))
	}
	return ld
}

// BenchmarkExport is the exporter's cost per record: a queue batch of 500
// records sent in requests of 50 to the ingestion stand-in over loopback.
// CPU time is the whole process's, so it includes the stand-in: with
// stand-in=checking it parses and checks every record as the service does;
// stand-in=discarding only reads the body, which leaves mostly the
// exporter's own work (checking the records, building bodies, HTTP).
func BenchmarkExport(b *testing.B) {
	for _, mode := range []struct {
		name    string
		discard bool
	}{{"stand-in=checking", false}, {"stand-in=discarding", true}} {
		b.Run(mode.name, func(b *testing.B) {
			s := fakeakto.New(fakeakto.Options{Token: testToken, Discard: mode.discard})
			defer s.Close()
			cfg := configFor(s)
			e, err := newExporter(metadataSettings(b), cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := e.start(context.Background(), componenttest.NewNopHost()); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = e.shutdown(context.Background()) }()
			ld := benchTurns(benchBatch)
			bytesPerBatch := 0
			for _, r := range bodies(ld) {
				bytesPerBatch += len(r)
			}
			if err := e.pushLogs(context.Background(), ld); err != nil { // warm: connection, pools
				b.Fatal(err)
			}

			var before, after runtime.MemStats
			var cpu time.Duration
			var mallocs, allocated uint64
			records := 0
			b.ResetTimer()
			b.StopTimer()
			for range b.N {
				s.Reset()
				runtime.ReadMemStats(&before)
				cpu0 := testenv.SelfCPUTime()
				b.StartTimer()
				if err := e.pushLogs(context.Background(), ld); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu += testenv.SelfCPUTime() - cpu0
				runtime.ReadMemStats(&after)
				mallocs += after.Mallocs - before.Mallocs
				allocated += after.TotalAlloc - before.TotalAlloc
				records += benchBatch
			}
			if !mode.discard && len(s.Records()) != benchBatch {
				b.Fatalf("the stand-in accepted %d of %d records", len(s.Records()), benchBatch)
			}
			b.SetBytes(int64(bytesPerBatch))
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(records)/cpu.Seconds(), "records/cpu-s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(records), "cpu-ns/record")
			b.ReportMetric(float64(mallocs)/float64(records), "allocs/record")
			b.ReportMetric(float64(allocated)/float64(records), "B/record")
			b.ReportMetric(float64(bytesPerBatch)/benchBatch, "record-bytes")
		})
	}
}

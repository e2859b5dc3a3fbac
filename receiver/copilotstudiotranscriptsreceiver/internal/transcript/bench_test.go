package transcript

import (
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/dataverse"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/workload"
)

// BenchmarkTranscriptDecoding measures what the receiver does with a page
// of the Web API's answer: decode the page (rows with content as a JSON
// string), parse each transcript, build its records. Reported per byte of
// the page: MB/s of wall time and MB per CPU-second (this process's user +
// system time, GC included, which moves far less than wall time on a
// shared machine).
func BenchmarkTranscriptDecoding(b *testing.B) {
	for _, c := range []struct {
		name        string
		rows, bytes int
	}{
		{"transcript=1MB", 1, 1 << 20},
		{"page=50x50KB", 50, 50 << 10},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := workload.DefaultTranscriptConfig(3, c.rows)
			cfg.SplitRate, cfg.ResumeRate, cfg.PadTo = 0, 0, c.bytes
			w := workload.GenerateTranscripts(cfg)
			rows := make([]map[string]any, len(w.Rows))
			for i, r := range w.Rows {
				rows[i] = map[string]any{
					"@odata.etag": `W/"1"`, "conversationtranscriptid": r.ID, "name": r.Name, "content": r.Content, "metadata": r.Metadata,
					"conversationstarttime": r.ConversationStart.Format(time.RFC3339), "createdon": r.CreatedOn.Format(time.RFC3339),
					"_bot_conversationtranscriptid_value": r.BotID,
				}
			}
			page, _ := json.Marshal(map[string]any{"@odata.context": "https://contoso.crm.dynamics.com/api/data/v9.2/$metadata#conversationtranscripts", "value": rows})
			b.SetBytes(int64(len(page)))
			b.ReportAllocs()
			records := 0
			cpu := harness.SelfCPUTime()
			b.ResetTimer()
			for b.Loop() {
				var p struct {
					Value []dataverse.TranscriptRow `json:"value"`
				}
				if err := json.Unmarshal(page, &p); err != nil {
					b.Fatal(err)
				}
				logs := plog.NewLogRecordSlice()
				for i := range p.Value {
					r := &p.Value[i]
					t, err := Parse(&Row{ID: r.ID, Name: r.Name, Content: r.Content, Metadata: r.Metadata, BotID: r.BotID, CreatedOn: r.CreatedOn}, 0)
					if err != nil {
						b.Fatal(err)
					}
					records += t.AppendRecords(NewConversation(), "agent", logs).Records
				}
			}
			b.StopTimer()
			used := harness.SelfCPUTime() - cpu
			if used > 0 {
				b.ReportMetric(float64(len(page))*float64(b.N)/1e6/used.Seconds(), "MB/cpu-s")
			}
			b.ReportMetric(float64(records)/float64(b.N), "records/op")
		})
	}
}

package copilotstudioreceiver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	testenv "github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
)

// benchBody is the ~100 MB response, made once per test binary: the
// benchmark functions run several times as b.N grows.
var benchBody = sync.OnceValue(func() []byte { return benchResponse(100 << 20) })

// benchWindowBody is a default window's response: about 50,000 rows.
var benchWindowBody = sync.OnceValue(func() []byte { return benchResponse(24 << 20) })

// benchResponse renders a query response of about size bytes in the real
// shape, with a realistic mix of Copilot Studio rows.
func benchResponse(size int) []byte {
	var b bytes.Buffer
	b.Grow(size + 4096)
	b.WriteString(`{"tables":[{"name":"PrimaryResult","columns":[{"name":"timestamp","type":"datetime"},{"name":"name","type":"string"},{"name":"itemId","type":"string"},{"name":"customDimensions","type":"dynamic"},{"name":"cloud_RoleInstance","type":"string"},{"name":"ingest","type":"datetime"}],"rows":[`)
	reply := strings.Repeat("To reset your password open https://aka.ms/sspr, verify with your phone, then choose a new one. ", 3)
	base := time.Date(2026, 2, 18, 0, 0, 0, 0, time.UTC)
	for i := 0; b.Len() < size; i++ {
		var name string
		var dims map[string]string
		conv := fmt.Sprintf("a:1EBqwy%08dXk2q-Teams-19:meeting_%d@thread.v2", i/6, i/6)
		switch i % 6 {
		case 0:
			name, dims = "BotMessageReceived", map[string]string{"type": "message", "channelId": "msteams", "conversationId": conv,
				"activityId": fmt.Sprint(1700000000000 + i), "fromId": "29:1W6aRXr0j9bT5bY9f1", "fromName": "Jane Doe",
				"recipientId": "28:c40c1118-1111", "recipientName": "HR Agent", "locale": "en-US", "DesignMode": "False",
				"text": "How do I reset my password? I \"forgot\" it again.", "TeamsTenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"}
		case 1:
			name, dims = "TopicStart", map[string]string{"TopicName": "cr44e_MyAgent.topic.ResetPassword", "Trigger": "OnRecognizedIntent", "Action": "Started", "conversationId": conv}
		case 2:
			name, dims = "TopicAction", map[string]string{"TopicName": "cr44e_MyAgent.topic.ResetPassword", "TopicId": "t-17", "Kind": "SendActivity", "ActionId": "sendMessage_x1", "conversationId": conv}
		case 3, 4:
			name, dims = "BotMessageSend", map[string]string{"channelId": "msteams", "conversationId": conv,
				"replyActivityId": fmt.Sprint(1700000000000 + i - i%6), "recipientId": "29:1W6aRXr0j9bT5bY9f1", "recipientName": "Jane Doe",
				"text": reply, "speak": "", "designMode": "False"}
		default:
			name, dims = "GenerativeAnswers", map[string]string{"conversationId": conv, "TopicName": "cr44e_MyAgent.topic.Search", "Message": "reset password", "Result": "Answered", "Summary": "Explained SSPR"}
		}
		dimsJSON, _ := json.Marshal(dims)
		cells, _ := json.Marshal([]any{
			base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano), name,
			fmt.Sprintf("5f1c0a2e-7c1e-4a0e-9f7e-%012d", i), string(dimsJSON), "HR Agent",
			base.Add(time.Duration(i)*time.Millisecond + 34*time.Second).Format(time.RFC3339Nano),
		})
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(cells)
	}
	b.WriteString(`]}]}`)
	return b.Bytes()
}

// BenchmarkDecodeResponse decodes a ~100 MB query response (the largest the
// API returns) into log records as a poll does: the streaming scanner keeps each row's cells (offer), then
// the records are built in batches of the default max_batch_size
// (customDimensions parsing, pdata building), each batch dropped once built
// as the pipeline drops it once consumed. Iterations follow each other
// like windows, without forced garbage collections, so CPU and allocations
// are the steady state. In the receiver, decoding runs before the first
// batch goes out and building runs alongside the next consumer; they are
// reported apart (decode-, build-cpu-ns/row).
func BenchmarkDecodeResponse(b *testing.B) { benchDecode(b, benchBody()) }

// BenchmarkDecodeResponseWindow is the same on a default window: a response
// of about max_rows_per_query (50,000) rows, ~24 MB. Windows like it follow
// each other in a backlog, and each reuses the memory of the one before.
func BenchmarkDecodeResponseWindow(b *testing.B) { benchDecode(b, benchWindowBody()) }

func benchDecode(b *testing.B, body []byte) {
	b.SetBytes(int64(len(body)))
	var rows int
	var decodeCPU, buildCPU time.Duration
	var start, end runtime.MemStats
	decodeAndBuild := func(keep func(plog.Logs)) (decode, build time.Duration) {
		cpu0 := testenv.SelfCPUTime()
		bt := newWindowBuilder(testAppID, nil, nil)
		res, err := appinsights.Decode(bytes.NewReader(body), func(r *appinsights.Row) error { bt.offer(r); return nil })
		if err != nil {
			b.Fatal(err)
		}
		bt.finish(false)
		cpu1 := testenv.SelfCPUTime()
		for {
			logs, n := bt.nextBatch(defaultMaxBatchSize)
			if n == 0 {
				break
			}
			keep(logs)
		}
		if built := bt.result(); built.records != res.Rows {
			b.Fatalf("%d records from %d rows: %v", built.records, res.Rows, built.malformed[:min(3, len(built.malformed))])
		}
		rows = res.Rows
		return cpu1 - cpu0, testenv.SelfCPUTime() - cpu1
	}
	decodeAndBuild(func(plog.Logs) {}) // the window before, whose memory the first one reuses
	runtime.ReadMemStats(&start)
	b.ResetTimer()
	for range b.N {
		decode, build := decodeAndBuild(func(plog.Logs) {})
		decodeCPU += decode
		buildCPU += build
	}
	b.StopTimer()
	runtime.ReadMemStats(&end)
	n := float64(rows) * float64(b.N)
	b.ReportMetric(float64(rows), "rows/op")
	b.ReportMetric(n/b.Elapsed().Seconds(), "rows/s")
	// CPU seconds of the whole process (GC included): the per-core figures,
	// which wall time on a busy shared machine is not.
	cpu := decodeCPU + buildCPU
	b.ReportMetric(float64(len(body))*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/row")
	b.ReportMetric(float64(decodeCPU.Nanoseconds())/n, "decode-cpu-ns/row")
	b.ReportMetric(float64(buildCPU.Nanoseconds())/n, "build-cpu-ns/row")
	b.ReportMetric(float64(end.TotalAlloc-start.TotalAlloc)/n, "B/row")
	b.ReportMetric(float64(end.Mallocs-start.Mallocs)/n, "allocs/row")

	// Memory, once, untimed: the heap held by a decoded window before any
	// record is built (held), and by the records of the whole window had
	// they all been kept (retained), relative to the response size.
	var before, after runtime.MemStats
	dropIdleRows()
	runtime.GC()
	runtime.ReadMemStats(&before)
	bt := newWindowBuilder(testAppID, nil, nil)
	if _, err := appinsights.Decode(bytes.NewReader(body), func(r *appinsights.Row) error { bt.offer(r); return nil }); err != nil {
		b.Fatal(err)
	}
	bt.finish(false)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(body)), "held/response")
	runtime.KeepAlive(bt)
	bt = nil
	var kept []plog.Logs
	dropIdleRows()
	runtime.GC()
	runtime.ReadMemStats(&before)
	decodeAndBuild(func(l plog.Logs) { kept = append(kept, l) })
	dropIdleRows()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(body)), "retained/response")
	runtime.KeepAlive(kept)
}

// dropIdleRows forgets the memory kept for the next window, so it does not
// count as the heap a measured window holds.
func dropIdleRows() {
	idleRows.Lock()
	defer idleRows.Unlock()
	idleRows.chunks, idleRows.blocks = nil, nil
}

// BenchmarkDecodeResponseScanOnly is the streaming decoder and the
// customDimensions parser, without building log records: the share of the
// cost that is JSON.
func BenchmarkDecodeResponseScanOnly(b *testing.B) {
	body := benchBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var d dimensions
		n := 0
		_, err := appinsights.Decode(bytes.NewReader(body), func(r *appinsights.Row) error {
			if err := d.parse(r, true); err != nil {
				return err
			}
			n += len(d.pairs)
			return nil
		})
		if err != nil || n == 0 {
			b.Fatal(err, n)
		}
	}
}

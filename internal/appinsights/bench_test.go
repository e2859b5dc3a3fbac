package appinsights

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchDimensions is a BotMessageSend's customDimensions with a generative
// answer's text: about 600 bytes, an escape every few of them once it is a
// JSON string inside the answer.
var benchDimensions = func() string {
	b, _ := json.Marshal(map[string]string{
		"channelId": "msteams", "conversationId": "a:1EBqwy00000042Xk2q-Teams-19:meeting_42@thread.v2",
		"replyActivityId": "1700000000042", "recipientId": "29:1W6aRXr0j9bT5bY9f1", "recipientName": "Jane Doe",
		"text":  strings.Repeat("To reset your password open https://aka.ms/sspr, verify with your \"phone\", then choose a new one. ", 4),
		"speak": "", "designMode": "False",
	})
	return string(b)
}()

// benchBody is an answer of about 24 MB (a default window of 50,000 rows)
// made of rows like benchDimensions'.
var benchBody = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"tables":[{"name":"PrimaryResult","columns":[{"name":"timestamp","type":"datetime"},{"name":"name","type":"string"},{"name":"itemId","type":"string"},{"name":"customDimensions","type":"dynamic"},{"name":"cloud_RoleInstance","type":"string"},{"name":"ingest","type":"datetime"}],"rows":[`)
	base := time.Date(2026, 2, 18, 0, 0, 0, 0, time.UTC)
	for i := 0; b.Len() < 24<<20; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		cells, _ := json.Marshal([]any{base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano), "BotMessageSend",
			fmt.Sprintf("5f1c0a2e-7c1e-4a0e-9f7e-%012d", i), benchDimensions, "HR Agent",
			base.Add(time.Duration(i)*time.Millisecond + 34*time.Second).Format(time.RFC3339Nano)})
		b.Write(cells)
	}
	b.WriteString(`]}]}`)
	return b.Bytes()
})

// BenchmarkDecode is the streaming decoder alone on a window's answer:
// every row's cells unescaped into its arena, nothing kept.
func BenchmarkDecode(b *testing.B) {
	body := benchBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var rows int
	for b.Loop() {
		res, err := Decode(bytes.NewReader(body), func(*Row) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		rows = res.Rows
	}
	b.ReportMetric(float64(rows), "rows/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows*b.N), "ns/row")
}

// BenchmarkScannerString unescapes customDimensions as the answer carries
// it: a JSON string of JSON, 10,000 of them per operation.
func BenchmarkScannerString(b *testing.B) {
	lit, _ := json.Marshal(benchDimensions)
	b.SetBytes(int64(len(lit)) * 10000)
	b.ReportAllocs()
	var s Scanner
	var dst []byte
	for b.Loop() {
		for range 10000 {
			s.ResetBytes(lit, false)
			var err error
			if dst, err = s.AppendString(dst[:0]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(10000*b.N), "ns/string")
}

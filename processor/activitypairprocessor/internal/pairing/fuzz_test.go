package pairing

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fuzzRows turns bytes into rows of three conversations: each row takes
// four bytes (what it is, which activity it is or answers, event time,
// ingestion lag), with batch cuts and repeats along the way.
func fuzzRows(data []byte) (batches [][]testRow, items map[string]bool) {
	items = map[string]bool{}
	var batch []testRow
	for i := 0; i+4 <= len(data); i += 4 {
		op, ref, at, lag := data[i], data[i+1], data[i+2], data[i+3]
		conv := fmt.Sprintf("c%d", op%3)
		activity := fmt.Sprintf("a%d", ref%4)
		item := fmt.Sprintf("i%d", i/4)
		when := time.Duration(at) * time.Second
		var r testRow
		switch op / 3 % 8 {
		case 0, 1:
			r = msg(conv, item, when, activity, "question "+item)
		case 2, 3:
			replyTo := activity
			if ref&0x80 != 0 {
				replyTo = ""
			}
			r = reply(conv, item, when, replyTo, "answer "+item)
		case 4:
			r = event(conv, item, when, "event", activity)
		case 5:
			r = topicStart(conv, item, when, "topic"+activity)
		case 6:
			r = action(conv, item, when, "topic"+activity, "SendActivity")
		default:
			r = failure(conv, item, when, "Code")
		}
		r = r.ingestedAt(when + time.Duration(lag)*time.Second)
		items[item] = true
		batch = append(batch, r)
		if lag&0x40 != 0 && len(batch) > 1 { // a row sent twice
			batch = append(batch, batch[int(lag)%len(batch)])
		}
		if at&0x03 == 0 {
			batches = append(batches, batch)
			batch = nil
		}
	}
	return append(batches, batch), items
}

// FuzzPairing: whatever rows come in whatever order, batches and repeats,
// every row is in exactly one emitted turn. (That every record the
// processor writes of them is a valid Akto record is checked with the
// processor, TestAnyRowsGiveValidAktoRecords.)
func FuzzPairing(f *testing.F) {
	f.Add([]byte{0, 1, 0, 30, 6, 1, 2, 30, 3, 2, 10, 30, 9, 2, 12, 1})
	f.Add([]byte{6, 0x81, 5, 0x41, 0, 1, 1, 200, 1, 1, 4, 3, 12, 2, 6, 7, 21, 0, 9, 0x40})
	f.Add([]byte{15, 3, 0, 0, 0, 3, 1, 0, 18, 3, 2, 0, 6, 3, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4*200 {
			return
		}
		batches, items := fuzzRows(data)
		cfg := testConfig()
		if len(data) > 0 {
			cfg.ReorderWindow = time.Duration(data[0]%4) * time.Minute
			cfg.MaxOpenTurns = 1 + int(data[len(data)-1]%8)
		}
		h := newRun(t, cfg)
		for i, b := range batches {
			h.consume(b...)
			if i%3 == 2 {
				h.now = h.now.Add(time.Minute)
				h.sweep()
			}
		}
		h.shutdown()
		seen := map[string]int{}
		for _, e := range h.out {
			require.NotEmpty(t, e.Items)
			for _, it := range e.Items {
				seen[it]++
			}
		}
		for it := range items {
			require.Equal(t, 1, seen[it], "row %s", it)
		}
		require.Len(t, seen, len(items))
	})
}

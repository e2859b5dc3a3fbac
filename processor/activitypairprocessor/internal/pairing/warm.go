package pairing

// Cache warming: reads whose only purpose is to bring memory into the CPU
// caches before the code that needs it runs.
//
// Why: a conversation's rows, and the strings they point to, arrived with
// earlier batches and have left the caches by the time the next row of
// that conversation comes, or its turn is written. Read one by one, each
// cache miss stalls the code in turn; read here first, in loops of
// independent loads, the misses overlap.
//
//   - On input (Add), the conversations of a window of rows are looked up,
//     and the rows insert will compare are read, for all the rows first,
//     before any is inserted. The caller passes rows a few at a time
//     (the processor: 16) so that they stay in the caches meanwhile.
//   - On output (Selection.WarmStrings, set for the Akto encoder, which
//     escapes every text), one byte in 64 of every string a
//     conversation's records will read is loaded before the conversation
//     is planned and written. The OTLP encoder passes strings on without
//     reading them and does not ask for it.
//
// What it measured, on this code: test binaries with and without each
// warming, run alternately (order rotated each round) on the 2-core VM
// while it was otherwise quiet (load below 1.6), medians of CPU-ns/row
// at 1,000 open conversations, 8,192-row batches:
//
//	8 rounds              both   no input   no output   neither
//	Pairing/open=1000     1200     1154       1188        1243
//	PairingFormats/akto   1157     1151       1229        1272
//	PairingFormats/none    655      673        661         710
//
//	9 more rounds         both   no input
//	Pairing/open=1000     1199     1202
//	PairingFormats/akto   1158     1252
//	PairingFormats/none    651      684
//
// Output warming saves 6-10% in PairingFormats/akto, 0-7% in Pairing.
// Input warming saves 3-8% in six of the nine comparisons and nothing (or
// 4% less) in the other three; on the code before the pairing core had a
// package of its own, measured with other work on the machine (load 1-3:
// in the collector the receiver, the exporter and the garbage collector
// share the caches with the processor), it saved 13-19%, and output
// warming 8-10%. Single rounds spread
// 10-30%: only medians mean anything. In profiles, JSON escaping fell
// from 540 to 130 ms for 160 ms of output warming, and inserting rows
// from 480 to 100 ms for 260 ms of input warming. The sums (warmth) are
// kept only so that the reads are not optimised away.

// lookUp finds the conversations of in and reads what inserting into
// them will compare.
func (c *Core) lookUp(in []Input) {
	for i := range in {
		if conv := c.convs[in[i].Context.Conversation]; conv != nil {
			in[i].conv = conv
			c.warmth += warmForInsert(conv)
		}
	}
}

// warmForInsert reads what insert reads of conv's latest rows.
func warmForInsert(conv *Conversation) (sum byte) {
	rows := conv.rows[max(len(conv.rows)-8, 0):]
	for i := range rows {
		sum += byte(rows[i].At)
		if a := rows[i].Activity; a != "" {
			sum += a[0]
		}
	}
	return sum
}

// WarmStrings makes Conversations read the strings of each conversation's
// rows before planning it, for an encoder that reads them all.
func (s *Selection) WarmStrings(on bool) { s.warmStrings = on }

// readStrings reads one byte of every 64 of the strings that writing
// conv's turns will read, in one pass of independent loads.
func readStrings(conv *Conversation) (sum byte) {
	sum = touch(conv.id) + touch(conv.channel) + touch(conv.locale)
	for i := range conv.rows {
		r := &conv.rows[i]
		sum += touch(r.Text) + touch(r.Activity) + touch(r.Detail)
	}
	return sum
}

func touch(s string) (sum byte) {
	for i := 0; i < len(s); i += 64 {
		sum += s[i]
	}
	if len(s) > 0 {
		sum += s[len(s)-1] // the line the last step may not reach
	}
	return sum
}

package appinsights

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// response renders a query API body in the real shape.
func response(t testing.TB, columns []string, rows [][]any) string {
	t.Helper()
	cols := make([]Column, len(columns))
	for i, c := range columns {
		typ := ColumnType(c)
		if typ == "" {
			typ = "string"
		}
		cols[i] = Column{Name: c, Type: typ}
	}
	b, err := json.Marshal(map[string]any{"tables": []any{map[string]any{"name": ResultTable, "columns": cols, "rows": rows}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func std(id, name, dims string) []any {
	return []any{"2026-02-18T01:24:36.123Z", name, id, dims, "HR Agent", "2026-02-18T01:25:10.4567891Z"}
}

func TestDecodeResponseShapes(t *testing.T) {
	good := response(t, Columns[:], [][]any{std("a", "BotMessageSend", `{"conversationId":"c"}`)})
	cases := []struct {
		name    string
		body    string
		wantErr string
		partial bool
		rows    int
	}{
		{name: "ordinary", body: good, rows: 1},
		{name: "unknown top-level key first", body: `{"stats":{"x":[1,{"y":"]"}]},` + good[1:], rows: 1},
		{name: "partial error after tables", body: good[:len(good)-1] + `,"error":{"message":"A partial error","code":"PartialError","correlationId":"c-1","innererror":{"code":"-2133196797"}}}`, rows: 1, partial: true},
		{name: "no rows", body: response(t, Columns[:], [][]any{}), rows: 0},
		{name: "truncated", body: good[:len(good)/2], wantErr: "invalid JSON"},
		{name: "not JSON", body: `<html>Bad gateway</html>`, wantErr: "invalid JSON"},
		{name: "missing column", body: response(t, Columns[:5], nil), wantErr: `lacks column "ingest"`},
		{name: "no tables", body: `{}`, wantErr: "no tables"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			res, err := Decode(strings.NewReader(c.body), func(*Row) error { n++; return nil })
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != c.rows || res.Rows != c.rows {
				t.Fatalf("rows = %d/%d, want %d", n, res.Rows, c.rows)
			}
			if (res.Partial != nil) != c.partial {
				t.Fatalf("partial = %v, want %v", res.Partial, c.partial)
			}
			if c.partial && (res.Partial.Code != ErrorCodePartial || !strings.Contains(res.Partial.String(), "PartialError")) {
				t.Fatalf("partial error text %q", res.Partial.String())
			}
		})
	}
}

func TestDecodeMapsColumnsByNameAndKinds(t *testing.T) {
	cols := []string{ColIngest, "extra", ColItemID, ColRoleInstance, ColDimensions, ColName, ColTimestamp}
	body := response(t, cols, [][]any{
		{"2026-02-18T01:25:10Z", 42, "x1", nil, map[string]any{"k": []int{1}}, "BotMessageSend", "2026-02-18T01:24:36Z"},
		{"2026-02-18T01:25:11Z", 42, "x2"},
	})
	var got []map[string]any
	_, err := Decode(strings.NewReader(body), func(r *Row) error {
		cell := func(c Cell) any { return []any{c.Kind, string(r.Bytes(c))} }
		got = append(got, map[string]any{
			"ingest": cell(r.Ingest), "item": cell(r.ItemID), "role": cell(r.Role), "dims": cell(r.Dimensions),
			"name": cell(r.Name), "ts": cell(r.Timestamp), "complete": r.Complete(),
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{{
		"ingest": []any{CellString, "2026-02-18T01:25:10Z"}, "item": []any{CellString, "x1"}, "role": []any{CellNull, "null"},
		"dims": []any{CellRaw, `{"k":[1]}`}, "name": []any{CellString, "BotMessageSend"}, "ts": []any{CellString, "2026-02-18T01:24:36Z"},
		"complete": true,
	}, {
		"ingest": []any{CellString, "2026-02-18T01:25:11Z"}, "item": []any{CellString, "x2"}, "role": []any{CellMissing, ""},
		"dims": []any{CellMissing, ""}, "name": []any{CellMissing, ""}, "ts": []any{CellMissing, ""},
		"complete": false,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows\n%v\nwant\n%v", got, want)
	}
}

// oneByteReader forces every buffer boundary the scanner can meet.
type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

// decodeAll copies every row the decoder hands over.
func decodeAll(t testing.TB, body io.Reader) []Row {
	t.Helper()
	var rows []Row
	if _, err := Decode(body, func(r *Row) error {
		rows = append(rows, Row{Arena: bytes.Clone(r.Arena), RowCells: r.RowCells})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestDecodeAcrossReadBoundaries(t *testing.T) {
	body := response(t, Columns[:], [][]any{
		std("a", "BotMessageReceived", `{"type":"message","conversationId":"c","text":"caf\u00e9 \ud83d\ude00 \\ \"x\""}`),
		std("b", "BotMessageSend", `{"conversationId":"c","value":{"k":["]","}"]}}`),
	})
	whole, bytewise := decodeAll(t, strings.NewReader(body)), decodeAll(t, &oneByteReader{body})
	if len(whole) != 2 || !reflect.DeepEqual(whole, bytewise) {
		t.Fatalf("one byte at a time:\n%+v\nwhole:\n%+v", bytewise, whole)
	}
	if got := string(whole[0].Bytes(whole[0].Dimensions)); !strings.Contains(got, `caf\u00e9 \ud83d\ude00 \\ \"x\"`) {
		t.Fatalf("customDimensions cell %q: the string cell is unescaped once, its JSON inside kept", got)
	}
}

// FuzzDecodeResponse feeds arbitrary bodies to the decoder: it must never
// panic, count every row it hands over, and point every cell inside its
// row, string cells valid UTF-8.
func FuzzDecodeResponse(f *testing.F) {
	f.Add(`{"tables":[{"name":"PrimaryResult","columns":[{"name":"timestamp","type":"datetime"},{"name":"name","type":"string"},{"name":"itemId","type":"string"},{"name":"customDimensions","type":"dynamic"},{"name":"cloud_RoleInstance","type":"string"},{"name":"ingest","type":"datetime"}],"rows":[["2026-02-18T01:24:36.123Z","BotMessageReceived","i1","{\"type\":\"message\",\"conversationId\":\"c\",\"text\":\"hi \\u00e9\"}","HR Agent","2026-02-18T01:25:10.456Z"],["x",1,null,"{",null,"2026-02-18T01:25:10Z"]]}],"error":{"code":"PartialError","message":"m"}}`)
	f.Add(`{"tables":[]}`)
	f.Add(`not json`)
	f.Add(`{"tables":[{"rows":[[1]],"columns":[]}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		n := 0
		res, err := Decode(strings.NewReader(body), func(r *Row) error {
			n++
			for _, c := range []Cell{r.Timestamp, r.Name, r.ItemID, r.Dimensions, r.Role, r.Ingest} {
				if c.Start < 0 || c.Start > c.End || int(c.End) > len(r.Arena) {
					t.Fatalf("cell %+v outside the row's %d bytes", c, len(r.Arena))
				}
				if c.Kind == CellString && !utf8.Valid(r.Bytes(c)) {
					t.Fatalf("string cell %q is not UTF-8", r.Bytes(c))
				}
			}
			return nil
		})
		if err == nil && n != res.Rows {
			t.Fatalf("%d rows handed over, %d counted", n, res.Rows)
		}
	})
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-02-18T01:24:36Z":           time.Date(2026, 2, 18, 1, 24, 36, 0, time.UTC),
		"2026-02-18T01:24:36.1Z":         time.Date(2026, 2, 18, 1, 24, 36, 100000000, time.UTC),
		"2026-02-18T01:24:36.1234567Z":   time.Date(2026, 2, 18, 1, 24, 36, 123456700, time.UTC),
		"2026-02-18T01:24:36.123456789Z": time.Date(2026, 2, 18, 1, 24, 36, 123456789, time.UTC),
		"2026-02-18T02:24:36+01:00":      time.Date(2026, 2, 18, 1, 24, 36, 0, time.UTC),
	} {
		got, ok := ParseTime([]byte(in))
		if !ok || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "2026-02-30T01:24:36Z", "2026-13-18T01:24:36Z", "2026-02-18T25:24:36Z", "2026-02-18T01:24:36.Z", "2026-02-18 01:24:36Z", "yesterday"} {
		if _, ok := ParseTime([]byte(bad)); ok {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

package appinsights

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
)

// CellKind is what a row's cell holds.
type CellKind uint8

const (
	CellMissing CellKind = iota // fewer cells than columns
	CellString
	CellNull
	CellRaw // number, bool, object or array, as JSON text
)

// Cell says where a cell's value is in its row's arena. It is small (int32
// offsets) because a caller may keep one Row per row of a whole result.
type Cell struct {
	Kind       CellKind
	Start, End int32 // into Row.Arena
}

// Row is one decoded row: its cells' values packed in Arena (strings
// unescaped, other values as JSON text). The Row passed to onRow is valid only
// during the call; keep a copy.
type Row struct {
	Arena []byte
	RowCells
}

// RowCells says where a row's cells are in its arena; it holds no pointer,
// so a result's worth of them costs the garbage collector nothing to scan.
type RowCells struct {
	// By projected column (see Columns).
	Timestamp, Name, ItemID, Dimensions, Role, Ingest Cell
	// Cells counts the row's cells; it differs from Columns in a broken row.
	Cells int32
	// Columns is the number of columns in the header.
	Columns int32
}

// Bytes is the value of cell c of the row.
func (r *Row) Bytes(c Cell) []byte { return r.Arena[c.Start:c.End] }

// Complete reports whether the row has exactly one cell per column.
func (r *RowCells) Complete() bool { return r.Cells == r.Columns }

// Result summarises an answer once its body is read.
type Result struct {
	Rows int
	// Partial is the "error" object of a 200 answer: the rows are incomplete.
	Partial *Error
	// ServerTime is the answer's Date header: the service's clock when it
	// answered, in whole seconds; zero when it sent none.
	ServerTime time.Time
}

// Decode reads a query answer as a stream and calls onRow for each row of the
// first table. It never holds the whole body: memory is the read buffer plus
// one row. An error from onRow stops decoding. Values are bounded only by
// what a row's int32 offsets can address; DecodeLimited bounds them.
func Decode(body io.Reader, onRow func(*Row) error) (Result, error) {
	return DecodeLimited(body, 0, onRow)
}

// DecodeLimited is Decode with every JSON value of the answer (a cell, the
// columns header, an error object) at most maxValue bytes, unescaped; a
// larger one fails with ErrValueTooLarge before more than about the read
// buffer's size is held beyond the limit. maxValue <= 0: no limit but
// the offsets'.
func DecodeLimited(body io.Reader, maxValue int, onRow func(*Row) error) (Result, error) {
	s := NewStreamScanner(body)
	s.maxValue = maxValue
	d := decoder{s: s, onRow: onRow}
	err := d.decode(&d.res)
	return d.res, err
}

// maxArena is the most a row's cells can take: Cell offsets are int32.
const maxArena = math.MaxInt32

type decoder struct {
	s       *Scanner
	onRow   func(*Row) error
	row     Row
	scratch []byte
	res     Result
	tables  int
}

func (d *decoder) decode(res *Result) error {
	err := d.object(func(key []byte) error {
		switch string(key) {
		case "tables":
			return d.array(d.table)
		case "error":
			raw, err := d.s.AppendRaw(nil)
			if err != nil {
				return err
			}
			var qe Error
			if err := json.Unmarshal(raw, &qe); err != nil {
				return fmt.Errorf("response error object: %w", err)
			}
			res.Partial = &qe
			return nil
		default:
			return d.skip()
		}
	})
	if err != nil {
		return err
	}
	if d.tables == 0 {
		return fmt.Errorf("response has no tables")
	}
	return nil
}

func (d *decoder) skip() error {
	var err error
	d.scratch, err = d.s.AppendRaw(d.scratch[:0])
	return err
}

// object walks a JSON object, calling field for each key; field must consume the value.
func (d *decoder) object(field func(key []byte) error) error {
	if err := d.s.Expect('{'); err != nil {
		return err
	}
	if c, err := d.s.Next(); err != nil {
		return err
	} else if c == '}' {
		d.s.Skip()
		return nil
	}
	var key []byte
	for {
		var err error
		if key, err = d.s.AppendString(key[:0]); err != nil {
			return err
		}
		if err := d.s.Expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		more, err := d.s.EndOf('}')
		if err != nil || !more {
			return err
		}
	}
}

// array walks a JSON array, calling elem for each element.
func (d *decoder) array(elem func() error) error {
	if err := d.s.Expect('['); err != nil {
		return err
	}
	if c, err := d.s.Next(); err != nil {
		return err
	} else if c == ']' {
		d.s.Skip()
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		more, err := d.s.EndOf(']')
		if err != nil || !more {
			return err
		}
	}
}

func (d *decoder) table() error {
	d.tables++
	first := d.tables == 1 // the query has one statement: PrimaryResult
	var layout []*Cell
	return d.object(func(key []byte) error {
		switch {
		case string(key) == "columns":
			raw, err := d.s.AppendRaw(nil)
			if err != nil {
				return err
			}
			var cols []Column
			if err := json.Unmarshal(raw, &cols); err != nil {
				return fmt.Errorf("response columns: %w", err)
			}
			layout, err = d.layout(cols)
			return err
		case string(key) == "rows" && first:
			if layout == nil {
				return fmt.Errorf("response has rows before columns")
			}
			return d.array(func() error { return d.readRow(layout) })
		default:
			return d.skip()
		}
	})
}

// layout maps column positions to the row's fields by name.
func (d *decoder) layout(cols []Column) ([]*Cell, error) {
	targets := map[string]*Cell{
		ColTimestamp: &d.row.Timestamp, ColName: &d.row.Name, ColItemID: &d.row.ItemID,
		ColDimensions: &d.row.Dimensions, ColRoleInstance: &d.row.Role, ColIngest: &d.row.Ingest,
	}
	layout := make([]*Cell, len(cols))
	for i, c := range cols {
		if t, ok := targets[c.Name]; ok {
			layout[i] = t
			delete(targets, c.Name)
		}
	}
	for _, name := range Columns {
		if _, missing := targets[name]; missing {
			return nil, fmt.Errorf("response lacks column %q", name)
		}
	}
	return layout, nil
}

func (d *decoder) readRow(layout []*Cell) error {
	row := &d.row
	row.Arena = row.Arena[:0]
	row.Cells = 0
	row.Columns = int32(len(layout))
	for _, c := range layout {
		if c != nil {
			*c = Cell{}
		}
	}
	err := d.array(func() error {
		var target *Cell
		if int(row.Cells) < len(layout) {
			target = layout[row.Cells]
		}
		row.Cells++
		c, err := d.s.Next()
		if err != nil {
			return err
		}
		start := len(row.Arena)
		kind := CellRaw
		if c == '"' {
			kind = CellString
			row.Arena, err = d.s.AppendString(row.Arena)
		} else {
			row.Arena, err = d.s.AppendRaw(row.Arena)
			if string(row.Arena[start:]) == "null" {
				kind = CellNull
			}
		}
		if err != nil {
			return err
		}
		if len(row.Arena) > maxArena {
			return fmt.Errorf("%w: a row's values are over %d bytes", ErrValueTooLarge, maxArena)
		}
		if target != nil {
			*target = Cell{Kind: kind, Start: int32(start), End: int32(len(row.Arena))}
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.res.Rows++
	return d.onRow(row)
}

// Time reads cell c as a datetime; false when it is not a string holding one.
func (r *Row) Time(c Cell) (time.Time, bool) {
	if c.Kind != CellString {
		return time.Time{}, false
	}
	return ParseTime(r.Bytes(c))
}

// ParseTime reads the query API's datetimes, "2026-02-18T01:24:36.1234567Z",
// without allocating; other RFC 3339 forms go through time.Parse.
func ParseTime(v []byte) (time.Time, bool) {
	if len(v) >= 20 && len(v) <= 30 && v[4] == '-' && v[7] == '-' && v[10] == 'T' && v[13] == ':' && v[16] == ':' && v[len(v)-1] == 'Z' {
		year, ok1 := digits(v[0:4])
		month, ok2 := digits(v[5:7])
		day, ok3 := digits(v[8:10])
		hour, ok4 := digits(v[11:13])
		minute, ok5 := digits(v[14:16])
		sec, ok6 := digits(v[17:19])
		nanos, ok7 := 0, true
		if frac := v[19 : len(v)-1]; len(frac) > 0 {
			if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
				ok7 = false
			} else {
				n, ok := digits(frac[1:])
				for range 10 - len(frac) {
					n *= 10
				}
				nanos, ok7 = n, ok
			}
		}
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 &&
			month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour < 24 && minute < 60 && sec < 60 {
			t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, time.UTC)
			if t.Day() == day { // rejects 2026-02-30
				return t, true
			}
		}
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	return t, err == nil
}

func digits(v []byte) (int, bool) {
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

package copilotstudioreceiver

import (
	"encoding/json"
	"fmt"
	"io"
)

// Columns the receiver's query projects (see query.go); the response's
// "columns" header says where each one is.
const (
	colTimestamp    = "timestamp"
	colName         = "name"
	colItemID       = "itemId"
	colDimensions   = "customDimensions"
	colRoleInstance = "cloud_RoleInstance"
	colIngest       = "ingest"
)

var projectedColumns = []string{colTimestamp, colName, colItemID, colDimensions, colRoleInstance, colIngest}

type cellKind uint8

const (
	cellMissing cellKind = iota // fewer cells than columns
	cellString
	cellNull
	cellRaw // number, bool, object or array, as JSON text
)

// cell is small (int32 offsets) because a window keeps one resultRow per
// row until its records are built.
type cell struct {
	kind       cellKind
	start, end int32 // into resultRow.arena
}

// resultRow is one decoded row. The one passed to onRow is valid only during
// the callback; batch.offer keeps a copy.
type resultRow struct {
	arena []byte
	rowCells
}

// rowCells says where a row's cells are in its arena; it holds no pointer,
// so a window's worth of them costs the garbage collector nothing to scan.
type rowCells struct {
	// by projected column: timestamp, name, itemId, customDimensions, cloud_RoleInstance, ingest
	timestamp, name, itemID, dims, role, ingest cell
	// cells counts the row's cells; it differs from the column count in a broken row.
	cells int32
	// columns is the number of columns in the header.
	columns int32
}

func (r *resultRow) bytes(c cell) []byte { return r.arena[c.start:c.end] }

// queryError is the "error" object of a query API response, on a failed
// request or next to "tables" on a 200 with partial results.
type queryError struct {
	Message       string          `json:"message"`
	Code          string          `json:"code"`
	CorrelationID string          `json:"correlationId"`
	InnerError    json.RawMessage `json:"innererror"`
}

func (e *queryError) String() string {
	s := e.Code + ": " + e.Message
	if len(e.InnerError) > 0 {
		s += " (" + string(e.InnerError) + ")"
	}
	if e.CorrelationID != "" {
		s += " [correlationId " + e.CorrelationID + "]"
	}
	return s
}

type columnHeader struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// decodedResult summarises a response once its body is read.
type decodedResult struct {
	rows int
	// partial is the "error" object of a 200 response: the rows are incomplete.
	partial *queryError
}

// decodeResponse reads a query API response body as a stream and calls onRow
// for each row of the first table. It never holds the whole body: memory is
// the read buffer plus one row. An error from onRow stops decoding.
func decodeResponse(body io.Reader, onRow func(*resultRow) error) (decodedResult, error) {
	d := responseDecoder{s: newStreamScanner(body), onRow: onRow}
	err := d.decode(&d.res)
	return d.res, err
}

type responseDecoder struct {
	s       *scanner
	onRow   func(*resultRow) error
	row     resultRow
	scratch []byte
	res     decodedResult
	tables  int
}

func (d *responseDecoder) decode(res *decodedResult) error {
	err := d.object(func(key []byte) error {
		switch string(key) {
		case "tables":
			return d.array(d.table)
		case "error":
			raw, err := d.s.appendRaw(nil)
			if err != nil {
				return err
			}
			var qe queryError
			if err := json.Unmarshal(raw, &qe); err != nil {
				return fmt.Errorf("response error object: %w", err)
			}
			res.partial = &qe
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

func (d *responseDecoder) skip() error {
	var err error
	d.scratch, err = d.s.appendRaw(d.scratch[:0])
	return err
}

// object walks a JSON object, calling field for each key; field must consume the value.
func (d *responseDecoder) object(field func(key []byte) error) error {
	if err := d.s.expect('{'); err != nil {
		return err
	}
	if c, err := d.s.next(); err != nil {
		return err
	} else if c == '}' {
		d.s.pos++
		return nil
	}
	var key []byte
	for {
		var err error
		if key, err = d.s.appendString(key[:0]); err != nil {
			return err
		}
		if err := d.s.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		more, err := d.s.endOf('}')
		if err != nil || !more {
			return err
		}
	}
}

// array walks a JSON array, calling elem for each element.
func (d *responseDecoder) array(elem func() error) error {
	if err := d.s.expect('['); err != nil {
		return err
	}
	if c, err := d.s.next(); err != nil {
		return err
	} else if c == ']' {
		d.s.pos++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		more, err := d.s.endOf(']')
		if err != nil || !more {
			return err
		}
	}
}

func (d *responseDecoder) table() error {
	d.tables++
	first := d.tables == 1 // the query has one statement: PrimaryResult
	var layout []*cell
	return d.object(func(key []byte) error {
		switch {
		case string(key) == "columns":
			raw, err := d.s.appendRaw(nil)
			if err != nil {
				return err
			}
			var cols []columnHeader
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
func (d *responseDecoder) layout(cols []columnHeader) ([]*cell, error) {
	targets := map[string]*cell{
		colTimestamp: &d.row.timestamp, colName: &d.row.name, colItemID: &d.row.itemID,
		colDimensions: &d.row.dims, colRoleInstance: &d.row.role, colIngest: &d.row.ingest,
	}
	layout := make([]*cell, len(cols))
	for i, c := range cols {
		if t, ok := targets[c.Name]; ok {
			layout[i] = t
			delete(targets, c.Name)
		}
	}
	for _, name := range projectedColumns {
		if _, missing := targets[name]; missing {
			return nil, fmt.Errorf("response lacks column %q", name)
		}
	}
	return layout, nil
}

func (d *responseDecoder) readRow(layout []*cell) error {
	row := &d.row
	row.arena = row.arena[:0]
	row.cells = 0
	row.columns = int32(len(layout))
	for _, c := range layout {
		if c != nil {
			*c = cell{}
		}
	}
	err := d.array(func() error {
		var target *cell
		if int(row.cells) < len(layout) {
			target = layout[row.cells]
		}
		row.cells++
		c, err := d.s.next()
		if err != nil {
			return err
		}
		start := len(row.arena)
		kind := cellRaw
		if c == '"' {
			kind = cellString
			row.arena, err = d.s.appendString(row.arena)
		} else {
			row.arena, err = d.s.appendRaw(row.arena)
			if string(row.arena[start:]) == "null" {
				kind = cellNull
			}
		}
		if err != nil {
			return err
		}
		if target != nil {
			*target = cell{kind: kind, start: int32(start), end: int32(len(row.arena))}
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.res.rows++
	return d.onRow(row)
}

package fakeappinsights

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
)

// Row is one customEvents row.
type Row struct {
	// Timestamp is the event time (column timestamp).
	Timestamp time.Time
	// IngestionTime is when the row became queryable (ingestion_time()).
	IngestionTime time.Time
	// Name is the event name (column name).
	Name string
	// ItemID is the row's unique id (column itemId).
	ItemID string
	// CustomDimensions is the JSON text of the customDimensions column,
	// returned as is (it may be malformed on purpose).
	CustomDimensions string
	// RoleInstance is the agent's name (column cloud_RoleInstance).
	RoleInstance string
}

type rowFile struct {
	Timestamp        time.Time       `json:"timestamp"`
	IngestionTime    time.Time       `json:"ingestion_time"`
	Name             string          `json:"name"`
	ItemID           string          `json:"itemId"`
	CustomDimensions json.RawMessage `json:"customDimensions"`
	RoleInstance     string          `json:"cloud_RoleInstance"`
}

// UnmarshalJSON reads the row file format described in the package doc.
func (r *Row) UnmarshalJSON(data []byte) error {
	var f rowFile
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	dims := bytes.TrimSpace(f.CustomDimensions)
	var text string
	switch {
	case len(dims) == 0 || bytes.Equal(dims, []byte("null")):
		text = ""
	case dims[0] == '"':
		if err := json.Unmarshal(dims, &text); err != nil {
			return err
		}
	default:
		var compact bytes.Buffer
		if err := json.Compact(&compact, dims); err != nil {
			return err
		}
		text = compact.String()
	}
	*r = Row{
		Timestamp: f.Timestamp, IngestionTime: f.IngestionTime, Name: f.Name,
		ItemID: f.ItemID, CustomDimensions: text, RoleInstance: f.RoleInstance,
	}
	return nil
}

// MarshalJSON writes the row file format (customDimensions as a string).
func (r Row) MarshalJSON() ([]byte, error) {
	dims, err := json.Marshal(r.CustomDimensions)
	if err != nil {
		return nil, err
	}
	return json.Marshal(rowFile{
		Timestamp: r.Timestamp, IngestionTime: r.IngestionTime, Name: r.Name,
		ItemID: r.ItemID, CustomDimensions: dims, RoleInstance: r.RoleInstance,
	})
}

// LoadRows reads a row file (see the package doc).
func LoadRows(path string) ([]Row, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []Row
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("fakeappinsights: %s: %w", path, err)
	}
	for i, r := range rows {
		if r.ItemID == "" || r.IngestionTime.IsZero() {
			return nil, fmt.Errorf("fakeappinsights: %s: row %d needs itemId and ingestion_time", path, i)
		}
	}
	return rows, nil
}

// Rebase returns a copy of rows shifted in time so the latest ingestion time
// becomes latest; gaps between rows are kept.
func Rebase(rows []Row, latest time.Time) []Row {
	if len(rows) == 0 {
		return nil
	}
	max := rows[0].IngestionTime
	for _, r := range rows[1:] {
		if r.IngestionTime.After(max) {
			max = r.IngestionTime
		}
	}
	shift := latest.Sub(max)
	out := make([]Row, len(rows))
	for i, r := range rows {
		r.Timestamp = r.Timestamp.Add(shift)
		r.IngestionTime = r.IngestionTime.Add(shift)
		out[i] = r
	}
	return out
}

// Dimensions marshals a customDimensions map to the JSON text Row expects.
func Dimensions(m map[string]string) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// storedRow is a Row with its cells rendered as JSON once, in columnsInOrder
// order and comma-separated: the inside of the row's array in an answer.
type storedRow struct {
	Row
	cells []byte
	ends  [len(appinsights.Columns)]int // cells[ends[i-1]+1:ends[i]] is column i
}

// renderRows renders rows, packed into shared chunks of memory: few
// allocations, and nothing for the garbage collector to scan.
func renderRows(rows []Row) []storedRow {
	const chunkSize = 1 << 20
	stored := make([]storedRow, len(rows))
	var chunk, scratch []byte
	for i, r := range rows {
		scratch = scratch[:0]
		for j, c := range columnsInOrder {
			if j > 0 {
				scratch = append(scratch, ',')
			}
			scratch = appendCell(scratch, r, c)
			stored[i].ends[j] = len(scratch)
		}
		if len(scratch) > cap(chunk)-len(chunk) {
			chunk = make([]byte, 0, max(chunkSize, len(scratch)))
		}
		start := len(chunk)
		chunk = append(chunk, scratch...)
		stored[i].Row, stored[i].cells = r, chunk[start:len(chunk):len(chunk)]
	}
	return stored
}

// cell is one column's rendered value.
func (r *storedRow) cell(column string) []byte {
	j := slices.Index(columnsInOrder, column)
	start := 0
	if j > 0 {
		start = r.ends[j-1] + 1 // past the comma
	}
	return r.cells[start:r.ends[j]]
}

// appendCell appends the JSON of one column of r, as the API writes it.
func appendCell(buf []byte, r Row, column string) []byte {
	var v any
	switch column {
	case appinsights.ColTimestamp:
		v = formatTime(r.Timestamp)
	case appinsights.ColIngest:
		v = formatTime(r.IngestionTime)
	case appinsights.ColName:
		v = r.Name
	case appinsights.ColItemID:
		v = r.ItemID
	case appinsights.ColDimensions:
		v = r.CustomDimensions
	case appinsights.ColRoleInstance:
		v = r.RoleInstance
	}
	b, _ := json.Marshal(v)
	return append(buf, b...)
}

// Package appinsights is a client of the Application Insights query API
// (POST {endpoint}/v1/apps/{appId}/query) for Copilot Studio's customEvents:
// the KQL of one ingestion-time range, the request with its credential, and
// a streaming decoder of the answer that hands over one row at a time.
//
// This file holds the facts of the API that the client and its stand-in
// (internal/testing/fakeappinsights) share: the table and columns queried,
// their types, the answer's shapes and limits.
package appinsights

import (
	"encoding/json"
	"time"
)

// Table is the table Copilot Studio writes its telemetry to.
const Table = "customEvents"

// The columns a query projects, and what the answer's "columns" header
// names them. Ingest is not a column of the table: the query defines it as
// ingestion_time().
const (
	ColTimestamp    = "timestamp"
	ColName         = "name"
	ColItemID       = "itemId"
	ColDimensions   = "customDimensions"
	ColRoleInstance = "cloud_RoleInstance"
	ColIngest       = "ingest"
)

// Columns are the projected columns in the order the query asks for them.
// An array, so that its length is a constant; do not modify it.
var Columns = [...]string{ColTimestamp, ColName, ColItemID, ColDimensions, ColRoleInstance, ColIngest}

// ColumnType is the type the answer's header gives a projected column ("" for
// a column not projected).
func ColumnType(column string) string {
	switch column {
	case ColTimestamp, ColIngest:
		return "datetime"
	case ColDimensions:
		return "dynamic"
	case ColName, ColItemID, ColRoleInstance:
		return "string"
	}
	return ""
}

// The query's fixed operators, exactly as KQL writes them; the stand-in
// accepts these and nothing else.
const (
	ExtendIngest  = "extend " + ColIngest + " = ingestion_time()"
	OrderByIngest = "order by " + ColIngest + " asc, " + ColItemID + " asc"
)

// ResultTable is the name of the one table a single-statement query answers.
const ResultTable = "PrimaryResult"

// MaxRows is the query API's own limit on the rows of one result.
const MaxRows = 500000

// Tick is the resolution of Kusto datetimes (100 ns). Query bounds are whole
// ticks so that what is sent is exactly what Kusto compares.
const Tick = 100 * time.Nanosecond

// ErrorCodePartial is the code of the "error" object a 200 answer carries
// next to "tables" when its rows are incomplete.
const ErrorCodePartial = "PartialError"

// Error is the "error" object of an answer: the whole body of a failed
// request ({"error": {...}}), or next to "tables" in a 200 with partial results.
type Error struct {
	Message       string          `json:"message"`
	Code          string          `json:"code"`
	CorrelationID string          `json:"correlationId"`
	InnerError    json.RawMessage `json:"innererror,omitempty"`
}

// ErrorBody is the body of a failed request.
type ErrorBody struct {
	Error *Error `json:"error"`
}

func (e *Error) String() string {
	s := e.Code + ": " + e.Message
	if len(e.InnerError) > 0 {
		s += " (" + string(e.InnerError) + ")"
	}
	if e.CorrelationID != "" {
		s += " [correlationId " + e.CorrelationID + "]"
	}
	return s
}

// Column is one entry of a result table's "columns" header.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

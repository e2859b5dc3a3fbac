// Package fakeappinsights is a local stand-in for the Application Insights
// query API (https://api.applicationinsights.io/v1/apps/{appId}/query) that
// speaks its real request and response shapes, errors included. The
// copilotstudio receiver's tests, cmd/localrun, the end-to-end tests and the
// fault suite all use it.
//
// # Starting it
//
//	srv, err := fakeappinsights.New(fakeappinsights.Options{
//		AppID:          "00000000-0000-0000-0000-000000000001",
//		TokenValidator: entra.Valid, // a *fakeentra.Server's method; or APIKey: "k"
//		TLS:            bundle,      // *localtls.Bundle; nil serves plain HTTP
//	})
//	defer srv.Close()
//	srv.SetNow(t0)                        // the stand-in's clock (default: real time)
//	srv.AddRows(rows...)                  // rows with ingestion time > now stay invisible
//	srv.InjectFault(2, fakeappinsights.Fault{Kind: fakeappinsights.Throttle, RetryAfter: 7 * time.Second})
//	// point the receiver's endpoint at srv.URL()
//
// # Requests
//
// POST /v1/apps/{appId}/query with JSON {"query": "...", "timespan": "..."}, or
// GET with ?query=&timespan=. Authentication: "Authorization: Bearer <token>"
// accepted when Options.TokenValidator says so, or "x-api-key" equal to
// Options.APIKey. With neither option set, every request is accepted.
// Wrong app id: 404 PathNotFoundError; no credential: 401
// AuthorizationRequiredError; a rejected credential: 403 InvalidTokenError.
//
// # The KQL it understands
//
// Only the shape internal/appinsights (the client the copilotstudio receiver
// uses) sends, one operator per line; the table, the column names and types
// and the fixed operators are that package's constants, shared here:
//
//	customEvents
//	| where name in ("BotMessageReceived", "BotMessageSend")
//	| where cloud_RoleInstance in ("HR Agent")              (optional)
//	| extend ingest = ingestion_time()
//	| where ingest >= datetime(2026-02-18T01:20:00.0000000Z) and ingest < datetime(2026-02-18T01:30:00.0000000Z)
//	| project timestamp, name, itemId, customDimensions, cloud_RoleInstance, ingest
//	| order by ingest asc, itemId asc
//	| take 50001
//
// String literals use double or single quotes with backslash escapes. In the
// ingest bound, the operators >, >=, <, <= are accepted. "limit" is a synonym
// of "take". project lists any of the six columns, in the order the result
// gives them; without project all six come back. Anything else answers 400
// BadArgumentError with a SyntaxError inner error naming the operator, so a
// change of query shape in the receiver fails loudly here.
//
// timespan ("P1D", "PT10M", "start/end" or "start/duration" in ISO 8601)
// filters on timestamp (event time) as the real service does; it is relative
// to the stand-in's clock.
//
// Rows are visible when their ingestion time is at or before the stand-in's
// now, as in the real service, where a row only becomes queryable once ingested.
// Results always come ordered by ingestion time, then item id (with or
// without "order by"), which keeps tests reproducible.
//
// Requests() records each query request: its KQL and timespan, the status
// answered, the fault applied, the number of rows, the parsed take and
// ingestion bounds, and the ingestion time of the last row answered. The
// copilotstudio receiver asks for one row more than max_rows_per_query; an
// answer with Rows == Take is over-full, and the receiver delivers it only
// up to (not including) the ingestion time of its last row, so its cursor
// then stands at LastIngest, not at IngestUpper.
//
// # Responses
//
// 200 {"tables":[{"name":"PrimaryResult","columns":[{"name","type"}...],"rows":[[...]...]}]},
// datetimes as RFC 3339 strings in UTC, customDimensions as the JSON text it
// was given (a string, as the real service returns it). Errors:
// {"error":{"message","code","correlationId","innererror":{...}}}.
//
// # Faults
//
// InjectFault(n, f) makes the next n query requests fail with f, in order:
// Throttle (429 ThrottledError with Retry-After in whole seconds),
// InternalError (500), Unavailable (503), GatewayTimeout (504),
// PartialResult (200 with the first half of the rows and a PartialError
// "error" next to "tables"), MalformedJSON (200 with a body cut off
// mid-row), Stall (no answer until the client gives up or Close), Redirect
// (307 to Fault.Location).
//
// Every answer carries a Date header from the stand-in's clock (SetNow), as
// the service's answers carry its own: a client can tell its clock from
// the service's.
//
// # Row files
//
// LoadRows reads a JSON array of objects with these keys:
//
//	[{"timestamp": "2026-02-18T01:24:36.123Z",           // event time, RFC 3339
//	  "ingestion_time": "2026-02-18T01:25:10.456Z",      // when it became queryable
//	  "name": "BotMessageReceived",
//	  "itemId": "5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a69",
//	  "customDimensions": {"conversationId": "a:1EBqwy", "text": "hi"},
//	  "cloud_RoleInstance": "HR Agent"}]
//
// customDimensions may be a JSON object (stored as its JSON text) or a JSON
// string (stored verbatim, so a malformed value can be written on purpose).
// Rebase shifts a set of rows in time so sample files can be replayed "now".
package fakeappinsights

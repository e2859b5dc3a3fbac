// Package aktoexporter sends Akto traffic records to Akto's data ingestion
// service: POST {endpoint}/api/ingestData with {"batchData":[...]}, each
// element a log record's body (a JSON object) as it is, from a queue that
// can live on disk, with retries that lose nothing while the service or its
// token is being fixed.
package aktoexporter

//go:generate go tool mdatagen metadata.yaml

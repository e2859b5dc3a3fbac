package workload

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
)

// A workload loads into the Application Insights stand-in as it is, and the
// query API gives every row back with customDimensions unchanged.
func TestWorkloadLoadsIntoTheStandIn(t *testing.T) {
	w := Generate(DefaultConfig(4, 100))
	srv, err := fakeappinsights.New(fakeappinsights.Options{AppID: "app"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddRows(w.Rows...)

	query := "customEvents\n| extend ingest = ingestion_time()\n| project timestamp, name, itemId, customDimensions, cloud_RoleInstance, ingest\n| order by ingest asc, itemId asc"
	body, _ := json.Marshal(map[string]string{"query": query, "timespan": "2026-02-17T00:00:00Z/2026-02-20T00:00:00Z"})
	resp, err := http.Post(srv.URL()+"/v1/apps/app/query", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var result struct {
		Tables []struct {
			Rows [][]any `json:"rows"`
		} `json:"tables"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&result); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	got := result.Tables[0].Rows
	if len(got) != len(w.Rows) {
		t.Fatalf("stand-in returned %d of %d rows", len(got), len(w.Rows))
	}
	for i, r := range w.Rows {
		if got[i][2] != r.ItemID || got[i][3] != r.CustomDimensions || got[i][4] != r.RoleInstance {
			t.Fatalf("row %d came back as %v, want %+v", i, got[i], r)
		}
	}
}

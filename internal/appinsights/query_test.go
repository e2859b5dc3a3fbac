package appinsights

import (
	"strings"
	"testing"
	"time"
)

func TestQueryText(t *testing.T) {
	q := Query{
		EventNames: []string{"BotMessageReceived", "BotMessageSend"},
		Agents:     []string{`Ops "Night" Agent\1`},
		Lower:      time.Date(2026, 2, 18, 1, 20, 0, 0, time.UTC),
		Upper:      time.Date(2026, 2, 18, 1, 30, 0, 1234567, time.UTC),
		Limit:      50000,
	}
	want := `customEvents
| where name in ("BotMessageReceived", "BotMessageSend")
| where cloud_RoleInstance in ("Ops \"Night\" Agent\\1")
| extend ingest = ingestion_time()
| where ingest >= datetime(2026-02-18T01:20:00.0000000Z) and ingest < datetime(2026-02-18T01:30:00.0012345Z)
| project timestamp, name, itemId, customDimensions, cloud_RoleInstance, ingest
| order by ingest asc, itemId asc
| take 50001`
	if got := q.KQL(); got != want {
		t.Errorf("KQL:\n%s\nwant\n%s", got, want)
	}
	if got, want := q.Timespan(), "2026-02-16T01:20:00.0000000Z/2026-02-18T02:30:00.0012345Z"; got != want {
		t.Errorf("timespan %s, want %s (48 h before the range to 1 h after it)", got, want)
	}
	q.Agents = nil
	if got := q.KQL(); strings.Contains(got, ColRoleInstance+" in") {
		t.Errorf("without agents the query still filters on them:\n%s", got)
	}
}

func TestTokenScopeFromEndpoint(t *testing.T) {
	for endpoint, want := range map[string]string{
		"https://api.applicationinsights.io":        "https://api.applicationinsights.io/.default",
		"https://api.applicationinsights.us/":       "https://api.applicationinsights.us/.default",
		"https://127.0.0.1:4443/some/path":          "https://127.0.0.1:4443/.default",
		"https://api.applicationinsights.azure.cn/": "https://api.applicationinsights.azure.cn/.default",
	} {
		got, err := tokenScope(endpoint)
		if err != nil || got != want {
			t.Errorf("tokenScope(%q) = %q, %v; want %q", endpoint, got, err, want)
		}
	}
}

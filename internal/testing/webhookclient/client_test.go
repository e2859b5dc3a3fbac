package webhookclient

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGenerateIsDeterministicAndCoversEveryVariant(t *testing.T) {
	a, b := Generate(7, 10, Options{}), Generate(7, 10, Options{})
	seen := map[string]bool{}
	for i := range a {
		if a[i].ConversationID != b[i].ConversationID || a[i].StepID != b[i].StepID {
			t.Fatalf("call %d differs between two runs of the same seed", i)
		}
		var m map[string]any
		if err := json.Unmarshal(a[i].Body, &m); err != nil {
			t.Fatalf("call %d (%s) is not JSON: %v", i, a[i].Variant, err)
		}
		seen[a[i].Variant] = true
	}
	for _, v := range Variants {
		if !seen[v] {
			t.Errorf("variant %s never generated", v)
		}
	}
	if other := Generate(8, 1, Options{}); other[0].ConversationID == a[0].ConversationID {
		t.Fatal("two seeds gave the same ids")
	}
}

func TestVariantShapes(t *testing.T) {
	for _, c := range Generate(1, len(Variants), Options{}) {
		body := string(c.Body)
		switch c.Variant {
		case "connector":
			mustContain(t, c, `"previousToolsOutputs":[`)
		case "topic":
			mustContain(t, c, `"previousToolOutputs":[`)
			mustContain(t, c, `"outputs":{`)
		case "mcp":
			mustContain(t, c, `"user":null`)
			mustContain(t, c, `"userMessage":null`)
			if c.UserTenantID != "" || c.CrossTenant() {
				t.Errorf("mcp call has a user tenant")
			}
		case "cross_tenant":
			if !c.CrossTenant() {
				t.Errorf("cross_tenant call is not cross-tenant")
			}
		case "extras":
			mustContain(t, c, `"futureField"`)
			if c.Secret == "" || !bytes.Contains(c.Body, []byte(c.Secret)) {
				t.Errorf("extras call carries no secret: %s", body)
			}
		}
	}
}

func mustContain(t *testing.T, c Call, s string) {
	t.Helper()
	if !bytes.Contains(c.Body, []byte(s)) {
		t.Errorf("%s body lacks %s: %s", c.Variant, s, c.Body)
	}
}

func TestClientSendsWhatCopilotStudioSends(t *testing.T) {
	var got *http.Request
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		gotBody, _ = io.ReadAll(r.Body)
		w.Header().Set(RecordHeader, "accepted")
		_, _ = w.Write([]byte(`{"blockAction":false}`))
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/api/agentSecurity/", Token: func(context.Context) (string, error) { return "tok", nil }}
	a, err := c.Analyze(context.Background(), Example())
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.Path != "/api/agentSecurity/analyze-tool-execution" || got.URL.Query().Get("api-version") != APIVersion {
		t.Fatalf("url = %s", got.URL)
	}
	if got.Header.Get("Authorization") != "Bearer tok" || got.Header.Get("Content-Type") != "application/json" || got.Header.Get("x-ms-correlation-id") != a.CorrelationID {
		t.Fatalf("headers = %v", got.Header)
	}
	if !bytes.Equal(gotBody, Example()) || a.Status != 200 || a.Record != "accepted" || string(a.Body) != `{"blockAction":false}` {
		t.Fatalf("answer = %+v", a)
	}
	if _, err := c.Validate(context.Background()); err != nil || got.URL.Path != "/api/agentSecurity/validate" || got.ContentLength != 0 {
		t.Fatalf("validate: %v, %s, %d", err, got.URL.Path, got.ContentLength)
	}
}

package dataverse

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
)

// staticCredential hands out one token and remembers the scopes asked for.
type staticCredential struct {
	token  string
	scopes []string
}

func (c *staticCredential) GetToken(_ context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.scopes = append(c.scopes, opts.Scopes...)
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

var sampleBots = []fakedataverse.Bot{
	{BotID: "b1", Name: "HR Agent", SchemaName: "cr44e_hrAgent", AuthenticationMode: 2, PublishedOn: "2026-02-01T09:00:00Z"},
	{BotID: "b2", Name: "Public FAQ", SchemaName: "cr44e_publicFaq", AuthenticationMode: 1, PublishedOn: "2026-02-02T09:00:00Z"},
	{BotID: "b3", Name: "IT Helpdesk", SchemaName: "cr44e_itHelpdesk", AuthenticationMode: 3},
	{BotID: "b4", Name: "Old Bot", SchemaName: "cr44e_oldBot", AuthenticationMode: 4, PublishedOn: "2025-01-01T00:00:00Z", StateCode: 1},
	{BotID: "b5", Name: "Draft", SchemaName: "cr44e_draft", AuthenticationMode: 0},
}

func newServer(token, environmentID string) *fakedataverse.Server {
	return fakedataverse.New(fakedataverse.Options{
		TokenValidator: func(t string) bool { return t == token },
		EnvironmentID:  environmentID,
	}, sampleBots...)
}

func newClient(t *testing.T, srv *fakedataverse.Server, token string) (*Client, *staticCredential, *[]time.Duration) {
	t.Helper()
	cred := &staticCredential{token: token}
	c, err := NewClient(srv.URL, cred, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	c.pageSize = 2 // five agents: three pages
	var waits []time.Duration
	c.wait = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	return c, cred, &waits
}

func TestAgentsFollowsPagingAndMapsColumns(t *testing.T) {
	srv := newServer("tok", "env-123")
	defer srv.Close()
	c, cred, _ := newClient(t, srv, "tok")

	agents, err := c.Agents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != len(sampleBots) {
		t.Fatalf("got %d agents over the pages, want %d", len(agents), len(sampleBots))
	}
	want := []Agent{
		{ID: "b1", Name: "HR Agent", SchemaName: "cr44e_hrAgent", EnvironmentID: "env-123", AuthenticationMode: schema.AuthEntraID, PublishedState: schema.PublishedStatePublished},
		{ID: "b2", Name: "Public FAQ", SchemaName: "cr44e_publicFaq", EnvironmentID: "env-123", AuthenticationMode: schema.AuthNone, PublishedState: schema.PublishedStatePublished},
		{ID: "b3", Name: "IT Helpdesk", SchemaName: "cr44e_itHelpdesk", EnvironmentID: "env-123", AuthenticationMode: schema.AuthManual, PublishedState: schema.PublishedStateUnpublished},
		{ID: "b4", Name: "Old Bot", SchemaName: "cr44e_oldBot", EnvironmentID: "env-123", AuthenticationMode: schema.AuthManual, PublishedState: schema.PublishedStateInactive},
		{ID: "b5", Name: "Draft", SchemaName: "cr44e_draft", EnvironmentID: "env-123", AuthenticationMode: schema.AuthUnspecified, PublishedState: schema.PublishedStateUnpublished},
	}
	for i := range want {
		if agents[i] != want[i] {
			t.Errorf("agent %d = %+v, want %+v", i, agents[i], want[i])
		}
	}
	if !agents[1].Unauthenticated() || agents[0].Unauthenticated() {
		t.Error("only the agent with authentication mode None is unauthenticated")
	}
	// One environment call and three pages, each with a token for {url}/.default.
	if got := srv.Requests(); got != 4 {
		t.Errorf("requests = %d, want 4", got)
	}
	for _, s := range cred.scopes {
		if s != srv.URL+"/.default" {
			t.Fatalf("scope %q, want %q", s, srv.URL+"/.default")
		}
	}
}

func TestAgentsWaitsOutThrottling(t *testing.T) {
	srv := newServer("tok", "env")
	defer srv.Close()
	c, _, waits := newClient(t, srv, "tok")
	srv.Throttle(2, 7)

	agents, err := c.Agents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != len(sampleBots) {
		t.Fatalf("got %d agents, want %d", len(agents), len(sampleBots))
	}
	if len(*waits) != 2 || (*waits)[0] != 7*time.Second || (*waits)[1] != 7*time.Second {
		t.Errorf("waits = %v, want the full Retry-After (7s) twice", *waits)
	}
}

func TestAgentsGivesUpOnEndlessThrottling(t *testing.T) {
	srv := newServer("tok", "env")
	defer srv.Close()
	c, _, waits := newClient(t, srv, "tok")
	srv.Throttle(100, 1)

	_, err := c.Agents(context.Background())
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("err = %v, want a 429 StatusError", err)
	}
	if len(*waits) != maxThrottleRetries {
		t.Errorf("waited %d times, want %d", len(*waits), maxThrottleRetries)
	}
}

func TestAgentsReportsAuthFailureClearly(t *testing.T) {
	srv := newServer("right-token", "env")
	defer srv.Close()
	c, _, _ := newClient(t, srv, "wrong-token")

	_, err := c.Agents(context.Background())
	if err == nil {
		t.Fatal("want an error for a refused token")
	}
	for _, want := range []string{"401", "0x80072560", "/.default"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "wrong-token") {
		t.Error("the token leaked into the error")
	}
}

func TestNewClientRejectsRelativeURL(t *testing.T) {
	if _, err := NewClient("contoso.crm.dynamics.com", &staticCredential{}, nil); err == nil {
		t.Fatal("want an error for a URL without scheme")
	}
}

func TestDirectoryLookup(t *testing.T) {
	var d Directory
	if d.Loaded() {
		t.Fatal("empty directory says it is loaded")
	}
	d.Replace([]Agent{
		{ID: "b1", Name: "HR Agent", SchemaName: "cr44e_hrAgent"},
		{ID: "b2", Name: "Twin", SchemaName: "cr44e_twinA"},
		{ID: "b3", Name: "Twin", SchemaName: "cr44e_twinB"},
	})
	cases := []struct {
		name, agent, topic, wantID string
	}{
		{"schema name from the topic", "Renamed Agent", "cr44e_hrAgent.topic.Greeting", "b1"},
		{"display name, any case", "hr agent", "", "b1"},
		{"schema name as agent name", "CR44E_TWINB", "", "b3"},
		{"ambiguous display name is no match", "Twin", "", ""},
		{"ambiguous name resolved by topic", "Twin", "cr44e_twinA.topic.Escalate", "b2"},
		{"unknown agent", "Someone Else", "Greeting", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, ok := d.Lookup(c.agent, c.topic)
			if c.wantID == "" {
				if ok {
					t.Fatalf("matched %+v, want no match", a)
				}
				return
			}
			if !ok || a.ID != c.wantID {
				t.Fatalf("got %+v (%v), want id %s", a, ok, c.wantID)
			}
		})
	}
}

func TestSchemaNameOfTopic(t *testing.T) {
	for topic, want := range map[string]string{
		"cr44e_MyAgent.topic.Greeting": "cr44e_MyAgent",
		"Greeting":                     "",
		".topic.x":                     "",
		"":                             "",
	} {
		if got := SchemaNameOfTopic(topic); got != want {
			t.Errorf("SchemaNameOfTopic(%q) = %q, want %q", topic, got, want)
		}
	}
}

package dataverse

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
)

// elsewhere is a host the bearer token must never reach: it counts what
// reaches it.
func elsewhere(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"value":[]}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestAgentsNextLinkOnlyOnTheEnvironment(t *testing.T) {
	srv := newServer("tok", "env")
	defer srv.Close()
	evil, hits := elsewhere(t)
	c, _, _ := newClient(t, srv, "tok")
	// The stand-ins share httptest's certificate: the other host would be trusted.
	c.http.Transport = evil.Client().Transport
	srv.InjectBotsFault(1, fakedataverse.BotsFault{Kind: fakedataverse.BotsForeignNextLink, Location: evil.URL})

	_, err := c.Agents(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not on the environment") {
		t.Fatalf("err = %v, want the foreign next link refused", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the next link to another host was followed (%d requests there)", hits.Load())
	}
}

func TestAgentsNextLinkToItselfEndsTheRead(t *testing.T) {
	srv := newServer("tok", "env")
	defer srv.Close()
	c, _, _ := newClient(t, srv, "tok")
	srv.InjectBotsFault(1000, fakedataverse.BotsFault{Kind: fakedataverse.BotsSelfNextLink})

	done := make(chan error, 1)
	go func() { _, err := c.Agents(context.Background()); done <- err }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second): // failure guard only
		t.Fatalf("the read follows a next link to itself without end (%d requests)", srv.Requests())
	}
	if err == nil || !strings.Contains(err.Error(), "came a second time") {
		t.Fatalf("err = %v, want the loop named", err)
	}
	// The environment, then the first page, which links to itself: once each.
	if got := srv.Requests(); got != 2 {
		t.Errorf("requests = %d, want 2", got)
	}
}

func TestAgentsEndlessNextLinksStopAtThePageLimit(t *testing.T) {
	srv := newServer("tok", "env")
	defer srv.Close()
	c, _, _ := newClient(t, srv, "tok")
	srv.InjectBotsFault(maxAgentPages+10, fakedataverse.BotsFault{Kind: fakedataverse.BotsEndlessNextLink})

	done := make(chan error, 1)
	go func() { _, err := c.Agents(context.Background()); done <- err }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second): // failure guard only
		t.Fatalf("the read follows new next links without end (%d requests)", srv.Requests())
	}
	if !errors.Is(err, ErrPageLimit) {
		t.Fatalf("err = %v, want ErrPageLimit", err)
	}
	if got := srv.Requests(); got != maxAgentPages+1 {
		t.Errorf("requests = %d, want the environment and %d pages", got, maxAgentPages)
	}
}

func TestAgentsPageOverItsSizeLimit(t *testing.T) {
	srv := newServer("tok", "env")
	defer srv.Close()
	c, _, _ := newClient(t, srv, "tok")
	srv.InjectBotsFault(1, fakedataverse.BotsFault{Kind: fakedataverse.BotsHugePage})

	_, err := c.Agents(context.Background())
	if err == nil || !strings.Contains(err.Error(), "over 16777216 bytes") {
		t.Fatalf("err = %v, want the page refused for its size", err)
	}
}

func TestAgentsRetryAfterOverTheCapEndsTheRead(t *testing.T) {
	srv := newServer("tok", "env")
	defer srv.Close()
	c, _, waits := newClient(t, srv, "tok")
	srv.Throttle(1, int((MaxRetryWait + time.Minute).Seconds()))

	_, err := c.Agents(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the next read tries again") {
		t.Fatalf("err = %v, want the read ended for a Retry-After over %v", err, MaxRetryWait)
	}
	if len(*waits) != 0 {
		t.Errorf("waited %v, want no wait past the cap", *waits)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	srv := newServer("tok", "env")
	defer srv.Close()
	evil, hits := elsewhere(t)
	c, _, _ := newClient(t, srv, "tok")
	srv.InjectBotsFault(1, fakedataverse.BotsFault{Kind: fakedataverse.BotsRedirect, Location: evil.URL + "/api/data/v9.2/bots"})

	_, err := c.Agents(context.Background())
	host := strings.TrimPrefix(evil.URL, "https://")
	if err == nil || !strings.Contains(err.Error(), "307") || !strings.Contains(err.Error(), host) {
		t.Fatalf("err = %v, want the 307 and the host it points to", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the redirect was followed with the bearer token (%d requests there)", hits.Load())
	}

	// Transcripts too.
	r, _ := reader(t, srv)
	srv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultRedirect, Location: evil.URL + "/x"})
	_, err = r.Page(context.Background(), r.Client.FirstPageURL(base, nil))
	if err == nil || !strings.Contains(err.Error(), host) {
		t.Fatalf("transcripts: err = %v, want the redirect's host", err)
	}
	if hits.Load() != 0 {
		t.Fatal("transcripts: the redirect was followed")
	}
}

func TestPagingRefusesLoopsAndStopsAtItsLimit(t *testing.T) {
	c, err := NewClient("https://contoso.crm.dynamics.com", &staticCredential{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := c.NewPaging(3)
	page := func(n string) string { return "https://contoso.crm.dynamics.com/api/data/v9.2/bots?$skiptoken=" + n }
	for _, n := range []string{"1", "2", "3"} {
		if err := p.Next(page(n)); err != nil {
			t.Fatalf("page %s: %v", n, err)
		}
	}
	if err := p.Next(page("2")); err == nil || !strings.Contains(err.Error(), "came a second time") {
		t.Errorf("a link seen before: %v", err)
	}
	if err := p.Next(page("4")); !errors.Is(err, ErrPageLimit) {
		t.Errorf("past the limit: %v", err)
	}
	for _, foreign := range []string{"http://contoso.crm.dynamics.com/api", "https://contoso.crm.dynamics.com.evil.example/api", "https://evil.example/api"} {
		if err := c.NewPaging(3).Next(foreign); err == nil {
			t.Errorf("%s followed", foreign)
		}
	}
}

func TestClockOffsetFromTheDateHeader(t *testing.T) {
	srv := newServer("tok", "env")
	defer srv.Close()
	c, _, _ := newClient(t, srv, "tok")
	if _, ok := c.ClockOffset(); ok {
		t.Fatal("an offset before any answer")
	}
	srv.SetNow(time.Now().Add(-2 * time.Hour))
	if _, err := c.Agents(context.Background()); err != nil {
		t.Fatal(err)
	}
	offset, ok := c.ClockOffset()
	if !ok || offset > -2*time.Hour+5*time.Second || offset < -2*time.Hour-5*time.Second {
		t.Fatalf("offset %v (%v), want about -2h", offset, ok)
	}
}

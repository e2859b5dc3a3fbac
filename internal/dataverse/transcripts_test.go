package dataverse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakedataverse"
)

// recordingClock sleeps no time and records the waits asked for.
type recordingClock struct{ waits []time.Duration }

func (c *recordingClock) Now() time.Time { return time.Now() }
func (c *recordingClock) Sleep(ctx context.Context, d time.Duration) error {
	c.waits = append(c.waits, d)
	return ctx.Err()
}
func (c *recordingClock) NewTicker(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }

const (
	botA = "198eca5f-0000-4000-8000-00000000000a"
	botB = "198eca5f-0000-4000-8000-00000000000b"
)

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func transcriptServer(t *testing.T, n int) *fakedataverse.Server {
	t.Helper()
	srv := newServer("tok", "env")
	t.Cleanup(srv.Close)
	srv.SetNow(base.Add(time.Hour))
	for i := range n {
		bot := botA
		if i%2 == 1 {
			bot = botB
		}
		srv.AddTranscripts(fakedataverse.Transcript{
			ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Name: fmt.Sprintf("conv%d_%s", i, bot),
			Content: `{"activities":[]}`, Metadata: `{"BatchId":0}`, BotID: bot,
			ConversationStart: base, CreatedOn: base.Add(time.Duration(i/2) * time.Second),
		})
	}
	return srv
}

func reader(t *testing.T, srv *fakedataverse.Server) (*TranscriptReader, *recordingClock) {
	t.Helper()
	c, err := NewClient(srv.URL, &staticCredential{token: "tok"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	clk := &recordingClock{}
	return &TranscriptReader{Client: c, PageSize: 3, MaxPageBytes: 1 << 20, MaxAttempts: 5, MaxRetryWait: time.Minute, Clock: clk}, clk
}

func readAll(t *testing.T, r *TranscriptReader, from time.Time, agents []string) ([]TranscriptRow, error) {
	t.Helper()
	var rows []TranscriptRow
	next := r.Client.FirstPageURL(from, agents)
	for next != "" {
		page, err := r.Page(context.Background(), next)
		if err != nil {
			return rows, err
		}
		rows = append(rows, page.Rows...)
		next = page.NextLink
	}
	return rows, nil
}

func TestTranscriptsPagingInOrder(t *testing.T) {
	srv := transcriptServer(t, 10)
	r, _ := reader(t, srv)
	rows, err := readAll(t, r, base.Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	// createdon ge base+1s: rows 2..9, in createdon then id order.
	if len(rows) != 8 || rows[0].ID != "00000000-0000-4000-8000-000000000002" || rows[7].ID != "00000000-0000-4000-8000-000000000009" {
		t.Fatalf("got %d rows from %v", len(rows), rows)
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].CreatedOn.Before(rows[i-1].CreatedOn) {
			t.Fatal("rows out of createdon order")
		}
	}
	reqs := srv.TranscriptRequests()
	if len(reqs) != 3 || reqs[0].SkipToken || !reqs[1].SkipToken || reqs[0].Prefer != "odata.maxpagesize=3" {
		t.Errorf("requests %+v: want 3 pages of 3, the later ones by $skiptoken", reqs)
	}
}

func TestTranscriptsAgentFilter(t *testing.T) {
	srv := transcriptServer(t, 6)
	r, _ := reader(t, srv)
	rows, err := readAll(t, r, base, []string{botB})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("got %d rows of agent B, want 3", len(rows))
	}
	for _, row := range rows {
		if row.BotID != botB {
			t.Errorf("row of %s", row.BotID)
		}
	}
}

func TestTranscriptsRetriesThrottlingAndServerErrors(t *testing.T) {
	srv := transcriptServer(t, 4)
	r, clk := reader(t, srv)
	srv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultThrottle, RetryAfter: 7 * time.Second})
	srv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultUnavailable})
	srv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultGatewayTimeout})
	srv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultCutBody})
	rows, err := readAll(t, r, base, nil)
	if err != nil || len(rows) != 4 {
		t.Fatalf("rows %d, err %v", len(rows), err)
	}
	if len(clk.waits) != 4 || clk.waits[0] != 7*time.Second || clk.waits[1] != time.Second || clk.waits[2] != 2*time.Second {
		t.Errorf("waits %v: want the full Retry-After (7s), then backoff 1s, 2s, 4s", clk.waits)
	}
}

func TestTranscriptsRetryAfterOverTheCap(t *testing.T) {
	srv := transcriptServer(t, 4)
	r, clk := reader(t, srv)
	srv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultThrottle, RetryAfter: 10 * time.Minute})
	_, err := readAll(t, r, base, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests || len(clk.waits) != 0 {
		t.Fatalf("err %v, waits %v: want a 429 error without waiting 10m", err, clk.waits)
	}
	if !strings.Contains(err.Error(), "0x80072322") {
		t.Errorf("error %q lacks Dataverse's code", err)
	}
}

func TestTranscriptsForbiddenSaysWhatToGrant(t *testing.T) {
	srv := transcriptServer(t, 1)
	r, clk := reader(t, srv)
	srv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultForbidden})
	_, err := readAll(t, r, base, nil)
	if err == nil || !strings.Contains(err.Error(), "conversationtranscript") || !strings.Contains(err.Error(), "403") || len(clk.waits) != 0 {
		t.Fatalf("err %v (waits %v): want an unretried 403 naming the table", err, clk.waits)
	}
}

func TestTranscriptsRefusesForeignNextLink(t *testing.T) {
	srv := transcriptServer(t, 5)
	r, _ := reader(t, srv)
	srv.InjectTranscriptFault(1, fakedataverse.TranscriptFault{Kind: fakedataverse.FaultForeignNextLink})
	_, err := readAll(t, r, base, nil)
	if err == nil || !strings.Contains(err.Error(), "evil.example.com") || strings.Contains(err.Error(), "skiptoken") {
		t.Fatalf("err %v: want a refusal naming the host, without the query", err)
	}
	if n := len(srv.TranscriptRequests()); n != 1 {
		t.Errorf("%d requests: the foreign link was followed", n)
	}
}

func TestTranscriptsPageTooLarge(t *testing.T) {
	srv := transcriptServer(t, 4)
	r, _ := reader(t, srv)
	r.MaxPageBytes = 200
	_, err := readAll(t, r, base, nil)
	if !errors.Is(err, ErrPageTooLarge) || !strings.Contains(err.Error(), "max_page_size") {
		t.Fatalf("err %v: want ErrPageTooLarge naming max_page_size", err)
	}
}

func TestTranscriptsLateRowBehindTheReader(t *testing.T) {
	srv := transcriptServer(t, 2)
	r, _ := reader(t, srv)
	// Created before the others, committed (visible) only later.
	srv.AddTranscripts(fakedataverse.Transcript{ID: "00000000-0000-4000-8000-0000000000ff", Name: "late_" + botA, Content: `{"activities":[]}`,
		BotID: botA, CreatedOn: base.Add(-time.Minute), VisibleAt: base.Add(2 * time.Hour)})
	rows, _ := readAll(t, r, base.Add(-5*time.Minute), nil)
	if len(rows) != 2 {
		t.Fatalf("%d rows before the late row is visible, want 2", len(rows))
	}
	srv.Advance(2 * time.Hour)
	rows, _ = readAll(t, r, base.Add(-5*time.Minute), nil)
	if len(rows) != 3 || rows[0].Name != "late_"+botA {
		t.Fatalf("after it is visible: %d rows, first %q", len(rows), rows[0].Name)
	}
}

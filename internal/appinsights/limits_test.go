package appinsights_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/appinsights"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/azureauth"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
)

// hugeCellAnswer is an answer whose first row's customDimensions is size
// bytes long, made as it is read: nothing holds it whole.
type hugeCellAnswer struct {
	head, tail []byte
	size, read int64
}

func newHugeCellAnswer(size int64) *hugeCellAnswer {
	head := `{"tables":[{"name":"PrimaryResult","columns":[{"name":"timestamp","type":"datetime"},{"name":"name","type":"string"},` +
		`{"name":"itemId","type":"string"},{"name":"customDimensions","type":"dynamic"},{"name":"cloud_RoleInstance","type":"string"},` +
		`{"name":"ingest","type":"datetime"}],"rows":[["2026-02-18T01:24:36Z","BotMessageReceived","big","`
	return &hugeCellAnswer{head: []byte(head), tail: []byte(`","HR Agent","2026-02-18T01:25:10Z"]]}]}`), size: size}
}

func (h *hugeCellAnswer) Read(p []byte) (int, error) {
	total := int64(len(h.head)) + h.size + int64(len(h.tail))
	if h.read >= total {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && h.read < total {
		switch pos := h.read; {
		case pos < int64(len(h.head)):
			c := copy(p[n:], h.head[pos:])
			n, h.read = n+c, h.read+int64(c)
		case pos < int64(len(h.head))+h.size:
			c := int(min(int64(len(p)-n), int64(len(h.head))+h.size-pos))
			for i := range c {
				p[n+i] = 'a'
			}
			n, h.read = n+c, h.read+int64(c)
		default:
			c := copy(p[n:], h.tail[pos-int64(len(h.head))-h.size:])
			n, h.read = n+c, h.read+int64(c)
		}
	}
	return n, nil
}

// A cell past what a row's int32 offsets address used to overflow them and
// panic; it is an error once the cell passes the limit, read no further.
func TestHugeCellIsAnErrorNotAPanic(t *testing.T) {
	answer := newHugeCellAnswer(3 << 30)
	const limit = 16 << 20
	rows := 0
	_, err := appinsights.DecodeLimited(answer, limit, func(*appinsights.Row) error { rows++; return nil })
	if !errors.Is(err, appinsights.ErrValueTooLarge) {
		t.Fatalf("err = %v, want ErrValueTooLarge", err)
	}
	if rows != 0 {
		t.Errorf("%d rows passed on", rows)
	}
	// The limit plus at most a read buffer or two: the cell was not read on.
	if answer.read > limit+(2<<20) {
		t.Errorf("read %d bytes of a cell limited to %d", answer.read, limit)
	}
}

func TestDecodeLimitedAcceptsValuesUpToTheLimit(t *testing.T) {
	answer := newHugeCellAnswer(1 << 20)
	var got int
	_, err := appinsights.DecodeLimited(answer, 1<<20, func(r *appinsights.Row) error { got = len(r.Bytes(r.Dimensions)); return nil })
	if err != nil || got != 1<<20 {
		t.Fatalf("a cell of exactly the limit: %d bytes, %v", got, err)
	}
}

// bigRows are rows of about size bytes each, one second apart.
func bigRows(n, size int) []fakeappinsights.Row {
	rows := make([]fakeappinsights.Row, n)
	for i := range rows {
		rows[i] = fakeappinsights.Row{
			Timestamp: t0.Add(-time.Hour), IngestionTime: t0.Add(-time.Hour + time.Duration(i)*time.Second),
			Name: "BotMessageReceived", ItemID: fmt.Sprintf("r%03d", i), RoleInstance: "A",
			CustomDimensions: `{"conversationId":"c","text":"` + strings.Repeat("x", size) + `"}`,
		}
	}
	return rows
}

func limitedClient(t *testing.T, srv *fakeappinsights.Server, maxResponse int64, maxCell int) *appinsights.Client {
	t.Helper()
	c, err := appinsights.NewClient(appinsights.Settings{
		Endpoint: srv.URL(), ApplicationID: appID, HTTP: http.DefaultClient,
		Auth:             &azureauth.Config{Type: azureauth.APIKey, APIKey: apiKey},
		MaxResponseBytes: maxResponse, MaxCellBytes: maxCell,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAnswersOverTheirLimits(t *testing.T) {
	q := appinsights.Query{EventNames: []string{"BotMessageReceived"}, Lower: t0.Add(-2 * time.Hour), Upper: t0, Limit: 1000}
	t.Run("response", func(t *testing.T) {
		srv, _ := standIn(t, apiKey, bigRows(200, 1000)...)
		c := limitedClient(t, srv, 64<<10, 32<<10)
		var ids []string
		res, err := c.Query(context.Background(), q, func(r *appinsights.Row) { ids = append(ids, string(r.Bytes(r.ItemID))) })
		what, ok := appinsights.TooLarge(err)
		if !ok || what != appinsights.TooLargeResponse || appinsights.IsRetryable(err) {
			t.Fatalf("err = %v (%q), want a response over its limit, not retried as is", err, what)
		}
		// The rows passed on are the answer's first ones, complete and in order.
		if len(ids) == 0 || len(ids) >= 200 || res.Rows != len(ids) {
			t.Fatalf("%d rows passed on (%d counted)", len(ids), res.Rows)
		}
		for i, id := range ids {
			if id != fmt.Sprintf("r%03d", i) {
				t.Fatalf("row %d is %s", i, id)
			}
		}
	})
	t.Run("cell", func(t *testing.T) {
		rows := bigRows(3, 100)
		rows[2].CustomDimensions = `{"conversationId":"c","text":"` + strings.Repeat("y", 100<<10) + `"}`
		srv, _ := standIn(t, apiKey, rows...)
		c := limitedClient(t, srv, 1<<20, 64<<10)
		n := 0
		_, err := c.Query(context.Background(), q, func(*appinsights.Row) { n++ })
		if what, ok := appinsights.TooLarge(err); !ok || what != appinsights.TooLargeCell || !strings.Contains(err.Error(), "65536") {
			t.Fatalf("err = %v, want a cell over 65536 bytes", err)
		}
		if n != 2 {
			t.Errorf("%d rows before the big cell passed on, want 2", n)
		}
	})
}

func TestAnswerCarriesTheServiceClock(t *testing.T) {
	_, c := standIn(t, apiKey, message("a", t0.Add(-time.Minute), "A"))
	res, err := c.Query(context.Background(), appinsights.Query{EventNames: []string{"BotMessageReceived"}, Lower: t0.Add(-time.Hour), Upper: t0, Limit: 10}, func(*appinsights.Row) {})
	if err != nil || !res.ServerTime.Equal(t0) {
		t.Fatalf("server time %v (%v), want the stand-in's %v", res.ServerTime, err, t0)
	}
}

// A 307 keeps the method and the body: following it would send the query
// and the x-api-key header to wherever it points.
func TestRedirectIsAnErrorNotFollowed(t *testing.T) {
	var hits atomic.Int32
	var leaked atomic.Value
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		leaked.Store(r.Header.Get("x-api-key") + " " + string(body))
	}))
	defer evil.Close()
	srv, c := standIn(t, apiKey, message("a", t0.Add(-time.Minute), "A"))
	srv.InjectFault(1, fakeappinsights.Fault{Kind: fakeappinsights.Redirect, Location: evil.URL + "/v1/apps/" + appID + "/query"})

	_, err := c.Query(context.Background(), appinsights.Query{EventNames: []string{"BotMessageReceived"}, Lower: t0.Add(-time.Hour), Upper: t0, Limit: 10}, func(*appinsights.Row) {})
	if hits.Load() != 0 {
		t.Fatalf("the redirect was followed: %v", leaked.Load())
	}
	host := strings.TrimPrefix(evil.URL, "http://")
	if err == nil || appinsights.IsRetryable(err) || !strings.Contains(err.Error(), "307") || !strings.Contains(err.Error(), host) {
		t.Fatalf("err = %v, want a 307 naming %s, not retried", err, host)
	}
}

func TestCheckLiteral(t *testing.T) {
	for _, ok := range []string{"HR Agent", `Ops "Night" Agent\1`, "Agent für Personal", "社内ヘルプ", "BotMessageReceived"} {
		if err := appinsights.CheckLiteral("agents[0]", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for value, want := range map[string]string{
		"HR\nAgent":          "U+000A at byte 2",
		"HR\r":               "U+000D at byte 2",
		"a\x00b":             "U+0000 at byte 1",
		"x\u2028y":           "U+2028 at byte 1",
		"admin\u202egnp.exe": "U+202E at byte 5",
		"ok\u0085":           "U+0085 at byte 2",
		"bad\xffutf8":        "invalid UTF-8 byte at byte 3",
	} {
		err := appinsights.CheckLiteral("agents[2]", value)
		if err == nil || !strings.HasPrefix(err.Error(), "agents[2] ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want the key and %q", value, err, want)
		}
	}
}

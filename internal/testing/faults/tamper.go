package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/localtls"
)

// Tamper is a reverse proxy between the collector and the Application
// Insights stand-in that corrupts answers in the ways the stand-in itself
// does not: bodies that are not JSON at all, tables missing, cells of the
// wrong type, rows with event names nobody asked for. The stand-in speaks the
// API correctly; Tamper is the broken proxy or API change a deployment meets.
type Tamper struct {
	srv *httptest.Server

	mu     sync.Mutex
	bodies []BodyFault               // replace the next answers, in order
	cells  map[string]map[string]any // item id -> column -> value, on every answer
	served int                       // answers tampered with
}

// BodyFault replaces a whole 200 answer.
type BodyFault int

const (
	// NotJSON: an HTML page, as a misconfigured proxy or gateway sends.
	NotJSON BodyFault = iota + 1
	// EmptyTables: {"tables":[]}, no PrimaryResult at all.
	EmptyTables
	// EmptyBody: a 200 with nothing in it.
	EmptyBody
)

func (f BodyFault) body() []byte {
	switch f {
	case NotJSON:
		return []byte("<html><head><title>502 Bad Gateway</title></head><body>upstream reset</body></html>\n")
	case EmptyTables:
		return []byte(`{"tables":[]}`)
	default:
		return nil
	}
}

// NewTamper proxies to target. With tls set it serves HTTPS with that
// bundle and trusts it toward the target, so the collector's CA file works
// for both.
func NewTamper(target string, tls *localtls.Bundle) (*Tamper, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("tamper: target %q: %w", target, err)
	}
	t := &Tamper{cells: map[string]map[string]any{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if tls != nil {
		transport.TLSClientConfig = tls.ClientTLSConfig()
	}
	proxy.Transport = transport
	proxy.ModifyResponse = t.modify
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tamper: listen: %w", err)
	}
	t.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: proxy}}
	if tls != nil {
		t.srv.TLS = tls.ServerTLSConfig()
		t.srv.StartTLS()
	} else {
		t.srv.Start()
	}
	return t, nil
}

// URL is the endpoint to give the collector instead of the stand-in's.
func (t *Tamper) URL() string { return t.srv.URL }

// Close stops the proxy.
func (t *Tamper) Close() { t.srv.Close() }

// ReplaceNext replaces the next n successful answers with f.
func (t *Tamper) ReplaceNext(n int, f BodyFault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for range n {
		t.bodies = append(t.bodies, f)
	}
}

// SetCell makes the row with this item id carry value in column on every
// answer it is part of (a number where a datetime belongs, an object where a
// string does, another event name, ...).
func (t *Tamper) SetCell(itemID, column string, value any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cells[itemID] == nil {
		t.cells[itemID] = map[string]any{}
	}
	t.cells[itemID][column] = value
}

// Tampered is how many answers were changed so far.
func (t *Tamper) Tampered() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.served
}

// PendingBodies is how many ReplaceNext faults are still to be served.
func (t *Tamper) PendingBodies() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.bodies)
}

type table struct {
	Name    string              `json:"name"`
	Columns []column            `json:"columns"`
	Rows    [][]json.RawMessage `json:"rows"`
}

type column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func (t *Tamper) modify(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.bodies) > 0 {
		f := t.bodies[0]
		t.bodies = t.bodies[1:]
		t.served++
		resp.Body.Close()
		if f == NotJSON {
			resp.Header.Set("Content-Type", "text/html")
		}
		return replaceBody(resp, f.body())
	}
	if len(t.cells) == 0 {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var answer map[string]json.RawMessage
	var tables []table
	if json.Unmarshal(body, &answer) != nil || json.Unmarshal(answer["tables"], &tables) != nil {
		return replaceBody(resp, body) // not ours to judge: pass it on as it came
	}
	changed := false
	for _, tb := range tables {
		idx := map[string]int{}
		for i, c := range tb.Columns {
			idx[c.Name] = i
		}
		item, ok := idx["itemId"]
		if !ok {
			continue
		}
		for _, row := range tb.Rows {
			var id string
			if item >= len(row) || json.Unmarshal(row[item], &id) != nil {
				continue
			}
			for col, v := range t.cells[id] {
				if i, ok := idx[col]; ok {
					row[i], _ = json.Marshal(v)
					changed = true
				}
			}
		}
	}
	if !changed {
		return replaceBody(resp, body)
	}
	t.served++
	answer["tables"], _ = json.Marshal(tables)
	out, err := json.Marshal(answer)
	if err != nil {
		return err
	}
	return replaceBody(resp, out)
}

func replaceBody(resp *http.Response, body []byte) error {
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

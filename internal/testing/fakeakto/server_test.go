package fakeakto

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

const token = "stand-in-token" // #nosec G101 -- a test fixture

func post(t *testing.T, s *Server, path, contentType, auth, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp, string(answer)
}

func TestServiceRules(t *testing.T) {
	s := New(Options{Token: token, MaxBodyBytes: 4096, MaxStringBytes: 100})
	defer s.Close()
	good := `{"path":"/a","method":"POST","tag":"{\"bot-name\":\"x\"}"}`
	long := `{"requestPayload":"` + strings.Repeat("x", 101) + `"}`
	for _, tc := range []struct {
		name, path, contentType, auth, body string
		want                                int
	}{
		{"accepted", IngestPath, "application/json", token, `{"batchData":[` + good + `]}`, 200},
		{"charset parameter is fine", IngestPath, "application/json; charset=utf-8", token, `{"batchData":[]}`, 200},
		{"another path", "/api/ingest", "application/json", token, `{"batchData":[]}`, 404},
		{"no token", IngestPath, "application/json", "", `{"batchData":[` + good + `]}`, 401},
		{"Bearer prefix", IngestPath, "application/json", "Bearer " + token, `{"batchData":[` + good + `]}`, 401},
		{"wrong content type", IngestPath, "text/plain", token, `{"batchData":[` + good + `]}`, 422},
		{"not JSON", IngestPath, "application/json", token, `{"batchData":[`, 422},
		{"no batchData", IngestPath, "application/json", token, `{"records":[]}`, 422},
		{"record not an object", IngestPath, "application/json", token, `{"batchData":[` + good + `,"x"]}`, 422},
		{"field not a string", IngestPath, "application/json", token, `{"batchData":[` + good + `,{"time":1700000000}]}`, 422},
		{"string over the limit", IngestPath, "application/json", token, `{"batchData":[` + good + `,` + long + `]}`, 422},
		{"body over the limit", IngestPath, "application/json", token, `{"batchData":[` + strings.Repeat(good+",", 4096/len(good)) + good + `]}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Records())
			resp, answer := post(t, s, tc.path, tc.contentType, tc.auth, tc.body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, answer, tc.want)
			}
			got := len(s.Records()) - before
			switch tc.want {
			case 200:
				if answer != `{"success":false}` {
					t.Errorf("answer %q: the real service never sets success", answer)
				}
				if want := strings.Count(tc.body, `"path"`); got != want {
					t.Errorf("%d records kept, want %d", got, want)
				}
			case 422:
				if answer != `{"actionErrors":[]}` {
					t.Errorf("answer %q", answer)
				}
				fallthrough
			default:
				if got != 0 {
					t.Errorf("%d records of a refused batch were kept", got)
				}
			}
		})
	}
	if recs := s.Records(); len(recs) != 1 || string(recs[0]) != good {
		t.Fatalf("records %q, want the one accepted record as sent", recs)
	}
}

func TestFaultsAndRefusals(t *testing.T) {
	var printed [][]byte
	s := New(Options{OnAccept: func(r []byte) { printed = append(printed, r) }})
	defer s.Close()
	batch := `{"batchData":[{"turn":"1"},{"turn":"2"}]}`

	s.Inject(Fault{Status: 503, Count: 2, Skip: 1, RetryAfter: 1500 * time.Millisecond})
	var statuses []int
	for range 4 {
		resp, _ := post(t, s, IngestPath, "application/json", "", batch)
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q, want 2 (seconds, rounded up)", resp.Header.Get("Retry-After"))
		}
	}
	if want := []int{200, 503, 503, 200}; !slices.Equal(statuses, want) {
		t.Fatalf("statuses %v, want %v", statuses, want)
	}
	if len(s.Records()) != 4 || len(printed) != 4 {
		t.Fatalf("%d records kept, %d passed to OnAccept; want 4 (two accepted batches)", len(s.Records()), len(printed))
	}

	s.SetRefuse(func(r []byte) bool { return bytes.Contains(r, []byte(`"2"`)) })
	if resp, _ := post(t, s, IngestPath, "application/json", "", batch); resp.StatusCode != 422 {
		t.Fatalf("a batch with the refused record: %d, want 422", resp.StatusCode)
	}
	reqs := s.Requests()
	if last := reqs[len(reqs)-1]; string(last.Refused) != `{"turn":"2"}` || last.Records != 2 {
		t.Fatalf("last request %+v: want the refused record named", last)
	}
	if resp, _ := post(t, s, IngestPath, "application/json", "", `{"batchData":[{"turn":"1"}]}`); resp.StatusCode != 200 {
		t.Fatalf("a batch without it: %d, want 200", resp.StatusCode)
	}

	s.SetToken("rotated")
	if resp, _ := post(t, s, IngestPath, "application/json", "", batch); resp.StatusCode != 401 {
		t.Fatalf("after the token changed: %d, want 401", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.WaitUntil(ctx, func(records [][]byte, _ []Request) bool { return len(records) == 5 }); err != nil {
		t.Fatal(err)
	}
}

func TestDiscardStillAuthenticates(t *testing.T) {
	s := New(Options{Token: token, Discard: true})
	defer s.Close()
	if resp, _ := post(t, s, IngestPath, "application/json", "wrong", `{"batchData":[{"a":1}]}`); resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := post(t, s, IngestPath, "application/json", token, `{"batchData":[{"a":1}]}`); resp.StatusCode != 200 {
		t.Fatalf("discarding: %d, want 200", resp.StatusCode)
	}
	if len(s.Records()) != 0 {
		t.Fatal("discarding stand-in kept records")
	}
}

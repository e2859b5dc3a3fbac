package workload

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// aktoRecord encodes a turn the way the reference describes, as a correct
// processor would; tests then break it in one way at a time.
func aktoRecord(t *testing.T, turn Turn, turnID string) []byte {
	t.Helper()
	str := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	type message struct {
		Text       string `json:"text"`
		ActivityID string `json:"activityId"`
	}
	req, resp, at, status := "", "", "", "200"
	if !turn.Greeting() {
		req = str(map[string]string{"text": turn.RequestText, "activityId": turn.RequestActivityID, "channelId": turn.Channel})
		at = strconv.FormatInt(turn.RequestTime.Unix(), 10)
	}
	if len(turn.Replies) > 0 {
		var msgs []message
		for _, r := range turn.Replies {
			msgs = append(msgs, message{Text: r})
		}
		resp = str(map[string]any{"text": strings.Join(turn.Replies, "\n"), "messages": msgs})
	}
	if turn.Failed {
		status = "500"
	}
	bot := SanitizeAgentName(turn.Agent, false)
	return []byte(str(map[string]string{
		"path":            "/copilot/conversation/" + url.PathEscape(turn.ConversationID) + "/message/" + strconv.Itoa(turn.Index),
		"method":          "POST",
		"requestHeaders":  str(map[string]string{"host": bot + ".copilot-studio"}),
		"responseHeaders": `{"content-type":"application/json"}`,
		"requestPayload":  req,
		"responsePayload": resp,
		"time":            at,
		"statusCode":      status,
		"type":            "HTTP/1.1",
		"status":          "OK",
		"tag":             str(map[string]string{"source": "COPILOT_STUDIO", "bot-name": bot, "channel": turn.Channel, "turn-id": turnID}),
		"akto_account_id": "1000000",
		"akto_vxlan_id":   "0",
		"is_pending":      "false",
		"source":          "MIRRORING",
	}))
}

func recordsFor(t *testing.T, turns []Turn) [][]byte {
	var out [][]byte
	for i, turn := range turns {
		out = append(out, aktoRecord(t, turn, "t"+strconv.Itoa(i)))
	}
	return out
}

func TestVerifierAcceptsAPerfectDelivery(t *testing.T) {
	w := Generate(DefaultConfig(2, 400))
	r := Verify(w.Turns, recordsFor(t, w.Turns))
	if err := r.Err(false); err != nil {
		t.Fatal(err)
	}
	if r.Delivered != len(w.Turns) || r.Records != len(w.Turns) {
		t.Fatalf("%+v", r)
	}
}

func TestVerifierCountsEachKindOfFault(t *testing.T) {
	w := Generate(DefaultConfig(2, 200))
	turns := w.Turns
	// Pick a multi-reply request turn, a greeting, and two answered request turns.
	var multi, greeting, a, b = -1, -1, -1, -1
	for i, turn := range turns {
		switch {
		case turn.Greeting() && greeting < 0:
			greeting = i
		case !turn.Greeting() && len(turn.Replies) > 1 && multi < 0:
			multi = i
		case !turn.Greeting() && len(turn.Replies) == 1 && a < 0:
			a = i
		case !turn.Greeting() && len(turn.Replies) == 1 && b < 0 && turns[i].Replies[0] != turns[a].Replies[0]:
			b = i
		}
	}
	if multi < 0 || greeting < 0 || a < 0 || b < 0 {
		t.Fatal("workload lacks the turns this test needs")
	}
	records := recordsFor(t, turns)

	cases := []struct {
		name   string
		mutate func([][]byte) [][]byte
		want   func(Report) bool
		allow  bool // Err(true) passes
	}{
		{"lost", func(rs [][]byte) [][]byte { return append(rs[:multi:multi], rs[multi+1:]...) },
			func(r Report) bool { return r.Lost == 1 && r.Delivered == len(turns)-1 }, false},
		{"repeat after a crash", func(rs [][]byte) [][]byte { return append(rs, rs[greeting], rs[multi]) },
			func(r Report) bool { return r.Duplicated == 2 && r.RepeatsWithNewTurnID == 0 }, true},
		{"repeat under a new id", func(rs [][]byte) [][]byte {
			return append(rs, aktoRecord(t, turns[multi], "another"))
		}, func(r Report) bool { return r.Duplicated == 1 && r.RepeatsWithNewTurnID == 1 }, false},
		{"replies swapped between turns", func(rs [][]byte) [][]byte {
			ta, tb := turns[a], turns[b]
			ta.Replies, tb.Replies = tb.Replies, ta.Replies
			rs[a], rs[b] = aktoRecord(t, ta, "t"), aktoRecord(t, tb, "u")
			return rs
		}, func(r Report) bool { return r.Wrong == 2 && r.Delivered == len(turns) }, false},
		{"replies out of order", func(rs [][]byte) [][]byte {
			tm := turns[multi]
			tm.Replies = []string{tm.Replies[1], tm.Replies[0]}
			rs[multi] = aktoRecord(t, tm, "t")
			return rs
		}, func(r Report) bool { return r.Wrong == 1 }, false},
		{"a reply split off into its own record", func(rs [][]byte) [][]byte {
			tm := turns[multi]
			rest := Turn{ConversationID: tm.ConversationID, Agent: tm.Agent, Channel: tm.Channel, Replies: tm.Replies[1:]}
			tm.Replies = tm.Replies[:1]
			rs[multi] = aktoRecord(t, tm, "t")
			return append(rs, aktoRecord(t, rest, "split"))
		}, func(r Report) bool { return r.Wrong == 1 && r.Unexpected == 1 }, false},
		{"failed turn reported as fine", func(rs [][]byte) [][]byte {
			tm := turns[a]
			tm.Failed = !tm.Failed
			rs[a] = aktoRecord(t, tm, "t")
			return rs
		}, func(r Report) bool { return r.Wrong == 1 }, false},
		{"wrong agent and channel", func(rs [][]byte) [][]byte {
			tm := turns[a]
			tm.Agent, tm.Channel = "Somebody Else", "email"
			rs[a] = aktoRecord(t, tm, "t")
			return rs
		}, func(r Report) bool { return r.Wrong == 1 }, false},
		{"not a record", func(rs [][]byte) [][]byte { return append(rs, []byte("{not json")) },
			func(r Report) bool { return r.Undecodable == 1 && r.Unexpected == 1 && r.Lost == 0 }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := make([][]byte, len(records))
			copy(rs, records)
			r := Verify(turns, c.mutate(rs))
			if !c.want(r) {
				t.Fatalf("unexpected tally: %v", r)
			}
			if r.Err(false) == nil {
				t.Fatal("Err(false) accepted a faulty delivery")
			}
			if (r.Err(true) == nil) != c.allow {
				t.Fatalf("Err(true) = %v, want accepted=%t", r.Err(true), c.allow)
			}
		})
	}
}

func TestVerifierOptionalAndIgnored(t *testing.T) {
	w := Generate(DefaultConfig(9, 30))
	main, late := w.Turns[:20], w.Turns[20:]
	var bad string
	for _, turn := range main {
		if turn.ConversationID != main[0].ConversationID {
			bad = turn.ConversationID
			break
		}
	}
	v := NewVerifier(main)
	v.Optional(late)
	v.Ignore(bad)
	for i, rec := range recordsFor(t, w.Turns) {
		if i != 20 { // one optional turn stays away
			v.Add(rec)
		}
	}
	r := v.Report()
	ignored := 0
	for _, turn := range main {
		if turn.ConversationID == bad {
			ignored++
		}
	}
	if r.Expected != 20 || r.Lost != ignored || r.OptionalDelivered != len(late)-1 || r.Ignored != ignored || r.Unexpected != 0 {
		t.Fatalf("ignoring %d turns: %v", ignored, r)
	}
	if got := v.IgnoredRecords(); len(got) != ignored || got[0].ConversationID != bad {
		t.Fatalf("ignored records %+v", got)
	}
}

func TestVerifierReadsEscapedIDsAndReplacedUTF8(t *testing.T) {
	turn := Turn{
		ConversationID: "19:abc/def@thread.v2;messageid=1700000000000", Agent: "Café Orders Bot", Channel: "msteams",
		RequestText: "bad \xff\xfe bytes", RequestActivityID: "19:abc|0000001", Replies: []string{"ok \xc3"},
	}
	// json.Marshal turns invalid bytes into U+FFFD, as any JSON encoder on
	// the path will.
	r := Verify([]Turn{turn}, [][]byte{aktoRecord(t, turn, "x")})
	if err := r.Err(false); err != nil {
		t.Fatal(err)
	}
}

func TestSanitizeAgentName(t *testing.T) {
	for in, want := range map[string]string{
		"HR Agent": "hr-agent", "Contoso Travel & Expenses": "contoso-travel-expenses", "  --X__y-- ": "x-y", "Café Orders Bot": "café-orders-bot",
	} {
		if got := SanitizeAgentName(in, false); got != want {
			t.Errorf("SanitizeAgentName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := SanitizeAgentName("Café Orders Bot", true); got != "caf-orders-bot" {
		t.Errorf("ASCII reading gave %q", got)
	}
}

package cardmaskprocessor

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
)

func TestMaskCardNumbers(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// Test numbers of each network (they pass the Luhn check).
		{"4111111111111111", "[card-number]"},
		{"visa 4111 1111 1111 1111, exp 12/28", "visa [card-number], exp 12/28"},
		{"4222222222222", "[card-number]"},                       // Visa, 13 digits
		{"5555-5555-5555-4444 CVV 123", "[card-number] CVV 123"}, // Mastercard
		{"2223 0031 2200 3222", "[card-number]"},                 // Mastercard 2-series
		{"amex 3782 822463 10005.", "amex [card-number]."},
		{"diners 3056 930902 5904", "diners [card-number]"},
		{"jcb 3530111333300000", "jcb [card-number]"},
		{"discover 6011111111111117", "discover [card-number]"},
		{"unionpay 6200000000000005", "unionpay [card-number]"},
		{`{"pan":"6011111111111117","exp":"0928"}`, `{"pan":"[card-number]","exp":"0928"}`},
		{`{"pan":6011111111111117}`, `{"pan":[card-number]}`},
		{"card:4111111111111111", "card:[card-number]"},
		{"(4111111111111111)", "([card-number])"},
		// A card and its code, two cards, a number before a card.
		{"4111 1111 1111 1111 123", "[card-number] 123"},
		{"4111 1111 1111 1111 5500 0000 0000 0004", "[card-number] [card-number]"},
		{"order 12 4111 1111 1111 1111", "order 12 [card-number]"},
		{"4111111111111111 and 5555555555554444", "[card-number] and [card-number]"},
		// Multi-byte text around it.
		{"Karte: 4111 1111 1111 1111 – danke", "Karte: [card-number] – danke"},
		{"カード4111111111111111です", "カード[card-number]です"},

		// Not card numbers.
		{"4111 1111 1111 1112", "4111 1111 1111 1112"},   // Luhn fails
		{"0000000000000000", "0000000000000000"},         // no network starts with 0
		{"1700000000001", "1700000000001"},               // epoch milliseconds
		{"9780306406157", "9780306406157"},               // ISBN
		{"411111111111111", "411111111111111"},           // Visa has no 15-digit numbers
		{"41111111111111111111", "41111111111111111111"}, // 20 digits
		{"3.4111111111111111", "3.4111111111111111"},     // a decimal
		{"4111111111111111.5", "4111111111111111.5"},
		{"1,4111111111111111", "1,4111111111111111"},
		{"x4111111111111111", "x4111111111111111"}, // part of a word
		{"4111111111111111x", "4111111111111111x"},
		{"_4111111111111111", "_4111111111111111"},
		{"DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00"}, // IBAN
		{"55 12 34 56 78 90 12 34", "55 12 34 56 78 90 12 34"},         // small numbers
		{"5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a69", "5f1c0a2e-7c1e-4a0e-9f7e-1f2d3c4b5a69"},
		{"+1 425 555 0100", "+1 425 555 0100"},
		{"", ""},
		{"no digits at all", "no digits at all"},
		{"4111  1111 1111 1111", "4111  1111 1111 1111"}, // two spaces: four numbers
	} {
		got, changed := maskCardNumbers(c.in, DefaultMarker)
		if got != c.want {
			t.Errorf("maskCardNumbers(%q) = %q, want %q", c.in, got, c.want)
		}
		if changed != (c.in != c.want) {
			t.Errorf("maskCardNumbers(%q): changed = %v", c.in, changed)
		}
	}
}

func TestLuhn(t *testing.T) {
	for number, want := range map[string]bool{
		"79927398713":      true, // the textbook example
		"79927398710":      false,
		"4111111111111111": true,
		"4111111111111112": false,
		"378282246310005":  true,
		"0":                true,
		"18":               true,
		"19":               false,
	} {
		if got := luhnValid([]byte(number)); got != want {
			t.Errorf("luhnValid(%s) = %v, want %v", number, got, want)
		}
	}
}

// TestProcessorMasksBodyAndAttributes: the body and every attribute but the
// ignored ones, nested values too, through the factory as the collector
// builds it.
func TestProcessorMasksBodyAndAttributes(t *testing.T) {
	factory := NewFactory()
	cfg := factory.CreateDefaultConfig().(*Config)
	cfg.IgnoredKeys = []string{"copilotstudio.activity.id"}
	sink := new(consumertest.LogsSink)
	proc, err := factory.CreateLogs(context.Background(), processortest.NewNopSettings(factory.Type()), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proc.Shutdown(context.Background()) }()

	logs := plog.NewLogs()
	rec := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	rec.Body().SetStr("pay with 4111 1111 1111 1111")
	attrs := rec.Attributes()
	attrs.PutStr("gen_ai.tool.call.arguments", `{"card":"5555555555554444"}`)
	attrs.PutStr("copilotstudio.activity.id", "4111111111111111")
	attrs.PutInt("copilotstudio.step.duration_ms", 4111111111111111)
	nested := attrs.PutEmptyMap("nested")
	nested.PutStr("text", "6011111111111117")
	nested.PutEmptySlice("list").AppendEmpty().SetStr("378282246310005")

	if err := proc.ConsumeLogs(context.Background(), logs); err != nil {
		t.Fatal(err)
	}
	got := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	want := map[string]any{
		"gen_ai.tool.call.arguments":     `{"card":"[card-number]"}`,
		"copilotstudio.activity.id":      "4111111111111111",
		"copilotstudio.step.duration_ms": int64(4111111111111111), // not text
		"nested": map[string]any{
			"text": "[card-number]",
			"list": []any{"[card-number]"},
		},
	}
	if b := got.Body().Str(); b != "pay with [card-number]" {
		t.Errorf("body = %q", b)
	}
	for k, w := range want {
		v, ok := got.Attributes().Get(k)
		if !ok {
			t.Errorf("attribute %s missing", k)
			continue
		}
		if gotRaw := v.AsRaw(); !equalRaw(gotRaw, w) {
			t.Errorf("attribute %s = %#v, want %#v", k, gotRaw, w)
		}
	}
}

func equalRaw(a, b any) bool {
	va, vb := pcommon.NewValueEmpty(), pcommon.NewValueEmpty()
	if va.FromRaw(a) != nil || vb.FromRaw(b) != nil {
		return false
	}
	return va.Equal(vb)
}

func TestConfigValidate(t *testing.T) {
	if err := createDefaultConfig().(*Config).Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
	bad := &Config{Marker: "", IgnoredKeys: []string{"ok", ""}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("empty marker and empty ignored key accepted")
	}
	for _, want := range []string{"marker: must not be empty", "ignored_keys[1]: empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := (&Config{Marker: "[card 1]"}).Validate(); err == nil || !strings.Contains(err.Error(), "has digits") {
		t.Errorf("marker with a digit: %v", err)
	}
}

package workload

import (
	"unicode/utf8"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/fakeappinsights"
)

// Row is one customEvents row as the Application Insights query API returns
// it: the stand-in's row type, so a workload loads there as it is
// (srv.AddRows(w.Rows...)). CustomDimensions is the JSON object serialised
// into a string, as the API sends it.
type Row = fakeappinsights.Row

// RoleName is the cloud_RoleName Copilot Studio writes on every row.
const RoleName = "Microsoft Copilot Studio"

// dim is one customDimensions key and value. Dimensions are kept as an
// ordered list, not a map, so that the JSON text is the same on every run.
type dim struct{ key, value string }

// encodeDims writes dims as a JSON object. It is hand-rolled because it runs
// once per row of million-row workloads, and because it must be able to carry
// invalid UTF-8 through unchanged (encoding/json would replace it) for the
// bad-input cases.
func encodeDims(buf []byte, dims []dim) []byte {
	buf = append(buf, '{')
	for i, d := range dims {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, d.key)
		buf = append(buf, ':')
		buf = appendJSONString(buf, d.value)
	}
	return append(buf, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string. Valid UTF-8 passes through;
// invalid bytes are copied as they are (see encodeDims).
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c == '\n':
			buf = append(buf, '\\', 'n')
		case c == '\r':
			buf = append(buf, '\\', 'r')
		case c == '\t':
			buf = append(buf, '\\', 't')
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		case c < utf8.RuneSelf:
			buf = append(buf, c)
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			buf = append(buf, s[i:i+size]...)
			i += size
			continue
		}
		i++
	}
	return append(buf, '"')
}

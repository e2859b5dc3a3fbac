package activitypairprocessor

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor/internal/pairing"
)

// resources interns the distinct source resources (an agent in an
// Application Insights app): each gets a pairing.Source handle, which the
// core keeps with its conversations, and its attributes are copied once.
type resources struct {
	byKey map[string]pairing.Source
	attrs []pcommon.Map // by handle
}

func newResources() *resources {
	return &resources{byKey: map[string]pairing.Source{}}
}

// of returns the handle of r's attributes.
func (rs *resources) of(r pcommon.Resource) pairing.Source {
	var key []byte
	for k, v := range r.Attributes().All() {
		key = append(key, k...)
		key = append(key, 0, byte(v.Type()))
		key = append(key, v.AsString()...)
		key = append(key, 0)
	}
	if src, ok := rs.byKey[string(key)]; ok {
		return src
	}
	attrs := pcommon.NewMap()
	r.Attributes().CopyTo(attrs)
	src := pairing.Source(len(rs.attrs))
	rs.attrs = append(rs.attrs, attrs)
	rs.byKey[string(key)] = src
	return src
}

// get returns the attributes of a handle (read-only).
func (rs *resources) get(src pairing.Source) pcommon.Map { return rs.attrs[src] }

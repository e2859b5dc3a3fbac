package activitypairprocessor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
)

// Bounds of max_traces_bytes.
const (
	defaultMaxTracesBytes = 256 << 10
	minMaxTracesBytes     = 4 << 10
)

// validHost reports whether h is a host name: labels of letters, digits and
// '-', separated by dots.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Output formats.
const (
	formatAkto = "akto"
	formatOTLP = "otlp"
)

// What Start does with stored state it cannot read (on_unreadable_state).
const (
	// unreadableStop fails Start, saying what the state holds and the
	// ways on; the storage is left as it is.
	unreadableStop = "stop"
	// unreadableDiscard starts without the state, knowingly: logged,
	// counted, and replaced by the first save of new state.
	unreadableDiscard = "discard"
)

// Config is the activitypair processor's configuration.
type Config struct {
	// Format of the emitted turns: akto (the log body is an Akto traffic
	// record as JSON bytes, for the Kafka exporter's raw encoding) or otlp
	// (one log record per turn with structured attributes).
	Format string `mapstructure:"format"`

	// ReplyTimeout emits a turn whose conversation has had no new row for
	// this long (wall clock), and, in ingestion time, the last turn of a
	// conversation once rows ingested this long after its last row have been
	// read. Keep it above the receiver's poll_interval: replies can land in
	// the next poll.
	ReplyTimeout time.Duration `mapstructure:"reply_timeout"`

	// ReorderWindow is how far, in ingestion time, the processor keeps
	// reading after a turn's next user message before it emits the turn, so
	// that a reply ingested later than the next message still joins its turn.
	// Application Insights usually ingests within 20s to 3m. 0 emits a turn
	// as soon as the next user message of its conversation has arrived.
	ReorderWindow time.Duration `mapstructure:"reorder_window"`

	// MaxOpenTurns bounds memory: past it, the turns of the least recently
	// active conversations are emitted early (trigger "evicted").
	MaxOpenTurns int `mapstructure:"max_open_turns"`

	// MaxBufferedBytes bounds what the processor holds: buffered rows,
	// conversations (with open turns, or remembered for emitted_ids_ttl)
	// and the ids of emitted rows. Past it, conversations without open
	// turns are forgotten (least recently emptied first), then whole least
	// recently active conversations are emitted early, then, when those
	// ids take more than half of it, the oldest ids are forgotten.
	MaxBufferedBytes int64 `mapstructure:"max_buffered_bytes"`

	// EmittedIDsTTL is how long, in ingestion time, the item ids of emitted
	// rows are remembered so that a row the receiver fetches again is
	// dropped instead of emitted twice. It must cover the receiver's window:
	// poll_interval plus overlap.
	EmittedIDsTTL time.Duration `mapstructure:"emitted_ids_ttl"`

	// StorageID names a storage extension (e.g. file_storage) where open
	// turns and emitted ids are saved before ConsumeLogs returns, and read
	// back on start. Without it, shutdown flushes every open turn.
	StorageID *component.ID `mapstructure:"storage"`

	// OnUnreadableState is what Start does when the stored state cannot be
	// read (corruption, a format this build does not read): stop (fail,
	// saying what the state holds and what to do) or discard (start
	// without it, knowingly).
	OnUnreadableState string `mapstructure:"on_unreadable_state"`

	// AktoAccountID and AktoVxlanID go into every Akto record.
	AktoAccountID string `mapstructure:"akto_account_id"`
	AktoVxlanID   string `mapstructure:"akto_vxlan_id"`

	// AktoHost is the host request header of every Akto record. Akto files
	// an agent's records in the collection <agent name>.<host>, prefixing
	// the agent name itself.
	AktoHost string `mapstructure:"akto_host"`

	// MaxTracesBytes bounds the _traces field of an Akto record (a turn's
	// plan and tool activities, as JSON text): past it, tool outputs are
	// cut first, then whole activities from the end, and a marker says so.
	MaxTracesBytes int `mapstructure:"max_traces_bytes"`

	_ struct{}
}

func createDefaultConfig() component.Config {
	return &Config{
		Format:            formatAkto,
		ReplyTimeout:      15 * time.Minute,
		ReorderWindow:     5 * time.Minute,
		MaxOpenTurns:      200000,
		MaxBufferedBytes:  256 << 20,
		EmittedIDsTTL:     time.Hour,
		OnUnreadableState: unreadableStop,
		AktoAccountID:     "1000000",
		AktoVxlanID:       "0",
		AktoHost:          schema.AktoDefaultHost,
		MaxTracesBytes:    defaultMaxTracesBytes,
	}
}

// Validate reports every problem at once, each naming the key and the fix.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch c.Format {
	case formatAkto, formatOTLP:
	default:
		add("format %q is unknown: use %q (Akto traffic records) or %q (structured log records)", c.Format, formatAkto, formatOTLP)
	}
	if c.ReplyTimeout < time.Second {
		add("reply_timeout %v is too short: use at least 1s, and more than the receiver's poll_interval (default 15m)", c.ReplyTimeout)
	}
	if c.ReorderWindow < 0 {
		add("reorder_window %v must not be negative (default 5m; 0 emits a turn as soon as the next message arrives)", c.ReorderWindow)
	}
	if c.MaxOpenTurns < 1 {
		add("max_open_turns %d must be at least 1 (default 200000)", c.MaxOpenTurns)
	}
	if c.MaxBufferedBytes < 1<<20 {
		add("max_buffered_bytes %d is too small: use at least 1048576 (1 MiB; default 268435456, 256 MiB)", c.MaxBufferedBytes)
	}
	if c.EmittedIDsTTL <= 0 {
		add("emitted_ids_ttl %v must be positive: at least the receiver's poll_interval plus its overlap (default 1h)", c.EmittedIDsTTL)
	}
	if c.OnUnreadableState != unreadableStop && c.OnUnreadableState != unreadableDiscard {
		add("on_unreadable_state %q is unknown: use %s (default: Start fails and says what to do) or %s (start without the stored state, knowingly)", c.OnUnreadableState, unreadableStop, unreadableDiscard)
	}
	if c.Format != formatOTLP {
		if strings.TrimSpace(c.AktoAccountID) == "" {
			add("akto_account_id is empty: give the Akto account id (default 1000000)")
		}
		if strings.TrimSpace(c.AktoVxlanID) == "" {
			add("akto_vxlan_id is empty: give the Akto VXLAN id (default 0)")
		}
		if !validHost(c.AktoHost) {
			add("akto_host %q is not a host name: use letters, digits, '-' and '.' only, without the agent's name (Akto adds it; default %s)", c.AktoHost, schema.AktoDefaultHost)
		}
		if c.MaxTracesBytes < minMaxTracesBytes {
			add("max_traces_bytes %d is too small: use at least %d (default %d; Kafka's record limit is 1 MB, the Akto ingestion service's string limit 5 MiB)", c.MaxTracesBytes, minMaxTracesBytes, defaultMaxTracesBytes)
		}
	}
	return errors.Join(errs...)
}

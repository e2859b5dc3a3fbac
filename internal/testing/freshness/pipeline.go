package freshness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/schema"
	"github.com/copilotwatch/otelcol-copilotstudio/internal/testing/harness"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/activitypairprocessor"
	"github.com/copilotwatch/otelcol-copilotstudio/processor/cardmaskprocessor"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudioreceiver"
	"github.com/copilotwatch/otelcol-copilotstudio/receiver/copilotstudiotranscriptsreceiver"
)

// Timings are the settings that decide how soon a turn goes out, as the
// loaded configuration has them.
type Timings struct {
	PollInterval, IngestionDelay, Overlap time.Duration // receivers::copilotstudio
	ReplyTimeout, ReorderWindow           time.Duration // processors::activitypair
}

func (t Timings) String() string {
	return fmt.Sprintf("poll %s, ingestion_delay %s, overlap %s, reply_timeout %s, reorder_window %s",
		short(t.PollInterval), short(t.IngestionDelay), short(t.Overlap), short(t.ReplyTimeout), short(t.ReorderWindow))
}

// short writes 3m30s rather than 3m30.000s or 3m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// skippedProcessors are in the shipped pipeline but not in the simulation:
// memory_limiter passes everything on while memory lasts, and is not a
// dependency of this module (only of the built distribution).
var skippedProcessors = map[string]bool{"memory_limiter": true}

func processorFactories() map[component.Type]processor.Factory {
	out := map[component.Type]processor.Factory{}
	for _, f := range []processor.Factory{
		transformprocessor.NewFactory(), cardmaskprocessor.NewFactory(), activitypairprocessor.NewFactory(),
	} {
		out[f.Type()] = f
	}
	return out
}

// pipeline is the logs pipeline of the loaded configuration, in process:
// a receiver (copilotstudio, or copilotstudio_transcripts), the processors in the order the pipeline
// lists them, and the recorder in place of the Kafka exporter. The
// receiver and activitypair run on the simulation's clock.
type pipeline struct {
	receiver   receiver.Logs
	processors []processor.Logs // in pipeline order
	timings    Timings
}

// buildPipeline creates the components of conf's logs pipeline with the
// copilotstudio receiver, feeding next; nothing is started.
func buildPipeline(conf *confmap.Conf, clk *simClock, next consumer.Logs) (*pipeline, error) {
	p, head, err := buildProcessors(conf, clk, next)
	if err != nil {
		return nil, err
	}
	rf := copilotstudioreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*copilotstudioreceiver.Config)
	if err := unmarshalSection(conf, "receivers::copilotstudio", rcfg); err != nil {
		return nil, err
	}
	p.timings.PollInterval, p.timings.IngestionDelay, p.timings.Overlap = rcfg.PollInterval, rcfg.IngestionDelay, rcfg.Overlap
	rec, err := rf.CreateLogs(context.Background(), receivertest.NewNopSettings(rf.Type()), rcfg, head)
	if err != nil {
		return nil, fmt.Errorf("receivers::copilotstudio: %w", err)
	}
	if err := setField(rec, "clock", clk); err != nil {
		return nil, err
	}
	p.receiver = rec
	return p, nil
}

// buildTranscriptsPipeline is buildPipeline with the
// copilotstudio_transcripts receiver (collector-config.transcripts.yaml).
func buildTranscriptsPipeline(conf *confmap.Conf, clk *simClock, next consumer.Logs) (*pipeline, error) {
	p, head, err := buildProcessors(conf, clk, next)
	if err != nil {
		return nil, err
	}
	rf := copilotstudiotranscriptsreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*copilotstudiotranscriptsreceiver.Config)
	if err := unmarshalSection(conf, "receivers::copilotstudio_transcripts", rcfg); err != nil {
		return nil, err
	}
	p.timings.PollInterval, p.timings.Overlap = rcfg.PollInterval, rcfg.Overlap
	rec, err := rf.CreateLogs(context.Background(), receivertest.NewNopSettings(rf.Type()), rcfg, head)
	if err != nil {
		return nil, fmt.Errorf("receivers::copilotstudio_transcripts: %w", err)
	}
	if err := setField(rec, "clock", clk); err != nil {
		return nil, err
	}
	p.receiver = rec
	return p, nil
}

// buildProcessors creates the processors of conf's logs pipeline, in its
// order, feeding next, and returns the first of them (what a receiver
// feeds); activitypair runs on the simulation's clock.
func buildProcessors(conf *confmap.Conf, clk *simClock, next consumer.Logs) (*pipeline, consumer.Logs, error) {
	p := &pipeline{}
	ids := asStrings(conf.Get("service::pipelines::logs::processors"))
	if len(ids) == 0 {
		return nil, nil, errors.New("service::pipelines::logs::processors is empty")
	}
	factories := processorFactories()
	for i := len(ids) - 1; i >= 0; i-- {
		var id component.ID
		if err := id.UnmarshalText([]byte(ids[i])); err != nil {
			return nil, nil, fmt.Errorf("service::pipelines::logs::processors: %w", err)
		}
		if skippedProcessors[id.Type().String()] {
			continue
		}
		f, ok := factories[id.Type()]
		if !ok {
			return nil, nil, fmt.Errorf("processor %s of the pipeline is not known to the freshness simulation: add its factory", id)
		}
		cfg := f.CreateDefaultConfig()
		if err := unmarshalSection(conf, "processors::"+id.String(), cfg); err != nil {
			return nil, nil, err
		}
		set := processortest.NewNopSettings(f.Type())
		set.ID = id
		isPair := f.Type() == activitypairprocessor.NewFactory().Type()
		if isPair {
			set.TelemetrySettings.MeterProvider = sweepSignal{onSweep: clk.swept}
			pc := cfg.(*activitypairprocessor.Config)
			p.timings.ReplyTimeout, p.timings.ReorderWindow = pc.ReplyTimeout, pc.ReorderWindow
		}
		proc, err := f.CreateLogs(context.Background(), set, cfg, next)
		if err != nil {
			return nil, nil, fmt.Errorf("processors::%s: %w", id, err)
		}
		if isPair {
			if err := setField(proc, "clock", clk); err != nil {
				return nil, nil, err
			}
		}
		p.processors = append([]processor.Logs{proc}, p.processors...)
		next = proc
	}
	return p, next, nil
}

// start starts the processors back to front, then the receiver, whose
// first poll runs at once.
func (p *pipeline) start(host component.Host) error {
	for i := len(p.processors) - 1; i >= 0; i-- {
		if err := p.processors[i].Start(context.Background(), host); err != nil {
			return err
		}
	}
	return p.receiver.Start(context.Background(), host)
}

func (p *pipeline) shutdown() error {
	errs := []error{p.receiver.Shutdown(context.Background())}
	for _, proc := range p.processors {
		errs = append(errs, proc.Shutdown(context.Background()))
	}
	return errors.Join(errs...)
}

func unmarshalSection(conf *confmap.Conf, key string, cfg component.Config) error {
	section, err := conf.Sub(key)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if len(section.AllKeys()) == 0 {
		return fmt.Errorf("the configuration has no %s", key)
	}
	if err := section.Unmarshal(cfg); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if v, ok := cfg.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

func asStrings(v any) []string {
	items, _ := v.([]any)
	out := make([]string, 0, len(items))
	for _, item := range items {
		s, _ := item.(string)
		out = append(out, s)
	}
	return out
}

// setField puts the simulation's clock into a component. Both components
// keep their clock in an unexported field named clock, which their own
// tests set; neither offers another way in, so this reaches it by
// reflection, and fails loudly (naming the field) if it ever moves.
func setField(target any, name string, value any) error {
	v := reflect.ValueOf(target)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("freshness: %T is not a pointer to a struct: cannot give it the simulated clock", target)
	}
	f := v.Elem().FieldByName(name)
	if !f.IsValid() {
		return fmt.Errorf("freshness: %T has no field %q any more: give the simulation another way to set its clock", target, name)
	}
	val := reflect.ValueOf(value)
	if !val.Type().AssignableTo(f.Type()) {
		return fmt.Errorf("freshness: %T's field %s is a %v, which %T does not implement", target, name, f.Type(), value)
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(val)
	return nil
}

// sweepSignal is activitypair's meter provider in a simulation: the
// processor records its rows_buffered gauge at the end of every sweep (and
// every ConsumeLogs), after the turns it emitted were passed on, which is
// how the driver knows a sweep it ticked is done. Every other instrument is
// a no-op.
type sweepSignal struct {
	noop.MeterProvider
	onSweep func()
}

// sweepGauge is the gauge activitypair records last in a sweep.
const sweepGauge = "otelcol_activitypair_rows_buffered"

func (s sweepSignal) Meter(string, ...metric.MeterOption) metric.Meter {
	return signalMeter{onSweep: s.onSweep}
}

type signalMeter struct {
	noop.Meter
	onSweep func()
}

func (m signalMeter) Int64Gauge(name string, opts ...metric.Int64GaugeOption) (metric.Int64Gauge, error) {
	if name == sweepGauge {
		return signalGauge{onSweep: m.onSweep}, nil
	}
	return m.Meter.Int64Gauge(name, opts...)
}

type signalGauge struct {
	noop.Int64Gauge
	onSweep func()
}

func (g signalGauge) Record(context.Context, int64, ...metric.RecordOption) { g.onSweep() }

// arrival is one turn record as it reached the end of the pipeline.
type arrival struct {
	at      time.Time // the simulated time it was handed on
	itemIDs []string
	body    []byte
}

// recorder stands where the Kafka exporter is: it keeps each turn record
// with the simulated time it arrived.
type recorder struct {
	clk *simClock

	mu       sync.Mutex
	arrivals []arrival
	seen     map[string]bool // item ids in a record so far
}

func (r *recorder) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *recorder) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	at := r.clk.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				a := arrival{at: at, body: append([]byte(nil), lr.Body().Bytes().AsRaw()...)}
				if v, ok := lr.Attributes().Get(schema.TurnItemIDs); ok {
					for _, id := range v.Slice().All() {
						a.itemIDs = append(a.itemIDs, id.Str())
					}
				}
				if r.seen == nil {
					r.seen = map[string]bool{}
				}
				for _, id := range a.itemIDs {
					r.seen[id] = true
				}
				r.arrivals = append(r.arrivals, a)
			}
		}
	}
	return nil
}

// itemCount is how many distinct rows are in a record so far.
func (r *recorder) itemCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) all() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]arrival(nil), r.arrivals...)
}

// startOnDisk starts p with a file_storage under dir and waits until its
// receiver and processor are waiting on the simulated clock; if they never
// do, it shuts p down.
func (p *pipeline) startOnDisk(tb testing.TB, dir string, clk *simClock) error {
	storageDir := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storageDir, 0o700); err != nil {
		return err
	}
	if err := p.start(harness.StartFileStorage(tb, storageDir)); err != nil {
		return err
	}
	if err := clk.waitStarted(guard); err != nil {
		_ = p.shutdown()
		return err
	}
	return nil
}

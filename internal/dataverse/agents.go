package dataverse

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
)

// EarlyRefreshSpacing is the least time between the start of one read of the
// agents and an early one asked for by a row of an unknown agent: however
// many unknown agents talk, Dataverse is read at most once a minute for them.
const EarlyRefreshSpacing = time.Minute

// AgentsSettings configure Agents.
type AgentsSettings struct {
	// RefreshInterval is how long after a read the list is read again.
	RefreshInterval time.Duration
	Clock           clock.Clock
	Logger          *zap.Logger
	// OnRead, when set, learns how each read ended (nil error: success), for
	// the caller's metrics. Reads cut short by shutdown are not reported.
	OnRead func(ctx context.Context, err error)
}

// Agents keeps the agent list of one environment current for a source that
// enriches its telemetry with it. Run reads it at once, then RefreshInterval
// after each read, and early (at most every EarlyRefreshSpacing) when Unknown
// says a row named an agent the list lacks. A failed read leaves the last
// list in use (or none): the telemetry never waits for Dataverse beyond
// WaitFirst's bound.
type Agents struct {
	client   *Client
	dir      Directory
	clock    clock.Clock
	interval time.Duration
	logger   *zap.Logger
	onRead   func(context.Context, error)

	// wake holds a request for an early read.
	wake chan struct{}
	// firstRead is closed once the first read ended, well or not.
	firstRead     chan struct{}
	firstReadOnce sync.Once

	mu       sync.Mutex
	lastRead time.Time // when the latest read started
	readOK   time.Time // when the latest successful read started
	lastErr  error     // how the latest read failed, nil if it did not
	// asked holds the unknown agent names that asked for an early read
	// since the latest read started.
	asked map[string]bool
	// absent holds names still unknown after a successful read they asked
	// for: they ask again only after the next regular read.
	absent map[string]bool
	// started and ended count the reads; readEnded is closed (and
	// replaced) when one ends, for AwaitUnknown.
	started, ended int
	readEnded      chan struct{}
}

// NewAgents returns the agent list of client's environment, not read yet.
// The client waits out throttling on s.Clock.
func NewAgents(client *Client, s AgentsSettings) *Agents {
	client.UseClock(s.Clock)
	return &Agents{
		client:    client,
		clock:     s.Clock,
		interval:  s.RefreshInterval,
		logger:    s.Logger,
		onRead:    s.OnRead,
		wake:      make(chan struct{}, 1),
		firstRead: make(chan struct{}),
		asked:     map[string]bool{},
		absent:    map[string]bool{},
		readEnded: make(chan struct{}),
	}
}

// Run reads the agents now and keeps reading them until ctx ends.
func (a *Agents) Run(ctx context.Context) {
	regular := true
	for {
		a.read(ctx, regular)
		var ok bool
		if regular, ok = a.waitForNextRead(ctx); !ok {
			return
		}
	}
}

// waitForNextRead waits for the next regular read (true) or an early one
// (false), which starts no sooner than EarlyRefreshSpacing after the
// latest; false, false when ctx ends.
func (a *Agents) waitForNextRead(ctx context.Context) (regular, ok bool) {
	due, stop := a.clock.NewTicker(a.interval)
	defer stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-due:
		return true, true
	case <-a.wake:
	}
	a.mu.Lock()
	wait := a.lastRead.Add(EarlyRefreshSpacing).Sub(a.clock.Now())
	a.mu.Unlock()
	if wait > 0 && a.clock.Sleep(ctx, wait) != nil {
		return false, false
	}
	return false, true
}

// WaitFirst waits until the first read ended or timeout passed. It returns
// nil once the list is read, else why it is not: the read failed, or it
// did not end within timeout, or ctx ended.
func (a *Agents) WaitFirst(ctx context.Context, timeout time.Duration) error {
	if timeout > 0 {
		expired, stop := a.clock.NewTicker(timeout)
		defer stop()
		select {
		case <-a.firstRead:
		case <-expired:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if a.dir.Loaded() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-a.firstRead:
		a.mu.Lock()
		defer a.mu.Unlock()
		return fmt.Errorf("reading the agents failed: %w", a.lastErr)
	default:
		return fmt.Errorf("the agents were not read within %v", timeout)
	}
}

// Refresh reads the agents once, now, as a regular read.
func (a *Agents) Refresh(ctx context.Context) { a.read(ctx, true) }

// Lookup finds the agent a telemetry row belongs to (see Directory.Lookup).
func (a *Agents) Lookup(agentName, topicName string) (Agent, bool) {
	return a.dir.Lookup(agentName, topicName)
}

// Unknown says a row named an agent the list lacks: it asks for an early
// read, unless a read since the last regular one already did not find it.
func (a *Agents) Unknown(agentName string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.askLocked(agentName)
}

// askLocked asks for an early read for agentName, unless it is asked for
// already or a read since the last regular one did not find it; it reports
// whether a read to come will look for it.
func (a *Agents) askLocked(agentName string) bool {
	if agentName == "" || a.absent[agentName] {
		return false
	}
	if !a.asked[agentName] {
		a.asked[agentName] = true
		select {
		case a.wake <- struct{}{}:
		default: // a read is already asked for
		}
	}
	return true
}

// AwaitUnknown says the agents named are not in the list (as Unknown does
// for each) and waits until the read that looks for them ended, at most
// timeout, so that the rows naming them can carry their identity. Early
// reads keep their spacing: when the latest read began less than
// EarlyRefreshSpacing ago, the one asked for starts only then, and a
// timeout shorter than that ends the wait first. It returns at once when
// no read will look for them (each was not found by a read since the last
// regular one), and reports whether it waited for a read that ended.
func (a *Agents) AwaitUnknown(ctx context.Context, agentNames []string, timeout time.Duration) bool {
	a.mu.Lock()
	pending := false
	for _, name := range agentNames {
		pending = a.askLocked(name) || pending
	}
	// Names asked for are taken by the next read to start, unless a read
	// under way finds them first (it then takes them off the asked ones).
	target := a.started + 1
	a.mu.Unlock()
	if !pending || timeout <= 0 {
		return false
	}
	expired, stop := a.clock.NewTicker(timeout)
	defer stop()
	for {
		a.mu.Lock()
		done := a.ended >= target ||
			(a.ended == target-1 && a.started == target-1 && !a.anyAskedLocked(agentNames))
		ended := a.readEnded
		a.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-ended:
		case <-expired:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (a *Agents) anyAskedLocked(names []string) bool {
	for _, name := range names {
		if a.asked[name] {
			return true
		}
	}
	return false
}

func (a *Agents) read(ctx context.Context, regular bool) {
	defer a.firstReadOnce.Do(func() { close(a.firstRead) })
	defer func() {
		a.mu.Lock()
		a.ended++
		close(a.readEnded)
		a.readEnded = make(chan struct{})
		a.mu.Unlock()
	}()
	a.mu.Lock()
	a.started++
	started := a.clock.Now()
	a.lastRead = started
	askedFor := a.asked
	a.asked = map[string]bool{}
	if regular {
		clear(a.absent)
	}
	a.mu.Unlock()

	agents, err := a.client.Agents(ctx)
	if ctx.Err() != nil {
		return
	}
	if a.onRead != nil {
		a.onRead(ctx, err)
	}
	a.mu.Lock()
	a.lastErr = err
	a.mu.Unlock()
	if err != nil {
		// The names asked for stay unknown, not absent: their next rows ask again.
		a.readFailed(err)
		return
	}
	a.dir.Replace(agents)
	a.mu.Lock()
	a.readOK = started
	var stillUnknown []string
	for name := range askedFor {
		if _, ok := a.dir.Lookup(name, ""); !ok {
			a.absent[name] = true
			stillUnknown = append(stillUnknown, name)
		}
	}
	// Names asked for during the read that it found need no second read.
	for name := range a.asked {
		if _, ok := a.dir.Lookup(name, ""); ok {
			delete(a.asked, name)
		}
	}
	if len(a.asked) == 0 {
		select {
		case <-a.wake:
		default:
		}
	}
	a.mu.Unlock()
	fields := []zap.Field{zap.Int("agents", len(agents))}
	if !regular {
		fields = append(fields, zap.String("why", "a row named an agent not in the list"), zap.Strings("asked_for", sortedKeys(askedFor)))
	}
	if len(stillUnknown) > 0 {
		slices.Sort(stillUnknown)
		fields = append(fields, zap.Strings("not_in_dataverse", stillUnknown),
			zap.String("not_in_dataverse_means", "their turns go on without agent identity; they ask for no early read again before the next regular one"))
	}
	a.logger.Info("read the agents from Dataverse", fields...)
}

func (a *Agents) readFailed(err error) {
	a.mu.Lock()
	readOK := a.readOK
	a.mu.Unlock()
	fields := []zap.Field{zap.Error(err), zap.Duration("next_regular_read_in", a.interval),
		zap.Duration("early_read_spacing", EarlyRefreshSpacing)}
	if readOK.IsZero() {
		a.logger.Warn("reading the agents from Dataverse failed; turns go on without their agent's identity (id, schema name, environment, authentication mode, published state) until the list can be read, which is tried again when a row of an agent not in the list arrives (at most every early_read_spacing) and every refresh interval", fields...)
		return
	}
	a.logger.Warn("reading the agents from Dataverse failed; the list read before stays in use, so agents added since then go on without their identity until the list can be read",
		append(fields, zap.Time("list_read_at", readOK))...)
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Package logcap logs the bad input a component skips, one line per item
// with its id, up to a cap per round (a poll window, a ConsumeLogs call),
// then one line saying how many more were skipped: a flood of bad rows
// never floods the log, and every skipped row is still counted in metrics.
package logcap

import (
	"sync"

	"go.uber.org/zap"
)

// Logger is safe for concurrent use: a server's calls share one, with a
// round of a fixed time.
type Logger struct {
	mu      sync.Mutex
	logger  *zap.Logger
	max     int
	logged  int
	skipped int
}

// New logs at most max lines per round.
func New(logger *zap.Logger, max int) *Logger { return &Logger{logger: logger, max: max} }

// Warn logs msg with fields while the round is under its cap, and counts it otherwise.
func (l *Logger) Warn(msg string, fields ...zap.Field) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.logged < l.max {
		l.logged++
		l.logger.Warn(msg, fields...)
		return
	}
	l.skipped++
}

// EndRound logs how many lines the cap held back, if any (as summary, with
// a not_logged field), and starts a new round.
func (l *Logger) EndRound(summary string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.skipped > 0 {
		l.logger.Warn(summary, zap.Int("not_logged", l.skipped))
	}
	l.logged, l.skipped = 0, 0
}

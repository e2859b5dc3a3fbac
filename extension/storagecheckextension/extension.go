package storagecheckextension

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap"

	"github.com/copilotwatch/otelcol-copilotstudio/internal/clock"
)

// movedAsideTime is the UTC time in a moved-aside file's name: sortable,
// and without characters a file system might refuse.
const movedAsideTime = "20060102T150405Z"

type storageCheck struct {
	cfg    *Config
	logger *zap.Logger
	clock  clock.Clock
}

// Start checks every file_storage file in the directory. Extensions start
// before any receiver, processor or exporter, and file_storage opens a
// component's file only when that component starts (and compacts it then,
// with compaction.on_start), so every file is checked before anything
// opens it.
func (s *storageCheck) Start(ctx context.Context, _ component.Host) error {
	names, err := stateFiles(s.cfg.Directory)
	if err != nil {
		return fmt.Errorf("storage_check: listing %s: %w", s.cfg.Directory, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var problems []error
	for _, name := range names {
		path := filepath.Join(s.cfg.Directory, name)
		st, err := checkFile(ctx, path)
		switch {
		case err == nil:
			s.logger.Debug("Storage file is sound", zap.String("file", path),
				zap.Int("buckets", st.buckets), zap.Int("keys", st.keys), zap.Int64("bytes", st.bytes))
		case !isCorrupt(err):
			problems = append(problems, fmt.Errorf("storage_check: %s could not be checked, so the collector does not start: %w", path, err))
		case s.cfg.OnCorrupt == OnCorruptMoveAside:
			if err := s.moveAside(path, name, err); err != nil {
				problems = append(problems, err)
			}
		default:
			problems = append(problems, stopError(path, name, err))
		}
	}
	return errors.Join(problems...)
}

func (s *storageCheck) moveAside(path, name string, reason error) error {
	holds, aside := describe(name)
	to := path + ".corrupt-" + s.clock.Now().UTC().Format(movedAsideTime)
	if err := os.Rename(path, to); err != nil {
		return fmt.Errorf("storage_check: %s is corrupt (%v) and could not be moved aside, so the collector does not start: %w. It holds %s",
			path, reason, err, holds)
	}
	s.logger.Error("Corrupt storage file moved aside; its component starts with empty state",
		zap.String("file", path), zap.String("moved_to", to), zap.String("corruption", reason.Error()),
		zap.String("held", holds), zap.String("lost_or_repeated", aside))
	return nil
}

// stopError is the message the collector stops with: the file, what it
// holds, and the two ways on.
func stopError(path, name string, reason error) error {
	holds, aside := describe(name)
	return fmt.Errorf("storage_check: %s is corrupt: %v.\n"+
		"It holds %s.\n"+
		"The collector does not start, so nothing in it is lost yet. Keep the file: copy it out of the directory before anything else. Then either\n"+
		"1. restore it from a backup of the directory taken while the collector was stopped, and start again; or\n"+
		"2. move it aside (rename it, or start once with storage_check's on_corrupt: move_aside, STORAGE_ON_CORRUPT=move_aside with the shipped collector-config.yaml) and start: %s",
		path, reason, holds, aside)
}

// Shutdown has nothing to release: every check closed its file.
func (*storageCheck) Shutdown(context.Context) error { return nil }

// stateFiles lists the regular files in dir that file_storage could have
// written for a component, sorted. A directory that does not exist yet
// holds none (file_storage creates it).
func stateFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && isStateFile(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

package storagecheckextension

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// lockTimeout is how long opening a file waits for another process's lock
// (file_storage's own default timeout). A file still locked after it is in
// use by another collector: never corrupt, never moved.
const lockTimeout = time.Second

// maxBucketDepth bounds how deep buckets may nest. file_storage keeps one
// bucket per file; a deeper chain only comes from a damaged bucket
// reference pointing back up the tree, which would otherwise recurse
// without end.
const maxBucketDepth = 16

// maxCheckErrors is how many of bbolt's consistency errors a report quotes.
const maxCheckErrors = 3

// corruptError says a file cannot be read as a bbolt database: what
// file_storage would panic on, or fail to read, when it opens it.
type corruptError struct{ reason string }

func (e *corruptError) Error() string { return e.reason }

func corrupt(format string, args ...any) error {
	return &corruptError{reason: fmt.Sprintf(format, args...)}
}

// isCorrupt tells a proven corruption apart from a check that could not be
// made (the file is locked, unreadable, or the check ran out of time).
func isCorrupt(err error) bool {
	var c *corruptError
	return errors.As(err, &c)
}

// stats is what a check read, for the log.
type stats struct {
	buckets, keys int
	bytes         int64
	sum           uint32 // of every key and value: keeps the reads from being optimised away
}

// checkFile reads path as file_storage will: every bucket, key and value,
// then bbolt's own consistency check (the one bbolt runs, in a goroutine no
// caller can recover, when file_storage opens the file read-write). It
// returns nil for a sound file, a *corruptError for a corrupt one, and any
// other error when it could not tell.
//
// The reading runs in a goroutine of its own, where a panic (bbolt asserts
// on a damaged page) is recovered and a fault (a page reference beyond the
// mapped file) becomes a panic instead of killing the process. Should the
// damage make bbolt loop, ctx ends the wait; the goroutine is then left
// behind, and the collector, which does not start, exits with it.
func checkFile(ctx context.Context, path string) (stats, error) {
	info, err := os.Stat(path)
	if err != nil {
		return stats{}, err
	}
	if info.Size() == 0 {
		// file_storage would silently start a new database in it.
		return stats{}, corrupt("the file is empty (0 bytes): no bbolt database is left in it")
	}
	type outcome struct {
		st  stats
		err error
	}
	done := make(chan outcome, 1)
	inspect := inspectFile
	go func() {
		st, err := inspect(path)
		done <- outcome{st, err}
	}()
	select {
	case o := <-done:
		return o.st, o.err
	case <-ctx.Done():
		return stats{}, fmt.Errorf("the check did not finish in time (%w): raise storage_check's timeout for a large file; if it keeps running out, the file may be damaged so that reading it loops", ctx.Err())
	}
}

// inspectFile is inspect; tests replace it to make a check hang.
var inspectFile = inspect

// inspect runs in its own goroutine (see checkFile).
func inspect(path string) (st stats, err error) {
	debug.SetPanicOnFault(true) // this goroutine only
	var db *bbolt.DB
	defer func() {
		if r := recover(); r != nil {
			err = corrupt("reading it fails: %v", r)
		}
		if db != nil {
			closeQuietly(db)
		}
	}()

	// Read-only: a shared lock, nothing written, and (unlike file_storage's
	// read-write open) no free-page scan in a goroutine of bbolt's own.
	db, err = bbolt.Open(path, 0, &bbolt.Options{ReadOnly: true, Timeout: lockTimeout})
	switch {
	case err == nil:
	case errors.Is(err, berrors.ErrTimeout):
		return st, fmt.Errorf("the file is locked by another process (is another collector using this directory?): %w", err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return st, corrupt("not a readable bbolt database: %v", err)
	default:
		return st, fmt.Errorf("cannot open it to check it: %w", err)
	}

	err = db.View(func(tx *bbolt.Tx) error {
		if err := walk(tx.Cursor(), tx.Bucket, 0, &st); err != nil {
			return err
		}
		// Every page is now known to be readable; what bbolt's read-write
		// open also insists on (each page referenced once, within the
		// file, keys in order across pages) is what Check reports.
		var problems []string
		for e := range tx.Check() {
			if len(problems) < maxCheckErrors {
				problems = append(problems, e.Error())
			}
		}
		if len(problems) > 0 {
			return corrupt("bbolt's consistency check fails: %s", strings.Join(problems, "; "))
		}
		return nil
	})
	return st, err
}

// walk reads every key and value under the cursor, and the buckets nested
// in it, touching every byte so that a reference beyond the file faults
// here, inside the recover, rather than later in a component.
func walk(c *bbolt.Cursor, bucket func([]byte) *bbolt.Bucket, depth int, st *stats) error {
	if depth > maxBucketDepth {
		return corrupt("buckets nested more than %d deep: a bucket reference points back up the tree", maxBucketDepth)
	}
	var prev []byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return corrupt("keys out of order: %x after %x", k, prev)
		}
		prev = append(prev[:0], k...)
		st.keys++
		st.bytes += int64(len(k) + len(v))
		st.sum ^= crc32.ChecksumIEEE(k)
		if v != nil {
			st.sum ^= crc32.ChecksumIEEE(v)
			continue
		}
		child := bucket(k)
		if child == nil {
			return corrupt("key %x is marked as a bucket but opens none", k)
		}
		st.buckets++
		if err := walk(child.Cursor(), child.Bucket, depth+1, st); err != nil {
			return err
		}
	}
	return nil
}

func closeQuietly(db *bbolt.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oakdns/oak/catalog"
)

// DefaultFileInterval is how often a FileSource looks at its file.
const DefaultFileInterval = 5 * time.Second

// FileSource serves snapshots from a Marathon apps dump on disk (the body of
// GET /v2/apps?embed=apps.tasks, {"apps":[...]}), for offline use. It
// re-reads the file when its size or modification time changes; a file that
// does not parse leaves the last good snapshot in place.
type FileSource struct {
	path     string
	policy   *catalog.Policy
	log      *slog.Logger
	interval time.Duration
	started  atomic.Bool
	problems *problemLog // owned by Run, which loads

	snapshot atomic.Pointer[catalog.Snapshot]
	ready    atomic.Bool
	known    *knownApps // owned by Run's goroutine

	mu       sync.Mutex // guards the fields below
	seen     fileStamp  // the version last read, good or bad
	lastLoad time.Time
	lastErr  error
	loads    uint64
	failures uint64
}

// fileStamp identifies a version of the file cheaply.
type fileStamp struct {
	size    int64
	modTime time.Time
}

// FileOption configures a FileSource.
type FileOption func(*FileSource)

// WithPollInterval sets how often the file is checked for changes
// (default DefaultFileInterval).
func WithPollInterval(d time.Duration) FileOption {
	return func(f *FileSource) {
		if d > 0 {
			f.interval = d
		}
	}
}

// NewFile returns a FileSource for path. Nothing is read until Run. A nil
// log discards.
func NewFile(path string, p *catalog.Policy, log *slog.Logger, opts ...FileOption) *FileSource {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &FileSource{path: path, policy: p, log: log, interval: DefaultFileInterval, problems: newProblemLog(log), known: newKnownApps()}
	for _, opt := range opts {
		opt(f)
	}
	return f
}

// Run loads the file, then polls it until ctx is done, and returns nil. It
// returns an error only if it cannot start. A FileSource runs once.
func (f *FileSource) Run(ctx context.Context) error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("watcher: FileSource.Run called twice")
	}
	if f.policy == nil {
		return errors.New("watcher: FileSource has no policy")
	}
	ticker := time.NewTicker(f.interval)
	defer ticker.Stop()
	for {
		f.poll()
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// Snapshot returns the last good snapshot, nil before the first.
func (f *FileSource) Snapshot() *catalog.Snapshot { return f.snapshot.Load() }

// Ready reports whether the file has been loaded successfully once.
func (f *FileSource) Ready() bool { return f.ready.Load() }

// Status returns the source's status. Connected means the last read of the
// file succeeded.
func (f *FileSource) Status() Status {
	f.mu.Lock()
	st := Status{
		LastSync:  f.lastLoad,
		LastError: f.lastErr,
		Connected: f.lastErr == nil && f.ready.Load(),
		Syncs:     f.loads,
		Failures:  f.failures,
	}
	f.mu.Unlock()
	if s := f.snapshot.Load(); s != nil {
		stats := s.Stats()
		st.Apps, st.Tasks, st.Rejected = stats.Apps, stats.Tasks, stats.Rejected
	}
	return st
}

// poll reloads the file if it changed since the last read.
func (f *FileSource) poll() {
	info, err := os.Stat(f.path)
	if err != nil {
		f.fail(fileStamp{}, err)
		return
	}
	stamp := fileStamp{size: info.Size(), modTime: info.ModTime()}
	f.mu.Lock()
	unchanged := stamp == f.seen
	f.mu.Unlock()
	if unchanged {
		return
	}
	current := f.snapshot.Load()
	if current == nil {
		f.known.prints.clear() // a build needs every app decoded
	}
	list, err := readApps(f.path, f.known.prints)
	if err != nil {
		f.fail(stamp, err)
		return
	}
	if next := f.known.follow(current, f.policy, list); next != nil {
		f.problems.report(next)
		f.snapshot.Store(next)
	}
	f.ready.Store(true)
	f.mu.Lock()
	f.seen = stamp
	f.lastLoad = time.Now()
	f.lastErr = nil
	f.loads++
	f.mu.Unlock()
	f.log.Info("marathon apps file loaded", "path", f.path, "apps", len(list))
}

// fail records a failed read. The stamp is remembered so that a bad file is
// reported once, not at every poll, and read again only when it changes.
func (f *FileSource) fail(stamp fileStamp, err error) {
	f.mu.Lock()
	repeated := f.lastErr != nil && f.lastErr.Error() == err.Error()
	f.seen = stamp
	f.lastErr = err
	f.failures++
	f.mu.Unlock()
	switch {
	case repeated:
	case f.snapshot.Load() == nil:
		f.log.Warn("marathon apps file unusable; no view yet, nothing is served until it loads", "path", f.path, "err", err)
	default:
		f.log.Warn("marathon apps file unusable; keeping the last good view", "path", f.path, "err", err)
	}
}

// readApps parses an apps dump, skipping the elements index holds. It
// wants exactly one JSON object with an "apps" array: an empty or
// truncated file is an error, never an empty view.
func readApps(path string, index *printIndex) ([]listedApp, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	body := &limitedBody{r: file, left: maxListSize}
	list, err := decodeApps(body, index)
	if body.left < 0 {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxListSize)
	}
	return list, err
}

// parseApps decodes a whole apps list.
func parseApps(r io.Reader) ([]catalog.App, error) {
	list, err := decodeApps(r, nil)
	if err != nil {
		return nil, err
	}
	return appsOfList(list), nil
}

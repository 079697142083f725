package watcher

import (
	"sync"
	"time"

	"github.com/oakdns/oak/catalog"
)

// Status describes a Source at one moment. It is a copy; it never changes.
type Status struct {
	LastSync   time.Time // last successful sync (REST full or partial, or file load)
	LastError  error     // last failed sync, nil after a success
	Connected  bool      // event stream up and the last REST call succeeded (file: last load good)
	Reconnects uint64    // event stream reconnections after the first connection
	Syncs      uint64    // successful syncs, task updates applied from events included
	Failures   uint64    // failed syncs
	Apps       int       // apps in the current snapshot
	Tasks      int       // running tasks in the current snapshot
	Rejected   int       // apps left out because their labels did not validate
}

// statusBook records what the sync loop and the event stream observe. It
// is written from both goroutines, hence the lock.
type statusBook struct {
	mu         sync.Mutex
	lastSync   time.Time
	lastErr    error
	streamUp   bool
	streamSeen bool
	downSince  time.Time // when the stream last went down after being up; zero while up
	reconnects uint64
	syncs      uint64
	failures   uint64
}

func (b *statusBook) success(now time.Time) (recovered bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	recovered = b.lastErr != nil
	b.lastSync = now
	b.lastErr = nil
	b.syncs++
	return recovered
}

// applied counts a snapshot published from events alone (no REST).
func (b *statusBook) applied() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.syncs++
}

func (b *statusBook) failure(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastErr = err
	b.failures++
}

// stream records an event-stream connection going up or down; it returns
// whether this "up" is a reconnection rather than the first connection.
func (b *statusBook) stream(up bool) (reconnect bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if up {
		reconnect = b.streamSeen
		if reconnect {
			b.reconnects++
		}
		b.streamSeen = true
	}
	switch {
	case up:
		b.downSince = time.Time{}
	case b.streamUp:
		b.downSince = time.Now()
	}
	b.streamUp = up
	return reconnect
}

// streamDownFor is how long the stream has been down since it was last
// up; 0 while it is up or before it ever was.
func (b *statusBook) streamDownFor(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.streamUp || b.downSince.IsZero() {
		return 0
	}
	return now.Sub(b.downSince)
}

func (b *statusBook) read(snapshot *catalog.Snapshot) Status {
	b.mu.Lock()
	st := Status{
		LastSync:   b.lastSync,
		LastError:  b.lastErr,
		Connected:  b.streamUp && b.lastErr == nil,
		Reconnects: b.reconnects,
		Syncs:      b.syncs,
		Failures:   b.failures,
	}
	b.mu.Unlock()
	if snapshot != nil {
		stats := snapshot.Stats()
		st.Apps, st.Tasks, st.Rejected = stats.Apps, stats.Tasks, stats.Rejected
	}
	return st
}

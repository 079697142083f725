package watcher

import (
	"context"

	"github.com/oakdns/oak/catalog"
)

// Source is a live catalog: something that runs until its context ends and
// meanwhile publishes immutable snapshots.
type Source interface {
	// Run blocks until ctx is done.
	Run(ctx context.Context) error
	// Snapshot returns the current snapshot, nil before the first good load.
	Snapshot() *catalog.Snapshot
	// Ready reports whether a first snapshot has been published.
	Ready() bool
	// Status describes the source's health for logs, metrics and readiness.
	Status() Status
}

var (
	_ Source = (*Watcher)(nil)
	_ Source = (*FileSource)(nil)
)

package nginxctl

import (
	"context"
	"sync/atomic"
	"time"
)

// Batch decides when marked changes are due, as consul-template's
// wait { min, max }: the first mark after a quiet period of Min is due at
// once; a mark within Min of the one before starts a batch that is due
// when no mark came for Min, or Max after the batch began, whichever is
// first. Marks are not queued: a mark sets one dirty flag and bumps a
// count. Mark is safe for concurrent use; Wait is called by one goroutine.
type Batch struct {
	min, max time.Duration
	dirty    chan struct{} // holds one token while something is marked
	marks    atomic.Int64  // marks since the last due batch
	last     time.Time     // when Wait last saw a mark
}

// NewBatch returns a Batch with the given wait bounds (max is raised to
// min when below it).
func NewBatch(minWait, maxWait time.Duration) *Batch {
	return &Batch{min: minWait, max: max(minWait, maxWait), dirty: make(chan struct{}, 1)}
}

// Mark records a change.
func (b *Batch) Mark() {
	b.marks.Add(1)
	select {
	case b.dirty <- struct{}{}:
	default:
	}
}

// Wait blocks until a batch is due and returns how many marks it holds
// (0 when they were all counted in the batch before), or until ctx ends.
func (b *Batch) Wait(ctx context.Context) int {
	select {
	case <-ctx.Done():
		return 0
	case <-b.dirty:
	}
	now := time.Now()
	quiet := b.last.IsZero() || now.Sub(b.last) >= b.min
	b.last = now
	if !quiet {
		deadline := now.Add(b.max)
		timer := time.NewTimer(b.min)
		defer timer.Stop()
	batching:
		for {
			select {
			case <-ctx.Done():
				return 0
			case <-b.dirty:
				b.last = time.Now()
				timer.Reset(min(b.min, time.Until(deadline)))
			case <-timer.C:
				break batching
			}
		}
	}
	return int(b.marks.Swap(0))
}

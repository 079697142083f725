// Package poll waits: for a condition, by asking it again and again (for
// the programs and tests that watch a real process or server come round),
// or for a while, unless a context ends first.
package poll

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Until calls cond every interval until it returns nil, ctx ends or limit
// passes. The error names what was awaited and wraps cond's last error (or
// is ctx's error).
func Until(ctx context.Context, what string, limit, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// Sleep waits d or until ctx ends; it reports whether d passed (a d of 0
// or less passes at once unless ctx has ended).
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Backoff is the delay before retry number attempt (1, 2, ...):
// exponential from lo, capped at hi, with jitter in [d/2, d] so that many
// clients do not retry in step.
func Backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

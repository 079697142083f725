package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	notYet := errors.New("not yet")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		okAfter int // cond succeeds on this call; 0 = never
		want    error
	}{
		{"at once", context.Background(), 1, nil},
		{"on the third try", context.Background(), 3, nil},
		{"never: the deadline", context.Background(), 0, notYet},
		{"never: ctx ends", cancelled, 0, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := Until(tc.ctx, "it", 50*time.Millisecond, time.Millisecond, func() error {
				calls++
				if calls == tc.okAfter {
					return nil
				}
				return notYet
			})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Until = %v, want %v", err, tc.want)
			}
			if tc.okAfter > 0 && calls != tc.okAfter {
				t.Errorf("cond called %d times, want %d", calls, tc.okAfter)
			}
			if tc.want == notYet && err.Error() != "waiting for it: not yet" {
				t.Errorf("error %q does not say what was awaited", err)
			}
		})
	}
}

func TestSleep(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want bool
	}{
		{"passes", context.Background(), time.Millisecond, true},
		{"nothing to wait", context.Background(), 0, true},
		{"ctx ended", cancelled, time.Hour, false},
		{"nothing to wait, ctx ended", cancelled, 0, false},
	} {
		if got := Sleep(tc.ctx, tc.d); got != tc.want {
			t.Errorf("%s: Sleep = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		lo, hi  time.Duration // bounds of the jittered delay
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 200 * time.Millisecond, 400 * time.Millisecond},
		{10, 500 * time.Millisecond, time.Second}, // capped
	} {
		for range 50 {
			if d := Backoff(tc.attempt, 100*time.Millisecond, time.Second); d < tc.lo || d > tc.hi {
				t.Fatalf("Backoff(%d) = %v, want in [%v, %v]", tc.attempt, d, tc.lo, tc.hi)
			}
		}
	}
}

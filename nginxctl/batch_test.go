package nginxctl

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// batchRun marks at the given offsets (on synctest's fake clock) and
// returns when each due batch was taken, relative to the start, and its
// size. Each batch is "applied" for applyTime.
func batchRun(t *testing.T, minWait, maxWait, applyTime time.Duration, marks []time.Duration) (due []time.Duration, sizes []int) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		b := NewBatch(minWait, maxWait)
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for _, at := range marks {
				time.Sleep(time.Until(start.Add(at)))
				b.Mark()
			}
		})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				n := b.Wait(ctx)
				if ctx.Err() != nil {
					return
				}
				due = append(due, time.Since(start))
				sizes = append(sizes, n)
				time.Sleep(applyTime)
			}
		}()
		wg.Wait()
		time.Sleep(2 * maxWait) // let the last batch fall due
		synctest.Wait()
		cancel()
		<-done
	})
	return due, sizes
}

func every(step, until time.Duration) []time.Duration {
	var out []time.Duration
	for at := time.Duration(0); at < until; at += step {
		out = append(out, at)
	}
	return out
}

func TestBatch(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name      string
		marks     []time.Duration
		applyTime time.Duration
		wantDue   []time.Duration
		wantSizes []int
	}{
		{
			name:      "one change applies at once",
			marks:     []time.Duration{0},
			wantDue:   []time.Duration{0},
			wantSizes: []int{1},
		},
		{
			name:      "isolated changes each apply at once",
			marks:     []time.Duration{0, 1500 * ms, 3 * time.Second},
			wantDue:   []time.Duration{0, 1500 * ms, 3 * time.Second},
			wantSizes: []int{1, 1, 1},
		},
		{
			name:      "a change soon after another waits for min",
			marks:     []time.Duration{0, 300 * ms},
			wantDue:   []time.Duration{0, 1300 * ms},
			wantSizes: []int{1, 1},
		},
		{
			name:      "a burst of 1,000 changes in 2 s: the first at once, the rest one min after the last",
			marks:     every(2*ms, 2*time.Second),
			applyTime: 50 * ms,
			wantDue:   []time.Duration{0, 2998 * ms},
			wantSizes: []int{1, 999},
		},
		{
			name:      "changes that never stop are cut by max",
			marks:     every(300*ms, 12*time.Second),
			wantDue:   []time.Duration{0, 5300 * ms, 10400 * ms, 12700 * ms},
			wantSizes: []int{1, 17, 17, 5},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			due, sizes := batchRun(t, time.Second, 5*time.Second, tc.applyTime, tc.marks)
			if !slices.Equal(due, tc.wantDue) || !slices.Equal(sizes, tc.wantSizes) {
				t.Errorf("batches due at %v with sizes %v, want %v with %v", due, sizes, tc.wantDue, tc.wantSizes)
			}
			total := 0
			for _, n := range sizes {
				total += n
			}
			if total != len(tc.marks) {
				t.Errorf("batches hold %d marks, want %d", total, len(tc.marks))
			}
		})
	}
}

func TestBatchWaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBatch(time.Second, 5*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if n := b.Wait(ctx); n != 0 || ctx.Err() == nil {
			t.Fatalf("Wait = %d before ctx ended", n)
		}
	})
}

package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
)

// TestConcurrentAllocationsNeverTwice runs 64 clients, each allocating and
// releasing 10,000 times with no cooldown (so addresses are reused as soon
// as possible), and checks that no address is ever held by two apps: a
// client marks an address as its own when Allocate returns and unmarks it
// before Release, so a second owner finds the mark still set.
func TestConcurrentAllocationsNeverTwice(t *testing.T) {
	clients, rounds := 64, 10_000
	if testing.Short() {
		rounds = 500
	}
	cfg := testConfig(t, 24) // 253 addresses for 64 clients holding up to 3 each
	cfg.Cooldown = 0
	clock := newClock()
	p, path := newTestPool(t, cfg, clock, WithoutSync())

	var owners sync.Map // netip.Addr → app
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			ctx := context.Background()
			for i := range rounds {
				// Three apps per client, released together, so some requests find
				// the app's own address still allocated or cooling.
				app := fmt.Sprintf("/c%d/app%d", c, i%3)
				a, _, err := p.Allocate(ctx, app)
				if err != nil {
					t.Errorf("%s: %v", app, err)
					return
				}
				if prev, taken := owners.LoadOrStore(a.Addr, app); taken && prev != app {
					t.Errorf("%s given to %s while %s holds it", a.Addr, app, prev)
					return
				}
				if i%3 == 2 {
					for k := range 3 {
						held := fmt.Sprintf("/c%d/app%d", c, k)
						if got, ok := p.Get(held); ok {
							owners.Delete(got.Addr)
						}
						if _, err := p.Release(ctx, held); err != nil {
							t.Errorf("release %s: %v", held, err)
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()

	// The store agrees with the view: reopen and compare.
	want := p.List("")
	checkUnique(t, want)
	p.Close()
	q := openTest(t, path, cfg, WithClock(clock.Now))
	if got := q.List(""); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reopened store differs from the view:\n%v\n%v", got, want)
	}
}

// checkUnique fails when an app holds two addresses.
func checkUnique(t *testing.T, records []Allocation) {
	t.Helper()
	byApp := map[string]netip.Addr{}
	for _, r := range records {
		if r.State != Allocated {
			continue
		}
		if prev, ok := byApp[r.App]; ok {
			t.Fatalf("%s holds %s and %s", r.App, prev, r.Addr)
		}
		byApp[r.App] = r.Addr
	}
}

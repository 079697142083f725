package ipam

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

// BenchmarkDurableAllocations: 64 clients allocate new apps at once, each
// allocation synced to disk before it is acknowledged. group-commit is the
// pool as it runs (one transaction for what waits, up to 256); tx-per-alloc
// is the baseline of one fsync'd transaction per allocation. Run with
// -benchtime=Nx, N below 65,000 (the pool is a /16).
func BenchmarkDurableAllocations(b *testing.B) {
	for _, bc := range []struct {
		name  string
		batch int
	}{{"group-commit", 256}, {"tx-per-alloc", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(b, 16)
			if b.N > cfg.Size() {
				b.Skipf("b.N %d is more than the pool's %d addresses", b.N, cfg.Size())
			}
			p, _ := newTestPool(b, cfg, newClock(), WithMaxBatch(bc.batch))
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for c := range 64 {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, _, err := p.Allocate(context.Background(), fmt.Sprintf("/bench/c%d/a%d", c, i)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "allocs/s")
		})
	}
}

// benchApps is n Marathon apps each on its own address of cfg's pool.
func benchApps(cfg Config, n int) []marathon.Application {
	addrs := cfg.Addresses()
	apps := make([]marathon.Application, n)
	for i := range apps {
		labels := map[string]string{cfg.IPLabel: addrs[i].String()}
		apps[i] = marathon.Application{ID: fmt.Sprintf("/env%d/app%d", i%50, i), Labels: &labels}
	}
	return apps
}

// BenchmarkRestart10k opens (and closes) a pool whose store holds 10,000
// allocations: what a restart of nginxctl costs before it serves.
func BenchmarkRestart10k(b *testing.B) {
	cfg := testConfig(b, 18)
	path := filepath.Join(b.TempDir(), "pool.db")
	p := openTest(b, path, cfg, AssumeNew(), WithoutSync())
	var wg sync.WaitGroup
	for c := range 64 {
		wg.Go(func() {
			for i := c; i < 10_000; i += 64 {
				if _, _, err := p.Allocate(context.Background(), fmt.Sprintf("/app%d", i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	p.Close()
	for b.Loop() {
		q, err := Open(path, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if n := q.Stats().Allocated; n != 10_000 {
			b.Fatalf("reopened with %d allocations", n)
		}
		q.Close()
	}
}

// BenchmarkRebuild10k rebuilds a lost store from 10,000 Marathon apps:
// open an empty store, read the apps' addresses, reconcile (adopt 10,000,
// hold the other 6,381 addresses of the /18), fsync'd.
func BenchmarkRebuild10k(b *testing.B) {
	cfg := testConfig(b, 18)
	apps := benchApps(cfg, 10_000)
	dir := b.TempDir()
	i := 0
	for b.Loop() {
		i++
		p, err := Open(filepath.Join(dir, fmt.Sprintf("pool%d.db", i)), cfg, WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			b.Fatal(err)
		}
		observed, errs := ObservedFromApps(apps, cfg.IPLabel)
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		rep, err := p.Reconcile(observed, time.Now())
		if err != nil || !rep.Rebuilt || len(rep.Adopted) != 10_000 {
			b.Fatalf("rebuild: %v, adopted %d", err, len(rep.Adopted))
		}
		p.Close()
	}
}

// BenchmarkReconcile10k is a steady-state reconcile of 10,000 apps that
// all match the pool: the cost of each watcher snapshot.
func BenchmarkReconcile10k(b *testing.B) {
	cfg := testConfig(b, 18)
	apps := benchApps(cfg, 10_000)
	observed, _ := ObservedFromApps(apps, cfg.IPLabel)
	p, _ := newTestPool(b, cfg, newClock())
	if _, err := p.Reconcile(observed, time.Now()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Reconcile(observed, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

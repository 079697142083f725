package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/ipam"
	"github.com/oakdns/oak/watcher"
)

// poolConfig is the default pool on subnet with gateway.
func poolConfig(t testing.TB, subnet, gateway string) ipam.Config {
	t.Helper()
	spec := ipam.DefaultSpec()
	spec.Subnet, spec.Gateway = subnet, gateway
	pcfg, err := spec.Parse()
	if err != nil {
		t.Fatal(err)
	}
	return pcfg
}

// TestPoolFitsPolicy: nginxctl refuses to start with a pool whose addresses
// its own DNS policy would refuse as fixed addresses, since every deploy on
// one of them would fail.
func TestPoolFitsPolicy(t *testing.T) {
	pcfg := poolConfig(t, "10.77.0.0/24", "10.77.0.254")
	prefixes := func(ps ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range ps {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	n := len(pcfg.Addresses())
	for _, tc := range []struct {
		name string
		cfg  catalog.PolicyConfig
		want string // substring of the error; "" = fits
	}{
		{"no ip_pool", catalog.PolicyConfig{}, ""},
		{"inside an ip_pool", catalog.PolicyConfig{IPPools: prefixes("10.99.0.0/16", "10.77.0.0/16")}, ""},
		{"outside every ip_pool", catalog.PolicyConfig{IPPools: prefixes("10.99.0.0/16")},
			"the policy refuses " + strconv.Itoa(n) + " of the pool's " + strconv.Itoa(n) + " addresses as an app's OAK_IP (first 10.77.0.1: IP 10.77.0.1 is outside every ip_pool)"},
		{"half inside", catalog.PolicyConfig{IPPools: prefixes("10.77.0.0/25")}, "(first 10.77.0.127: IP 10.77.0.127 is the network or broadcast address of ip_pool 10.77.0.0/25)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			policy, err := catalog.NewPolicy(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = poolFitsPolicy(pcfg, policy)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("poolFitsPolicy = %v, want %q", err, tc.want)
			}
		})
	}
}

// countingPool counts reconciles and keeps the last observation.
type countingPool struct {
	mu    sync.Mutex
	calls int
	last  []ipam.Observed
}

func (p *countingPool) Reconcile(observed []ipam.Observed, _ time.Time) (ipam.Report, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.last = observed
	return ipam.Report{}, nil
}

func (p *countingPool) count() (int, []ipam.Observed) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls, p.last
}

// fakeSource serves the snapshot it is given.
type fakeSource struct {
	snap atomic.Pointer[catalog.Snapshot]
}

func (f *fakeSource) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeSource) Snapshot() *catalog.Snapshot   { return f.snap.Load() }
func (f *fakeSource) Ready() bool                   { return f.snap.Load() != nil }
func (f *fakeSource) Status() watcher.Status        { return watcher.Status{} }

// TestReconcileSkipsUnchangedAddrs: the pool is reconciled with a new
// snapshot only when its fixed addresses changed, and on the period
// whatever happened.
func TestReconcileSkipsUnchangedAddrs(t *testing.T) {
	policy, err := catalog.NewPolicy(catalog.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	app := func(ip, task string) catalog.App {
		return catalog.App{ID: "/db", Labels: map[string]string{"OAK_NAMES": "db.example.com", "OAK_IP": ip},
			Tasks: []catalog.Task{{ID: task, State: "TASK_RUNNING", Host: "192.0.2.1"}}}
	}
	first := catalog.Build(policy, []catalog.App{app("10.0.0.1", "db.1")})

	t.Run("snapshots", func(t *testing.T) {
		pool, publish := startReconcile(t, first, time.Hour)
		waitReconciles(t, pool, "first snapshot", 1)
		s := first
		for i := range 20 { // task changes: nothing to reconcile
			s = s.Apply([]catalog.App{app("10.0.0.1", fmt.Sprintf("db.%d", i+2))}, nil)
			publish(s)
			time.Sleep(time.Millisecond)
		}
		publish(s.Apply([]catalog.App{app("10.0.0.2", "db.30")}, nil)) // a new address
		waitReconciles(t, pool, "new address", 2)
		if n, last := pool.count(); n != 2 || len(last) != 1 || last[0].Addr.String() != "10.0.0.2" {
			t.Fatalf("after 20 task changes and one new address: %d reconciles, last %v", n, last)
		}
	})
	t.Run("period", func(t *testing.T) {
		pool, _ := startReconcile(t, first, 20*time.Millisecond)
		waitReconciles(t, pool, "period, nothing changed", 3)
	})
}

// startReconcile runs reconcile on a counting pool and a source serving
// first, until the test ends; publish serves another snapshot and says so.
func startReconcile(t *testing.T, first *catalog.Snapshot, period time.Duration) (*countingPool, func(*catalog.Snapshot)) {
	ctx, cancel := context.WithCancel(context.Background())
	pool, src, changed := &countingPool{}, &fakeSource{}, make(chan struct{}, 1)
	publish := func(s *catalog.Snapshot) {
		src.snap.Store(s)
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	publish(first)
	done := make(chan struct{})
	go func() {
		defer close(done)
		reconcile(ctx, pool, src, changed, period, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() { cancel(); <-done })
	return pool, publish
}

// waitReconciles waits until pool has reconciled at least want times.
func waitReconciles(t *testing.T, pool *countingPool, stage string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := pool.count(); n >= want {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%s: %d reconciles, want %d", stage, n, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkPoolSync: the IP pool's reconcile per watcher snapshot, on a
// real pool of 10,000 deployed fixed-address apps, when the snapshot is a
// task change: "task-change" as nginxctl now does it (skipped: the fixed
// addresses did not change), "every-snapshot" as it did before (the whole
// reconcile each time; also what the period costs).
func BenchmarkPoolSync(b *testing.B) {
	pcfg := poolConfig(b, "10.199.0.0/18", "10.199.63.254")
	pool, err := ipam.Open(filepath.Join(b.TempDir(), "pool.db"), pcfg, ipam.AssumeNew(), ipam.WithoutSync())
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	policy, err := catalog.NewPolicy(catalog.PolicyConfig{})
	if err != nil {
		b.Fatal(err)
	}
	addrs := pcfg.Addresses()
	app := func(i, task int) catalog.App {
		return catalog.App{ID: fmt.Sprintf("/app%d", i), Labels: map[string]string{"OAK_NAMES": fmt.Sprintf("app%d.example.com", i), "OAK_IP": addrs[i].String()},
			Tasks: []catalog.Task{{ID: fmt.Sprintf("app%d.%d", i, task), State: "TASK_RUNNING", Host: "192.0.2.1"}}}
	}
	apps := make([]catalog.App, 10000)
	for i := range apps {
		apps[i] = app(i, 0)
	}
	s := catalog.Build(policy, apps)
	next := make([]*catalog.Snapshot, 64)
	for i := range next {
		s = s.Apply([]catalog.App{app(i*97, i+1)}, nil) // a task change
		next[i] = s
	}
	for _, bc := range []struct {
		name string
		due  bool
	}{{"task-change", false}, {"every-snapshot", true}} {
		b.Run(bc.name, func(b *testing.B) {
			ps := &poolSync{pool: pool, log: slog.New(slog.DiscardHandler)}
			if !ps.sync(next[0], true) {
				b.Fatal("the first reconcile failed")
			}
			if st := pool.Stats(); st.Allocated != 10000 {
				b.Fatalf("pool %+v, want 10,000 allocated", st)
			}
			reconciled := 0
			for i := 0; b.Loop(); i++ {
				if ps.sync(next[i%len(next)], bc.due) {
					reconciled++
				}
			}
			b.ReportMetric(float64(reconciled)/float64(b.N), "reconciles/op")
		})
	}
}

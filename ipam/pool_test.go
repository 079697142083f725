package ipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// testConfig is a pool of the host addresses .1 to .(2^(32-bits)-2) of
// 10.77.0.0/bits minus the gateway (the last host address).
func testConfig(t testing.TB, bits int) Config {
	t.Helper()
	subnet := netip.PrefixFrom(netip.MustParseAddr("10.77.0.0"), bits)
	cfg := Config{
		Network: "oak-test", Bridge: "br-oak-test", Subnet: subnet,
		Gateway:  addrOf(u32(lastOf(subnet)) - 1),
		Cooldown: 10 * time.Minute, Grace: 2 * time.Minute, IPLabel: DefaultIPLabel,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func openTest(t testing.TB, path string, cfg Config, opts ...Option) *Pool {
	t.Helper()
	p, err := Open(path, cfg, append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// newPool opens a new pool in a temporary directory on clock.
func newTestPool(t testing.TB, cfg Config, clock *fakeClock, opts ...Option) (*Pool, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pool.db")
	return openTest(t, path, cfg, append([]Option{AssumeNew(), WithClock(clock.Now)}, opts...)...), path
}

func mustAllocate(t testing.TB, p *Pool, app string, want Result) Allocation {
	t.Helper()
	a, r, err := p.Allocate(context.Background(), app)
	if err != nil {
		t.Fatalf("Allocate(%s): %v", app, err)
	}
	if r != want {
		t.Fatalf("Allocate(%s) result %s, want %s", app, r, want)
	}
	if a.App != app || a.State != Allocated || !a.Addr.IsValid() {
		t.Fatalf("Allocate(%s) = %+v", app, a)
	}
	return a
}

func TestStickyPerApp(t *testing.T) {
	p, _ := newTestPool(t, testConfig(t, 24), newClock())
	a := mustAllocate(t, p, "/team/a", ResultNew)
	b := mustAllocate(t, p, "/team/b", ResultNew)
	if a.Addr == b.Addr {
		t.Fatalf("two apps got %s", a.Addr)
	}
	if again := mustAllocate(t, p, "/team/a", ResultExisting); again.Addr != a.Addr {
		t.Fatalf("/team/a got %s then %s", a.Addr, again.Addr)
	}
	if got, ok := p.Get("/team/a"); !ok || got.Addr != a.Addr {
		t.Fatalf("Get = %+v %v", got, ok)
	}
	if _, ok := p.Get("/team/none"); ok {
		t.Fatal("Get of an unknown app found one")
	}
}

func TestNeverHandsOutReserved(t *testing.T) {
	cfg := testConfig(t, 28)
	cfg.AuxAddresses = map[string]netip.Addr{"DefaultGatewayIPv4": netip.MustParseAddr("10.77.0.1")}
	cfg.Excluded = []Range{{netip.MustParseAddr("10.77.0.2"), netip.MustParseAddr("10.77.0.4")}}
	cfg.DockerRange = netip.MustParsePrefix("10.77.0.8/30")
	p, _ := newTestPool(t, cfg, newClock())
	// 14 host addresses - gateway .14 - aux .1 - .2..4 - .8..11 = 5
	got := map[netip.Addr]bool{}
	for i := range cfg.Size() {
		a := mustAllocate(t, p, fmt.Sprintf("/a%d", i), ResultNew)
		if reason := cfg.Reserved(a.Addr); reason != "" {
			t.Errorf("handed out %s: %s", a.Addr, reason)
		}
		got[a.Addr] = true
	}
	if len(got) != 5 || cfg.Size() != 5 {
		t.Errorf("handed out %d distinct of size %d, want 5", len(got), cfg.Size())
	}
	if _, r, err := p.Allocate(context.Background(), "/one-more"); !errors.Is(err, ErrExhausted) || r != ResultExhausted {
		t.Fatalf("full pool: %v %s", err, r)
	}
}

func TestCooldownBeforeReuse(t *testing.T) {
	clock := newClock()
	p, _ := newTestPool(t, testConfig(t, 30), clock) // one address: .1 (.2 is the gateway)
	a := mustAllocate(t, p, "/a", ResultNew)
	rel, err := p.Release(context.Background(), "/a")
	if err != nil {
		t.Fatal(err)
	}
	if rel.State != Cooling || !rel.Until.Equal(clock.Now().Add(10*time.Minute)) {
		t.Fatalf("released = %+v", rel)
	}
	if _, ok := p.Get("/a"); ok {
		t.Fatal("a released app still has an allocation")
	}
	if _, _, err := p.Allocate(context.Background(), "/b"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("while cooling: %v", err)
	}
	clock.Add(10*time.Minute - time.Nanosecond)
	if _, _, err := p.Allocate(context.Background(), "/b"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("just before the cooldown ends: %v", err)
	}
	clock.Add(time.Nanosecond)
	if b := mustAllocate(t, p, "/b", ResultNew); b.Addr != a.Addr {
		t.Fatalf("after cooldown /b got %s, want %s", b.Addr, a.Addr)
	}
	if _, err := p.Release(context.Background(), "/a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("releasing an app without allocation: %v", err)
	}
}

func TestSameAppTakesBackItsCoolingAddress(t *testing.T) {
	p, _ := newTestPool(t, testConfig(t, 24), newClock())
	a := mustAllocate(t, p, "/a", ResultNew)
	if _, err := p.Release(context.Background(), "/a"); err != nil {
		t.Fatal(err)
	}
	if back := mustAllocate(t, p, "/a", ResultRestored); back.Addr != a.Addr {
		t.Fatalf("got %s back, want %s", back.Addr, a.Addr)
	}
}

func TestPrefersNeverUsedThenLongestCooled(t *testing.T) {
	cfg := testConfig(t, 29) // .1-.5 (.6 is the gateway)
	cfg.Cooldown = time.Minute
	clock := newClock()
	p, _ := newTestPool(t, cfg, clock)
	var first []netip.Addr
	for _, app := range []string{"/a", "/b", "/c"} {
		first = append(first, mustAllocate(t, p, app, ResultNew).Addr)
	}
	p.Release(context.Background(), "/b")
	clock.Add(time.Second)
	p.Release(context.Background(), "/a")
	clock.Add(time.Hour)
	// .4 and .5 were never used: they go first, then /b's (released first).
	for _, want := range []netip.Addr{netip.MustParseAddr("10.77.0.4"), netip.MustParseAddr("10.77.0.5"), first[1], first[0]} {
		if got := mustAllocate(t, p, fmt.Sprintf("/new-%s", want), ResultNew).Addr; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
}

func TestConcurrentRequestsForOneAppGetOneAddress(t *testing.T) {
	p, _ := newTestPool(t, testConfig(t, 24), newClock())
	var wg sync.WaitGroup
	addrs := make([]netip.Addr, 64)
	for i := range addrs {
		wg.Go(func() {
			a, _, err := p.Allocate(context.Background(), "/same")
			if err != nil {
				t.Error(err)
			}
			addrs[i] = a.Addr
		})
	}
	wg.Wait()
	for _, a := range addrs {
		if a != addrs[0] {
			t.Fatalf("one app got %s and %s", addrs[0], a)
		}
	}
	if n := len(p.List(Allocated)); n != 1 {
		t.Fatalf("%d allocations for one app", n)
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	clock := newClock()
	cfg := testConfig(t, 24)
	p, path := newTestPool(t, cfg, clock)
	a := mustAllocate(t, p, "/a", ResultNew)
	b := mustAllocate(t, p, "/b", ResultNew)
	if _, err := p.Release(context.Background(), "/b"); err != nil {
		t.Fatal(err)
	}
	p.Close()

	q := openTest(t, path, cfg, WithClock(clock.Now)) // no AssumeNew: the store is complete
	if q.Stats().Rebuilding {
		t.Fatal("a complete store reopened as rebuilding")
	}
	if got, ok := q.Get("/a"); !ok || got.Addr != a.Addr {
		t.Fatalf("after reopen /a = %+v %v, want %s", got, ok, a.Addr)
	}
	cooling := q.List(Cooling)
	if len(cooling) != 1 || cooling[0].Addr != b.Addr || cooling[0].App != "/b" {
		t.Fatalf("after reopen cooling = %+v", cooling)
	}
	if c := mustAllocate(t, q, "/c", ResultNew); c.Addr == a.Addr || c.Addr == b.Addr {
		t.Fatalf("after reopen /c got a held address %s", c.Addr)
	}
	q.Close()

	other := cfg
	other.Subnet = netip.MustParsePrefix("10.78.0.0/24")
	other.Gateway = netip.MustParseAddr("10.78.0.254")
	if _, err := Open(path, other); err == nil {
		t.Fatal("a store of 10.77.0.0/24 opened for another subnet")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	clock := newClock()
	p, _ := newTestPool(t, testConfig(t, 29), clock, WithRegistry(reg)) // 5 addresses
	mustAllocate(t, p, "/a", ResultNew)
	mustAllocate(t, p, "/a", ResultExisting)
	mustAllocate(t, p, "/b", ResultNew)
	p.Release(context.Background(), "/b")
	for _, c := range []struct {
		name string
		want float64
	}{{"oak_ipam_size", 5}, {"oak_ipam_allocated", 1}, {"oak_ipam_cooling", 1}, {"oak_ipam_free", 3}, {"oak_ipam_conflicts", 0}} {
		if got := gauge(t, reg, c.name); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if got := testutil.ToFloat64(p.allocs.WithLabelValues("new")); got != 2 {
		t.Errorf("allocations{result=new} = %v", got)
	}
	if got := testutil.ToFloat64(p.allocs.WithLabelValues("existing")); got != 1 {
		t.Errorf("allocations{result=existing} = %v", got)
	}
	clock.Add(time.Hour)
	if got := gauge(t, reg, "oak_ipam_free"); got != 4 {
		t.Errorf("free after the cooldown = %v, want 4", got)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestClosedPoolRefuses(t *testing.T) {
	p, _ := newTestPool(t, testConfig(t, 24), newClock())
	p.Close()
	if _, r, err := p.Allocate(context.Background(), "/a"); !errors.Is(err, ErrClosed) || r != ResultRefused {
		t.Fatalf("Allocate after Close: %v %s", err, r)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOneWriterPerStore(t *testing.T) {
	t.Parallel() // waits out the lock timeout
	cfg := testConfig(t, 24)
	_, path := newTestPool(t, cfg, newClock())
	if _, err := Open(path, cfg); err == nil || !strings.Contains(err.Error(), "another process holds it") {
		t.Fatalf("a second Open of a store in use: %v", err)
	}
}

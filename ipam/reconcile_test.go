package ipam

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	marathon "github.com/gambol99/go-marathon"
)

var ip = netip.MustParseAddr

func TestReconcileAdopts(t *testing.T) {
	clock := newClock()
	p, _ := newTestPool(t, testConfig(t, 24), clock)
	a := mustAllocate(t, p, "/a", ResultNew) // 10.77.0.1
	mustAllocate(t, p, "/gone", ResultNew)   // 10.77.0.2
	p.Release(context.Background(), "/gone")

	rep, err := p.Reconcile([]Observed{
		{App: "/a", Addr: a.Addr},              // the pool's own: now deployed
		{App: "/free", Addr: ip("10.77.0.50")}, // free: adopted
		{App: "/warm", Addr: ip("10.77.0.2")},  // cooling for another app: Marathon runs it, adopted
		{App: "/noaddr"},                       // exists without an address
	}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Conflicts) != 0 {
		t.Fatalf("conflicts: %v", rep.Conflicts)
	}
	var adopted []string
	for _, x := range rep.Adopted {
		adopted = append(adopted, x.App+"@"+x.Addr.String())
	}
	if want := []string{"/warm@10.77.0.2", "/free@10.77.0.50"}; !reflect.DeepEqual(adopted, want) {
		t.Fatalf("adopted %v, want %v", adopted, want)
	}
	for app, addr := range map[string]string{"/a": "10.77.0.1", "/free": "10.77.0.50", "/warm": "10.77.0.2"} {
		got, ok := p.Get(app)
		if !ok || got.Addr != ip(addr) || !got.Deployed {
			t.Errorf("%s: %+v %v, want deployed on %s", app, got, ok, addr)
		}
	}
	// Adopted addresses are never handed out again.
	for i := 0; i < 200; i++ {
		if got := mustAllocate(t, p, "/n"+string(rune('a'+i%26))+strings.Repeat("x", i/26), ResultNew); got.Addr == ip("10.77.0.50") || got.Addr == ip("10.77.0.2") {
			t.Fatalf("handed out adopted %s", got.Addr)
		}
	}
}

func TestReconcileConflicts(t *testing.T) {
	clock := newClock()
	cfg := testConfig(t, 24)
	cfg.Excluded = []Range{{ip("10.77.0.100"), ip("10.77.0.100")}}
	p, _ := newTestPool(t, cfg, clock)
	a := mustAllocate(t, p, "/a", ResultNew)
	rep, err := p.Reconcile([]Observed{
		{App: "/a", Addr: a.Addr},
		{App: "/intruder", Addr: a.Addr},            // the pool gave it to /a
		{App: "/excluded", Addr: ip("10.77.0.100")}, // never handed out
		{App: "/elsewhere", Addr: ip("10.9.9.9")},   // outside the subnet
		{App: "/twin1", Addr: ip("10.77.0.60")},     // two apps on one free address
		{App: "/twin2", Addr: ip("10.77.0.60")},
	}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/intruder":  "the pool gave this address to /a",
		"/excluded":  "excluded range 10.77.0.100",
		"/elsewhere": "outside subnet",
		"/twin1":     "Marathon runs /twin1, /twin2 on this address",
		"/twin2":     "Marathon runs /twin1, /twin2 on this address",
	}
	if len(rep.Conflicts) != len(want) {
		t.Fatalf("conflicts %v, want %d", rep.Conflicts, len(want))
	}
	for _, c := range rep.Conflicts {
		if !strings.Contains(c.Reason, want[c.App]) {
			t.Errorf("conflict %v, want reason %q", c, want[c.App])
		}
	}
	if got, _ := p.Get("/a"); got.Addr != a.Addr {
		t.Fatalf("a conflict moved /a: %+v", got)
	}
	for _, app := range []string{"/intruder", "/twin1", "/twin2"} {
		if _, ok := p.Get(app); ok {
			t.Errorf("%s got an allocation from a conflict", app)
		}
	}
	// The contested address is in use: it is held, not handed out.
	held := false
	for _, c := range p.List(Cooling) {
		held = held || c.Addr == ip("10.77.0.60")
	}
	if !held {
		t.Fatal("the address two apps run on is not held")
	}
	if s := p.Stats(); len(s.Conflicts) != 5 {
		t.Fatalf("Stats.Conflicts = %v", s.Conflicts)
	}
}

func TestReconcileMovesAnAppToWhereMarathonRunsIt(t *testing.T) {
	clock := newClock()
	p, _ := newTestPool(t, testConfig(t, 24), clock)
	old := mustAllocate(t, p, "/a", ResultNew)
	if _, err := p.Reconcile([]Observed{{App: "/a", Addr: ip("10.77.0.40")}}, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Get("/a"); got.Addr != ip("10.77.0.40") {
		t.Fatalf("/a on %s, want 10.77.0.40", got.Addr)
	}
	cooling := p.List(Cooling)
	if len(cooling) != 1 || cooling[0].Addr != old.Addr {
		t.Fatalf("the old address is not cooling: %+v", cooling)
	}
}

func TestReconcileReleasesOnlyAfterGrace(t *testing.T) {
	clock := newClock()
	cfg := testConfig(t, 24)
	p, _ := newTestPool(t, cfg, clock)
	deployed := mustAllocate(t, p, "/deployed", ResultNew)
	mustAllocate(t, p, "/undeployed", ResultNew)
	mustAllocate(t, p, "/back", ResultNew)
	reconcile := func(obs ...Observed) Report {
		t.Helper()
		rep, err := p.Reconcile(obs, clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	back, _ := p.Get("/back")
	reconcile(Observed{App: "/deployed", Addr: deployed.Addr}, Observed{App: "/back", Addr: back.Addr})

	for _, step := range []struct {
		advance  time.Duration
		observed []Observed
		pending  []string
		released []string
	}{
		{0, nil, []string{"/back", "/deployed"}, nil},                         // first miss
		{cfg.Grace - time.Second, nil, []string{"/back", "/deployed"}, nil},   // inside the grace period
		{0, []Observed{{App: "/back"}}, []string{"/deployed"}, nil},           // /back exists again: its clock stops
		{time.Second, []Observed{{App: "/back"}}, nil, []string{"/deployed"}}, // two misses a grace period apart
		{time.Hour, nil, []string{"/back"}, nil},                              // /back's clock starts over
		{cfg.Grace, nil, nil, []string{"/back"}},
	} {
		clock.Add(step.advance)
		rep := reconcile(step.observed...)
		var released []string
		for _, r := range rep.Released {
			released = append(released, r.App)
			if r.State != Cooling {
				t.Errorf("released %+v is not cooling", r)
			}
		}
		if !reflect.DeepEqual(rep.Pending, step.pending) || !reflect.DeepEqual(released, step.released) {
			t.Fatalf("at +%v: pending %v released %v, want %v %v", step.advance, rep.Pending, released, step.pending, step.released)
		}
	}
	if _, ok := p.Get("/undeployed"); !ok {
		t.Fatal("an allocation never seen in Marathon was released")
	}
}

func TestRebuildFromObservations(t *testing.T) {
	clock := newClock()
	cfg := testConfig(t, 28) // 13 addresses: .1-.13
	path := filepath.Join(t.TempDir(), "pool.db")
	p := openTest(t, path, cfg, WithClock(clock.Now))
	if !p.Stats().Rebuilding {
		t.Fatal("an empty store is not rebuilding")
	}
	if _, _, err := p.Allocate(context.Background(), "/x"); !errors.Is(err, ErrRebuilding) {
		t.Fatalf("Allocate while rebuilding: %v", err)
	}
	rep, err := p.Reconcile([]Observed{{App: "/a", Addr: ip("10.77.0.3")}, {App: "/b", Addr: ip("10.77.0.7")}, {App: "/c"}}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Rebuilt || len(rep.Adopted) != 2 || rep.Held != 11 {
		t.Fatalf("report %+v", rep)
	}
	s := p.Stats()
	if s.Rebuilding || s.Allocated != 2 || s.Cooling != 11 || s.Free != 0 {
		t.Fatalf("stats %+v", s)
	}
	if _, _, err := p.Allocate(context.Background(), "/new"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("a rebuilt pool handed out an unaccounted address: %v", err)
	}
	clock.Add(cfg.Cooldown)
	mustAllocate(t, p, "/new", ResultNew)
	p.Close()

	// Complete now: reopening does not rebuild again.
	q := openTest(t, path, cfg, WithClock(clock.Now))
	if q.Stats().Rebuilding {
		t.Fatal("reopened a rebuilt store as rebuilding")
	}
}

func TestObservedFromApps(t *testing.T) {
	labels := func(kv ...string) *map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return &m
	}
	docker := func(ip string) *marathon.Container {
		return &marathon.Container{Docker: &marathon.Docker{Parameters: &[]marathon.Parameters{{Key: "net", Value: "oak-net"}, {Key: "ip", Value: ip}}}}
	}
	apps := []marathon.Application{
		{ID: "/label", Labels: labels("OAK_IP", "10.77.0.1")},
		{ID: "/param", Container: docker("10.77.0.2")},
		{ID: "/both", Labels: labels("OAK_IP", "10.77.0.3"), Container: docker("10.77.0.3")},
		{ID: "/disagree", Labels: labels("OAK_IP", "10.77.0.4"), Container: docker("10.77.0.5")},
		{ID: "/junk", Labels: labels("OAK_IP", "10.77.0.300")},
		{ID: "/none"},
	}
	got, errs := ObservedFromApps(apps, "OAK_IP")
	want := []Observed{
		{"/label", ip("10.77.0.1")}, {"/param", ip("10.77.0.2")}, {"/both", ip("10.77.0.3")},
		{"/disagree", netip.Addr{}}, {"/junk", netip.Addr{}}, {"/none", netip.Addr{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "disagree") || !strings.Contains(errs[1].Error(), "/junk") {
		t.Fatalf("errors %v", errs)
	}
}

// TestJudgeContainers covers ScanConflicts' rule without a Docker engine
// (TestContainersOnPoolAddressesOnDocker runs it against one).
func TestJudgeContainers(t *testing.T) {
	p, _ := newTestPool(t, testConfig(t, 24), newClock())
	a := mustAllocate(t, p, "/a", ResultNew)
	b := mustAllocate(t, p, "/b", ResultNew)
	p.Release(context.Background(), "/b")
	for _, tc := range []struct {
		addr          netip.Addr
		app           string
		reason, owner string
	}{
		{a.Addr, "/a", "", ""},
		{a.Addr, "/x", "the pool gave this address to /a", "/a"},
		{a.Addr, "", "has no MARATHON_APP_ID", "/a"},
		{b.Addr, "/b", "cooling down (last held by /b)", ""},
		{ip("10.77.0.99"), "/x", "has not given this address", ""},
		{ip("10.77.0.99"), "", "has no MARATHON_APP_ID", ""},
	} {
		reason, owner := p.judge(tc.addr, tc.app)
		if (tc.reason == "") != (reason == "") || !strings.Contains(reason, tc.reason) || owner != tc.owner {
			t.Errorf("judge(%s, %q) = %q, %q; want %q, %q", tc.addr, tc.app, reason, owner, tc.reason, tc.owner)
		}
	}
}

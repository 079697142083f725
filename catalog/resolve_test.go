package catalog

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fallbackCluster has a three-level chain feature-* -> staging ->
// integration and apps in various states.
func fallbackCluster(t testing.TB) *Snapshot {
	p := mustPolicy(t, PolicyConfig{
		Fallback: []FallbackRule{{"feature-*", "staging"}},
		CIDRs:    []CIDRRule{{netip.MustParsePrefix("10.8.0.0/16"), "feature-office"}},
	})
	return Build(p, []App{
		testApp("/int/redis", labels("", "redis.example.com", "OAK_HTTP", "redis.example.com,admin.example.com:8080"), running("10.0.0.1")),
		testApp("/int/db", labels("", "db.example.com"), running("10.0.0.2")),
		testApp("/int/mq", labels("", "mq.example.com")), // registered, never live
		testApp("/stg/db", labels("staging", "db.example.com"), running("10.0.1.2")),
		testApp("/fx/redis", labels("feature-x", "redis.example.com", "OAK_HTTP", "redis.example.com"), running("10.0.2.1")),
		withHealthChecks(testApp("/fx/db", labels("feature-x", "db.example.com"), health(running("10.0.2.2"), false))),
		testApp("/fx/mq", labels("feature-x", "mq.example.com", "OAK_IP", "10.0.2.3", "OAK_HTTP", "mq.example.com")),
		testApp("/stg/web", labels("staging", "web.example.com", "OAK_HTTP", "admin.example.com:8080"), running("10.0.1.5")),
	})
}

func TestResolve(t *testing.T) {
	s := fallbackCluster(t)
	tests := []struct {
		name, env, query string
		kind             Kind
		wantEnv          string // serving, holding or claiming env
		wantChain        []string
	}{
		{"own app", "feature-x", "redis.example.com", Served, "feature-x", []string{"feature-x"}},
		{"integration sees its own", "integration", "redis.example.com", Served, "integration", []string{"integration"}},
		{"other feature env falls back", "feature-y", "redis.example.com", Served, "integration", []string{"feature-y", "staging", "integration"}},
		{"none healthy in own env: next env", "feature-x", "db.example.com", Served, "staging", []string{"feature-x", "staging"}},
		{"three levels", "feature-x", "web.example.com", Served, "staging", []string{"feature-x", "staging"}},
		{"staging app foreign to integration", "integration", "web.example.com", Foreign, "staging", []string{"integration"}},
		{"claimed nowhere", "feature-x", "nope.example.com", Unknown, "", []string{"feature-x", "staging", "integration"}},
		{"claimed but not live anywhere: held", "feature-x", "mq.example.com", Held, "feature-x", []string{"feature-x", "staging", "integration"}},
		{"held by the default env", "integration", "mq.example.com", Held, "integration", []string{"integration"}},
		{"default env by empty string", "", "db.example.com", Served, "integration", []string{"integration"}},
		{"trailing dot", "staging", "db.example.com.", Served, "staging", []string{"staging"}},
		{"env with no apps, from a CIDR rule", "feature-office", "db.example.com", Served, "staging", []string{"feature-office", "staging"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Resolve(tc.env, tc.query)
			if got.Kind != tc.kind || got.Env != tc.wantEnv || !reflect.DeepEqual(got.Chain, tc.wantChain) {
				t.Errorf("Resolve(%s, %s) = %v env %q chain %v; want %v %q %v",
					tc.env, tc.query, got.Kind, got.Env, got.Chain, tc.kind, tc.wantEnv, tc.wantChain)
			}
			if (got.Service != nil) != (tc.kind == Served) {
				t.Fatalf("service %+v for kind %v", got.Service, got.Kind)
			}
			if got.Service != nil && (got.Service.Env != tc.wantEnv || len(got.Service.Addrs) == 0 || got.Service.Name != strings.TrimSuffix(tc.query, ".")) {
				t.Errorf("bad service %+v", got.Service)
			}
		})
	}
}

// TestResolveBelowAndAbove: names below a claimed name are decided by it;
// names with claimed names below them exist (RFC 8020), in the forward and
// the reverse tree.
func TestResolveBelowAndAbove(t *testing.T) {
	s := Build(mustPolicy(t, PolicyConfig{}), []App{
		testApp("/fx/redis", labels("feature-x", "redis1.db.example.com"), running("10.0.1.1")),
		testApp("/int/p", labels("", "p.example.com")), // held
		testApp("/int/c", labels("", "c.p.example.com"), running("10.0.1.2")),
		testApp("/int/web", labels("", "web.example.com"), running("2001:db8::7")),
		testApp("/fy/only", labels("feature-y", "only.example.org"), running("10.0.2.1")),
	})
	tests := []struct {
		env, query string
		kind       Kind
		base       string
		children   bool
	}{
		{"feature-x", "db.example.com", EmptyNonTerminal, "", true},
		{"integration", "db.example.com", EmptyNonTerminal, "", true},
		{"integration", "example.com", EmptyNonTerminal, "", true},
		{"integration", "com", EmptyNonTerminal, "", true},
		{"integration", "p.example.com", Held, "", true}, // held with a live child: NODATA, not NXDOMAIN
		{"integration", "c.p.example.com", Served, "", false},
		{"integration", "x.c.p.example.com", BelowServed, "c.p.example.com", false},
		{"integration", "_http._tcp.c.p.example.com", BelowServed, "c.p.example.com", false},
		{"integration", "x.p.example.com", Held, "p.example.com", false},
		{"integration", "x.redis1.db.example.com", Foreign, "redis1.db.example.com", false},
		{"integration", "redis1.db.example.com", Foreign, "", false},
		{"feature-x", "x.redis1.db.example.com", BelowServed, "redis1.db.example.com", false},
		{"integration", "nosuch.example.com", Unknown, "", false},
		{"integration", "ample.com", Unknown, "", false},
		{"integration", "", Unknown, "", false},
		{"integration", "1.1.0.10.in-addr.arpa", Unknown, "", false}, // the PTR owner itself: Reverse answers it
		{"integration", "1.0.10.in-addr.arpa", EmptyNonTerminal, "", true},
		{"integration", "in-addr.arpa", EmptyNonTerminal, "", true},
		{"integration", "9.0.10.in-addr.arpa", Unknown, "", false},
		{"integration", "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", EmptyNonTerminal, "", true},
		{"integration", "8.b.d.0.1.0.0.2.ip6.arpa", EmptyNonTerminal, "", true},
	}
	for _, tc := range tests {
		got := s.Resolve(tc.env, tc.query)
		if got.Kind != tc.kind || got.Base != tc.base || got.Children != tc.children {
			t.Errorf("Resolve(%s, %q) = %v base %q children %v; want %v %q %v",
				tc.env, tc.query, got.Kind, got.Base, got.Children, tc.kind, tc.base, tc.children)
		}
		if got.Kind == BelowServed && (got.Service == nil || got.Service.Name != tc.base) {
			t.Errorf("Resolve(%s, %q): below-served service %+v", tc.env, tc.query, got.Service)
		}
	}
	// The reverse tree follows the live backends.
	after := s.Apply([]App{testApp("/int/c", labels("", "c.p.example.com"))}, nil)
	if got := after.Resolve("integration", "1.0.10.in-addr.arpa"); got.Kind != EmptyNonTerminal {
		t.Errorf("10.0.1.1 is still live: %v", got.Kind)
	}
	if got := after.Resolve("integration", "2.1.0.10.in-addr.arpa"); got.Kind != Unknown {
		t.Errorf("10.0.1.2 is no backend any more: %v", got.Kind)
	}
	if got := after.Resolve("integration", "p.example.com"); got.Kind != Held || !got.Children {
		t.Errorf("p.example.com after c went down: %+v; c.p.example.com is still claimed below it", got)
	}
	if got := after.Apply(nil, []string{"/int/c"}).Resolve("integration", "p.example.com"); got.Kind != Held || got.Children {
		t.Errorf("p.example.com after c was deleted: %+v", got)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Unknown: "unknown", Served: "served", Held: "held", Foreign: "foreign",
		BelowServed: "below-served", EmptyNonTerminal: "empty-non-terminal", 99: "invalid"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", k, k.String(), want)
		}
	}
}

func TestEnvOf(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{CIDRs: []CIDRRule{
		{netip.MustParsePrefix("10.0.0.0/8"), "lab"},
		{netip.MustParsePrefix("10.9.0.0/16"), "feature-vpn"},
	}})
	s := Build(p, []App{
		testApp("/fx/web", labels("feature-x", "web.example.com", "OAK_IP", "10.199.45.23"), running("172.17.0.2")),
		testApp("/plain", nil, running("10.199.45.30")),
		testApp("/fy/a", labels("feature-y", ""), running("10.199.45.40")),
		testApp("/fz/b", labels("feature-z", ""), running("10.199.45.40")),
		testApp("/fz/c", labels("feature-z", ""), running("10.199.45.50")),
		testApp("/fz/d", labels("feature-z", "", "OAK_IP", "10.199.45.50")),
		testApp("/stopped", labels("feature-q", ""), task("TASK_FINISHED", "h", "10.199.45.60")),
	})
	tests := []struct {
		addr string
		env  string
		how  Classification
	}{
		{"10.199.45.23", "feature-x", ByApp},               // OAK_IP
		{"172.17.0.2", "feature-x", ByApp},                 // running task IP
		{"::ffff:10.199.45.23", "feature-x", ByApp},        // mapped form
		{"10.199.45.30", "integration", ByApp},             // an app without labels
		{"10.199.45.40", "integration", ByConflict},        // two envs
		{"10.199.45.50", "feature-z", ByApp},               // two apps, one env
		{"10.199.45.60", "lab", ByCIDR},                    // a finished task claims nothing
		{"10.9.1.1", "feature-vpn", ByCIDR},                // most specific prefix
		{"192.0.2.1", "integration", ByDefault},            // nothing matches
		{"2001:db8::1", "integration", ByDefault},          // nothing matches
		{"fe80::1%eth0", "integration", ByDefault},         // zone ignored
		{"invalid", "integration", ByDefault},              // the zero Addr
		{"::ffff:10.199.45.23%x", "feature-x", ByApp},      // zone ignored
		{"::ffff:10.199.45.40", "integration", ByConflict}, // mapped conflict
	}
	for _, tc := range tests {
		var a netip.Addr
		if tc.addr != "invalid" {
			a = netip.MustParseAddr(tc.addr)
		}
		env, how := s.EnvOf(a)
		if env != tc.env || how != tc.how {
			t.Errorf("EnvOf(%s) = %s %v, want %s %v", tc.addr, env, how, tc.env, tc.how)
		}
	}
	want := []AddrConflict{{Addr: netip.MustParseAddr("10.199.45.40"), Envs: []string{"feature-y", "feature-z"}, Apps: []string{"/fy/a", "/fz/b"}}}
	if got := s.Conflicts(); !reflect.DeepEqual(got, want) {
		t.Errorf("Conflicts() = %+v, want %+v", got, want)
	}
}

func TestClassificationString(t *testing.T) {
	for c, want := range map[Classification]string{ByApp: "app", ByCIDR: "cidr", ByDefault: "default", ByConflict: "conflict", 0: "unknown"} {
		if c.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), want)
		}
	}
}

func TestReverse(t *testing.T) {
	s := Build(mustPolicy(t, PolicyConfig{}), []App{
		testApp("/a", labels("feature-x", "b.example.com,a.example.com"), running("10.0.0.1")),
		testApp("/b", labels("", "a.example.com"), running("10.0.0.1")),
		testApp("/c", labels("", "c.example.com", "OAK_IP", "10.0.0.3"), running("172.17.0.3")),
		withHealthChecks(testApp("/d", labels("", "d.example.com"), running("10.0.0.4"))),
		testApp("/e", labels("", ""), running("10.0.0.5")),
	})
	tests := []struct {
		addr string
		want []NameRef
	}{
		{"10.0.0.1", []NameRef{{"a.example.com", "feature-x"}, {"a.example.com", "integration"}, {"b.example.com", "feature-x"}}},
		{"::ffff:10.0.0.1", []NameRef{{"a.example.com", "feature-x"}, {"a.example.com", "integration"}, {"b.example.com", "feature-x"}}},
		{"10.0.0.3", []NameRef{{"c.example.com", "integration"}}},
		{"172.17.0.3", nil}, // not a backend: OAK_IP is
		{"10.0.0.4", nil},   // not live
		{"10.0.0.5", nil},   // no names
		{"192.0.2.1", nil},
	}
	for _, tc := range tests {
		if got := s.Reverse(netip.MustParseAddr(tc.addr)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Reverse(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestResolveVHost(t *testing.T) {
	s := fallbackCluster(t)
	type decision struct {
		kind Kind
		env  string
		apps []string
		ends []string // addr:port
	}
	tests := []struct {
		env, host string
		want      decision
	}{
		{"integration", "admin.example.com", decision{Served, "integration", []string{"/int/redis"}, []string{"10.0.0.1:8080"}}},
		{"integration", "redis.example.com", decision{Served, "integration", []string{"/int/redis"}, []string{"10.0.0.1:80"}}},
		{"staging", "admin.example.com", decision{Served, "staging", []string{"/stg/web"}, []string{"10.0.1.5:8080"}}},
		{"staging", "redis.example.com", decision{Served, "integration", []string{"/int/redis"}, []string{"10.0.0.1:80"}}},
		{"feature-x", "admin.example.com", decision{Served, "staging", []string{"/stg/web"}, []string{"10.0.1.5:8080"}}},
		{"feature-x", "redis.example.com", decision{Served, "feature-x", []string{"/fx/redis"}, []string{"10.0.2.1:80"}}},
		{"feature-x", "mq.example.com", decision{Held, "feature-x", nil, nil}},
		{"integration", "mq.example.com", decision{Foreign, "feature-x", nil, nil}},
		{"integration", "nope.example.com", decision{Unknown, "", nil, nil}},
	}
	for _, tc := range tests {
		got := s.ResolveVHost(tc.env, tc.host)
		d := decision{kind: got.Kind, env: got.Env}
		if got.Service != nil {
			d.apps = got.Service.Apps
			for _, b := range got.Service.Backends {
				for _, p := range b.Ports {
					d.ends = append(d.ends, netip.AddrPortFrom(b.Addr, p.Number).String())
				}
			}
		}
		if !reflect.DeepEqual(d, tc.want) {
			t.Errorf("ResolveVHost(%s, %s) = %+v, want %+v", tc.env, tc.host, d, tc.want)
		}
	}
	// When feature-x's redis goes down, its clients see integration's.
	down := s.Apply([]App{
		testApp("/fx/redis", labels("feature-x", "redis.example.com", "OAK_HTTP", "redis.example.com"), task("TASK_KILLED", "h", "10.0.2.1")),
	}, nil)
	if got := down.ResolveVHost("feature-x", "redis.example.com"); got.Kind != Served || got.Env != "integration" {
		t.Errorf("down vhost: %v by %s", got.Kind, got.Env)
	}
	if got := down.Resolve("feature-x", "redis.example.com"); got.Env != "integration" {
		t.Errorf("Resolve after down: %s", got.Env)
	}
}

// TestVHostPorts: host and host:80 are one vhost; the port is the one the
// backend serves HTTP on, translated to the task's host port under host
// networking.
func TestVHostPorts(t *testing.T) {
	hostNet := task(taskRunning, "192.0.2.7")
	hostNet.Ports = []int{31001, 31002}
	hostApp := testApp("/int/hostnet", labels("", "", "OAK_HTTP", "h.example.com:8080"), hostNet)
	hostApp.Ports = []PortSpec{{Name: "admin", Number: 9000}, {Name: "web", Number: 8080}}
	s := Build(mustPolicy(t, PolicyConfig{}), []App{
		testApp("/int/a", labels("", "", "OAK_HTTP", "a.example.com,a.example.com:80"), running("10.0.0.1")),
		testApp("/int/b", labels("", "", "OAK_HTTP", "a.example.com:8080"), running("10.0.0.2")),
		hostApp,
	})
	if got := s.VHosts(); !reflect.DeepEqual(got, []string{"a.example.com", "h.example.com"}) {
		t.Errorf("VHosts() = %v", got)
	}
	want := []Backend{
		{netip.MustParseAddr("10.0.0.1"), []Port{{"http", 80, "tcp"}}},
		{netip.MustParseAddr("10.0.0.2"), []Port{{"http", 8080, "tcp"}}},
	}
	if got := s.ResolveVHost("", "a.example.com").Service.Backends; !reflect.DeepEqual(got, want) {
		t.Errorf("a.example.com backends %+v, want %+v", got, want)
	}
	wantHost := []Backend{{netip.MustParseAddr("192.0.2.7"), []Port{{"http", 31002, "tcp"}}}}
	if got := s.ResolveVHost("", "h.example.com").Service.Backends; !reflect.DeepEqual(got, wantHost) {
		t.Errorf("host-networked backends %+v, want %+v", got, wantHost)
	}
}

func TestVHostViews(t *testing.T) {
	s := fallbackCluster(t)
	views := s.VHostViews([]string{"feature-x", "feature-y", "staging", "feature-x", "Bad Env"})
	got := map[string][]string{}
	for _, v := range views {
		for _, h := range v.Hosts {
			got[v.Env] = append(got[v.Env], h.Host+"="+h.Answer.Kind.String()+"@"+h.Answer.Env)
			// Each listed decision is exactly what ResolveVHost says.
			if want := s.ResolveVHost(v.Env, h.Host); !reflect.DeepEqual(h.Answer, want) {
				t.Errorf("%s %s: %+v, ResolveVHost says %+v", v.Env, h.Host, h.Answer, want)
			}
		}
	}
	want := map[string][]string{
		"integration": {"admin.example.com=served@integration", "redis.example.com=served@integration"},
		"staging":     {"admin.example.com=served@staging"},
		"feature-x":   {"admin.example.com=served@staging", "mq.example.com=held@feature-x", "redis.example.com=served@feature-x"},
		"feature-y":   {"admin.example.com=served@staging"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("VHostViews =\n%v\nwant\n%v", got, want)
	}
	if len(views) != 4 || views[0].Env != "feature-x" || views[3].Env != "staging" {
		t.Errorf("envs not sorted and deduped: %+v", views)
	}
}

func TestClients(t *testing.T) {
	s := Build(mustPolicy(t, PolicyConfig{}), []App{
		testApp("/fx/web", labels("feature-x", "web.example.com", "OAK_IP", "10.199.45.23"), running("172.17.0.2")),
		testApp("/fx/idle", labels("feature-x", "idle.example.com", "OAK_IP", "10.199.45.24")), // no task: no claim
		testApp("/fy/a", labels("feature-y", ""), running("10.199.45.40")),
		testApp("/fz/b", labels("feature-z", ""), running("10.199.45.40")),
	})
	want := []ClientClaim{
		{netip.MustParseAddr("10.199.45.23"), "feature-x", ByApp, []string{"/fx/web"}},
		{netip.MustParseAddr("10.199.45.40"), "integration", ByConflict, []string{"/fy/a", "/fz/b"}},
		{netip.MustParseAddr("172.17.0.2"), "feature-x", ByApp, []string{"/fx/web"}},
	}
	if got := s.Clients(); !reflect.DeepEqual(got, want) {
		t.Errorf("Clients() = %+v\nwant %+v", got, want)
	}
	for _, c := range want {
		if env, how := s.EnvOf(c.Addr); env != c.Env || how != c.How {
			t.Errorf("EnvOf(%s) = %s %v, Clients says %s %v", c.Addr, env, how, c.Env, c.How)
		}
	}
}

func TestReadsDoNotAllocate(t *testing.T) {
	s := fallbackCluster(t)
	client := netip.MustParseAddr("10.0.2.1")
	other := netip.MustParseAddr("10.8.1.1")
	reads := map[string]func(){
		"Resolve own":         func() { s.Resolve("feature-x", "redis.example.com") },
		"Resolve fallback":    func() { s.Resolve("feature-x", "db.example.com") },
		"Resolve missing":     func() { s.Resolve("feature-x", "nope.example.com") },
		"Resolve CIDR env":    func() { s.Resolve("feature-office", "db.example.com") },
		"EnvOf app":           func() { s.EnvOf(client) },
		"EnvOf CIDR":          func() { s.EnvOf(other) },
		"Reverse":             func() { s.Reverse(client) },
		"Resolve held":        func() { s.Resolve("feature-x", "mq.example.com") },
		"Resolve below":       func() { s.Resolve("feature-x", "_x._tcp.redis.example.com") },
		"Resolve empty":       func() { s.Resolve("feature-x", "example.com") },
		"ResolveVHost":        func() { s.ResolveVHost("feature-x", "admin.example.com") },
		"ResolveVHost held":   func() { s.ResolveVHost("feature-x", "mq.example.com") },
		"Resolve unknown env": func() { s.Resolve("feature-new", "db.example.com") }, // memoized after the first call
	}
	for name, read := range reads {
		read()
		if n := testing.AllocsPerRun(100, read); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}

// TestConcurrentReads runs readers against snapshots while Apply derives
// new ones and new envs fill the policy's chain memo; run with -race.
func TestConcurrentReads(t *testing.T) {
	var current atomic.Pointer[Snapshot] // as callers publish snapshots
	current.Store(fallbackCluster(t))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				env := fmt.Sprintf("feature-r%d-%d", r, i%50)
				s := current.Load()
				s.Resolve(env, "db.example.com")
				s.EnvOf(netip.MustParseAddr("10.0.2.1"))
				s.ResolveVHost(env, "redis.example.com")
			}
		}()
	}
	s := current.Load()
	for i := range 200 {
		s = s.Apply([]App{testApp("/churn", labels(fmt.Sprintf("feature-c%d", i), "db.example.com"), running("10.0.7.1"))}, nil)
		current.Store(s)
	}
	close(done)
	wg.Wait()
	if got := s.Resolve("feature-c199", "db.example.com").Service; got == nil || got.Env != "feature-c199" {
		t.Errorf("last Apply not visible: %+v", got)
	}
}

// TestClaimsFind: an env's claims are found by a scan in short lists and a
// binary search in long ones (a name every feature env runs).
func TestClaimsFind(t *testing.T) {
	for _, n := range []int{0, 1, 8, 9, 40} {
		var c claims
		for i := range n {
			c.envs = append(c.envs, envClaims{env: fmt.Sprintf("feature-%03d", i*2)})
		}
		for i := range 2*n + 1 {
			env := fmt.Sprintf("feature-%03d", i)
			got := c.find(env)
			if want := i%2 == 0 && i < 2*n; (got != nil) != want {
				t.Fatalf("%d envs: find(%s) = %v, want found %v", n, env, got, want)
			}
			if got != nil && got.env != env {
				t.Fatalf("%d envs: find(%s) returned %s", n, env, got.env)
			}
		}
		if c.find("") != nil || c.find("zzz") != nil {
			t.Fatalf("%d envs: found an env not in the list", n)
		}
	}
}

// TestFixedAddrs: every app, accepted or rejected, with the fixed address
// it declares, for the IP pool.
func TestFixedAddrs(t *testing.T) {
	mismatch := testApp("/mismatch", labels("", "m.example.com", "OAK_IP", "10.0.0.5"))
	mismatch.DockerIP = "10.0.0.6"
	dockerOnly := testApp("/docker-only", labels("", "bad_name.example.com"))
	dockerOnly.DockerIP = "10.0.0.7"
	s := Build(mustPolicy(t, PolicyConfig{}), []App{
		testApp("/fixed", labels("", "f.example.com", "OAK_IP", "10.0.0.1")), // no task: still its address
		testApp("/plain", labels("", "p.example.com"), running("10.0.0.2")),
		testApp("/bad-name", labels("", "bad_name.example.com", "OAK_IP", "10.0.0.3")),
		testApp("/loopback", labels("", "l.example.com", "OAK_IP", "127.0.0.4")),
		mismatch, dockerOnly,
	})
	want := []AppAddr{
		{"/bad-name", netip.MustParseAddr("10.0.0.3")},
		{"/docker-only", netip.MustParseAddr("10.0.0.7")},
		{"/fixed", netip.MustParseAddr("10.0.0.1")},
		{"/loopback", netip.MustParseAddr("127.0.0.4")},
		{"/mismatch", netip.Addr{}}, // label and parameter disagree: which one runs is unknown
		{"/plain", netip.Addr{}},
	}
	if got := s.FixedAddrs(); !reflect.DeepEqual(got, want) {
		t.Errorf("FixedAddrs() = %v\nwant %v", got, want)
	}
}

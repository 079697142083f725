package catalog

import (
	"fmt"
	"net/netip"
	"reflect"
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
		testApp("/fx/mq", labels("feature-x", "mq.example.com", "OAK_IP", "10.0.2.3")),
		testApp("/stg/web", labels("staging", "web.example.com", "OAK_HTTP", "admin.example.com:8080"), running("10.0.1.5")),
	})
}

func TestResolve(t *testing.T) {
	s := fallbackCluster(t)
	tests := []struct {
		name, env, query string
		wantEnv          string // serving env; "" = no service
		wantChain        []string
		wantRegistered   bool
	}{
		{"own app", "feature-x", "redis.example.com", "feature-x", []string{"feature-x"}, true},
		{"integration sees its own", "integration", "redis.example.com", "integration", []string{"integration"}, true},
		{"other feature env falls back", "feature-y", "redis.example.com", "integration", []string{"feature-y", "staging", "integration"}, true},
		{"none healthy in own env: next env", "feature-x", "db.example.com", "staging", []string{"feature-x", "staging"}, true},
		{"three levels", "feature-x", "web.example.com", "staging", []string{"feature-x", "staging"}, true},
		{"staging app invisible to integration", "integration", "web.example.com", "", []string{"integration"}, false},
		{"registered nowhere", "feature-x", "nope.example.com", "", []string{"feature-x", "staging", "integration"}, false},
		{"registered but not live anywhere", "feature-x", "mq.example.com", "", []string{"feature-x", "staging", "integration"}, true},
		{"default env by empty string", "", "db.example.com", "integration", []string{"integration"}, true},
		{"trailing dot", "staging", "db.example.com.", "staging", []string{"staging"}, true},
		{"env with no apps, from a CIDR rule", "feature-office", "db.example.com", "staging", []string{"feature-office", "staging"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Resolve(tc.env, tc.query)
			gotEnv := ""
			if got.Service != nil {
				gotEnv = got.Service.Env
				if len(got.Service.Addrs) == 0 || got.Service.Name != "db.example.com" && got.Service.Name != tc.query {
					t.Errorf("bad service %+v", got.Service)
				}
			}
			if gotEnv != tc.wantEnv || !reflect.DeepEqual(got.Chain, tc.wantChain) || got.Registered != tc.wantRegistered {
				t.Errorf("Resolve(%s, %s) = env %q chain %v registered %v; want %q %v %v",
					tc.env, tc.query, gotEnv, got.Chain, got.Registered, tc.wantEnv, tc.wantChain, tc.wantRegistered)
			}
		})
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

func TestHasSuffix(t *testing.T) {
	s := Build(mustPolicy(t, PolicyConfig{}), []App{
		testApp("/a", labels("feature-x", "redis1.db.example.com"), running("10.0.0.1")),
		testApp("/b", labels("", "mq.example.org")), // registered without live tasks
	})
	for name, want := range map[string]bool{
		"redis1.db.example.com":  true,
		"redis1.db.example.com.": true,
		"db.example.com":         true,
		"example.com":            true,
		"com":                    true,
		"mq.example.org":         true,
		"example.org":            true,
		"x.db.example.com":       false,
		"b.example.com":          false,
		"ample.com":              false,
		"":                       false,
	} {
		if got := s.HasSuffix(name); got != want {
			t.Errorf("HasSuffix(%q) = %v, want %v", name, got, want)
		}
	}
	after := s.Apply(nil, []string{"/a"})
	if after.HasSuffix("example.com") || !after.HasSuffix("org") {
		t.Errorf("suffixes not updated by Apply")
	}
}

func TestClaimed(t *testing.T) {
	s := Build(mustPolicy(t, PolicyConfig{}), []App{
		testApp("/a", labels("feature-x", "redis1.db.example.com"), running("10.0.0.1")),
		testApp("/b", labels("", "mq.example.org")), // registered without live tasks
	})
	for name, want := range map[string]bool{
		"redis1.db.example.com":  true, // in an env that is no one's default
		"redis1.db.example.com.": true,
		"mq.example.org":         true,  // no live task
		"db.example.com":         false, // empty non-terminal
		"example.org":            false,
		"nosuch.example.com":     false,
	} {
		if got := s.Claimed(name); got != want {
			t.Errorf("Claimed(%q) = %v, want %v", name, got, want)
		}
	}
	if s.Apply(nil, []string{"/a"}).Claimed("redis1.db.example.com") {
		t.Error("Claimed not updated by Apply")
	}
}

func TestVirtualHosts(t *testing.T) {
	s := fallbackCluster(t)
	type vh struct {
		host string
		port uint16
		env  string
		apps []string
	}
	tests := []struct {
		env  string
		want []vh
	}{
		{"integration", []vh{
			{"admin.example.com", 8080, "integration", []string{"/int/redis"}},
			{"redis.example.com", 0, "integration", []string{"/int/redis"}},
		}},
		{"staging", []vh{
			{"admin.example.com", 8080, "staging", []string{"/stg/web"}},
			{"redis.example.com", 0, "integration", []string{"/int/redis"}},
		}},
		{"feature-x", []vh{
			{"admin.example.com", 8080, "staging", []string{"/stg/web"}},
			{"redis.example.com", 0, "feature-x", []string{"/fx/redis"}},
		}},
	}
	for _, tc := range tests {
		got := s.VirtualHosts(tc.env)
		var flat []vh
		for _, v := range got {
			flat = append(flat, vh{v.Host, v.Port, v.Service.Env, v.Service.Apps})
			// One implementation: the vhost's service is what Resolve would pick
			// if the vhost's host were a name of the same apps.
			if v.Service.Name != v.Host {
				t.Errorf("service name %q for host %q", v.Service.Name, v.Host)
			}
		}
		if !reflect.DeepEqual(flat, tc.want) {
			t.Errorf("VirtualHosts(%s) = %+v\nwant %+v", tc.env, flat, tc.want)
		}
	}
	// When feature-x's redis goes down, its clients see integration's.
	down := s.Apply([]App{
		testApp("/fx/redis", labels("feature-x", "redis.example.com", "OAK_HTTP", "redis.example.com"), task("TASK_KILLED", "h", "10.0.2.1")),
	}, nil)
	for _, v := range down.VirtualHosts("feature-x") {
		if v.Host == "redis.example.com" && v.Service.Env != "integration" {
			t.Errorf("down vhost served by %s", v.Service.Env)
		}
	}
	if got := down.Resolve("feature-x", "redis.example.com").Service.Env; got != "integration" {
		t.Errorf("Resolve after down: %s", got)
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
		"HasSuffix":           func() { s.HasSuffix("example.com") },
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
				s.VirtualHosts(env)
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

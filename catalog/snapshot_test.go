package catalog

import (
	"fmt"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestLiveTasks(t *testing.T) {
	tests := []struct {
		name          string
		app           App
		tasks, live   int
		wantBackends  []netip.Addr
		wantEnvOfByIP bool // the task IP identifies the app for EnvOf
	}{
		{
			"running without health checks",
			testApp("/a", labels("", "a.example.com"), running("10.0.0.1")),
			1, 1, addrs("10.0.0.1"), true,
		},
		{
			"staging and killed tasks do not count",
			testApp("/a", labels("", "a.example.com"), task("TASK_STAGING", "h", "10.0.0.1"), task("TASK_KILLED", "h", "10.0.0.2")),
			0, 0, nil, false,
		},
		{
			"health checks with no results yet",
			withHealthChecks(testApp("/a", labels("", "a.example.com"), running("10.0.0.1"))),
			1, 0, nil, true,
		},
		{
			"health checks all alive",
			withHealthChecks(testApp("/a", labels("", "a.example.com"), health(running("10.0.0.1"), true, true))),
			1, 1, addrs("10.0.0.1"), true,
		},
		{
			"one failing health check",
			withHealthChecks(testApp("/a", labels("", "a.example.com"), health(running("10.0.0.1"), true, false), health(running("10.0.0.2"), true))),
			2, 1, addrs("10.0.0.2"), true,
		},
		{
			"results without health checks on the app are ignored",
			testApp("/a", labels("", "a.example.com"), health(running("10.0.0.1"), false)),
			1, 1, addrs("10.0.0.1"), true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Build(mustPolicy(t, PolicyConfig{}), []App{tc.app})
			st := s.Stats()
			if st.Tasks != tc.tasks || st.LiveTasks != tc.live {
				t.Errorf("tasks %d live %d, want %d %d", st.Tasks, st.LiveTasks, tc.tasks, tc.live)
			}
			answer := s.Resolve("integration", "a.example.com")
			var got []netip.Addr
			if answer.Service != nil {
				got = answer.Service.Addrs
			}
			if !reflect.DeepEqual(got, tc.wantBackends) {
				t.Errorf("backends %v, want %v", got, tc.wantBackends)
			}
			if answer.Kind != Served && answer.Kind != Held {
				t.Errorf("name not claimed: %v", answer.Kind)
			}
			_, how := s.EnvOf(netip.MustParseAddr("10.0.0.1"))
			if (how == ByApp) != tc.wantEnvOfByIP {
				t.Errorf("EnvOf(task ip) = %v, want ByApp %v", how, tc.wantEnvOfByIP)
			}
		})
	}
}

func TestBackendAddresses(t *testing.T) {
	ip := func(a string) map[string]string { return labels("", "a.example.com", "OAK_IP", a) }
	tests := []struct {
		name      string
		app       App
		backends  []netip.Addr
		byApp     []string // addresses EnvOf places in the app's env
		notByApp  []string // addresses EnvOf does not
		wantLive  int
		wantTasks int
	}{
		{
			"OAK_IP wins over task IPs",
			testApp("/a", ip("10.199.45.23"), running("172.17.0.2"), running("172.17.0.3")),
			addrs("10.199.45.23"), []string{"10.199.45.23", "172.17.0.2", "172.17.0.3"}, nil, 2, 2,
		},
		{
			"OAK_IP without a running task serves nothing and identifies nobody",
			testApp("/a", ip("10.199.45.23"), task("TASK_STAGING", "192.0.2.1", "172.17.0.2")),
			nil, nil, []string{"10.199.45.23", "172.17.0.2"}, 0, 0,
		},
		{
			"OAK_IP of a running task that is not healthy yet identifies its clients",
			withHealthChecks(testApp("/a", ip("10.199.45.23"), running("172.17.0.2"))),
			nil, []string{"10.199.45.23", "172.17.0.2"}, nil, 0, 1,
		},
		{
			"task ipAddresses",
			testApp("/a", labels("", "a.example.com"), task(taskRunning, "192.0.2.1", "10.0.0.2", "10.0.0.1"), running("10.0.0.1")),
			addrs("10.0.0.1", "10.0.0.2"), []string{"10.0.0.1", "10.0.0.2"}, []string{"192.0.2.1"}, 2, 2,
		},
		{
			"task host when it has no ipAddresses; the host is no claim",
			testApp("/a", labels("", "a.example.com"), task(taskRunning, "192.0.2.1")),
			addrs("192.0.2.1"), nil, []string{"192.0.2.1"}, 1, 1,
		},
		{
			"invalid task IPs are skipped and the host used",
			testApp("/a", labels("", "a.example.com"), task(taskRunning, "192.0.2.1", "garbage", "0.0.0.0", "fe80::1%eth0")),
			addrs("192.0.2.1"), nil, nil, 1, 1,
		},
		{
			"host name that is no IP gives no backend",
			testApp("/a", labels("", "a.example.com"), task(taskRunning, "agent-1.example.com")),
			nil, nil, nil, 1, 1,
		},
		{
			"IPv6 task address",
			testApp("/a", labels("", "a.example.com"), running("2001:db8::7")),
			addrs("2001:db8::7"), []string{"2001:db8::7"}, nil, 1, 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Build(mustPolicy(t, PolicyConfig{}), []App{tc.app})
			var got []netip.Addr
			if svc := s.Resolve("", "a.example.com").Service; svc != nil {
				got = svc.Addrs
			}
			if !reflect.DeepEqual(got, tc.backends) {
				t.Errorf("backends %v, want %v", got, tc.backends)
			}
			for _, a := range tc.byApp {
				if env, how := s.EnvOf(netip.MustParseAddr(a)); how != ByApp || env != "integration" {
					t.Errorf("EnvOf(%s) = %s %v, want integration ByApp", a, env, how)
				}
			}
			for _, a := range tc.notByApp {
				if _, how := s.EnvOf(netip.MustParseAddr(a)); how == ByApp {
					t.Errorf("EnvOf(%s) = ByApp", a)
				}
			}
			if st := s.Stats(); st.LiveTasks != tc.wantLive || st.Tasks != tc.wantTasks {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestPorts(t *testing.T) {
	defs := []PortSpec{{Name: "http", Number: 8080}, {Number: 53, Protocol: "udp,tcp"}, {Number: 0}, {Name: "Bad_Name", Number: 9000}, {Number: 70000}, {Number: 5, Protocol: "sctp"}}
	mappings := []PortSpec{{Name: "redis", Number: 6379, Protocol: "tcp"}, {Number: 80}}
	withDefs := testApp("/defs", labels("", "a.example.com"), running("10.0.0.1"))
	withDefs.Ports = defs
	withMappings := testApp("/maps", labels("", "a.example.com"), running("10.0.0.2"))
	withMappings.Ports = mappings
	withLabel := testApp("/label", labels("", "a.example.com", "OAK_PORTS", "web:81"), running("10.0.0.3"))
	withLabel.Ports = defs
	tests := []struct {
		name string
		app  App
		want []Port
	}{
		{"portDefinitions", withDefs, []Port{{"http", 8080, "tcp"}, {"port1", 53, "tcp"}, {"port1", 53, "udp"}, {"port3", 9000, "tcp"}}},
		{"container ports", withMappings, []Port{{"port1", 80, "tcp"}, {"redis", 6379, "tcp"}}},
		{"OAK_PORTS wins", withLabel, []Port{{"web", 81, "tcp"}}},
		{"none", testApp("/none", labels("", "a.example.com"), running("10.0.0.4")), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := Build(mustPolicy(t, PolicyConfig{}), []App{tc.app}).Resolve("", "a.example.com").Service
			if svc == nil || !reflect.DeepEqual(svc.Ports, tc.want) {
				t.Errorf("service %+v, want ports %v", svc, tc.want)
			}
		})
	}
}

func TestMergeApps(t *testing.T) {
	apps := []App{
		testApp("/redis-a", labels("feature-x", "redis.example.com", "OAK_PORTS", "redis:6379"), running("10.0.0.2")),
		testApp("/redis-b", labels("feature-x", "redis.example.com", "OAK_PORTS", "redis:6380"), running("10.0.0.1"), running("10.0.0.2")),
		withHealthChecks(testApp("/redis-c", labels("feature-x", "redis.example.com"), running("10.0.0.9"))),
		testApp("/redis-other-env", labels("", "redis.example.com"), running("10.0.0.3")),
	}
	s := Build(mustPolicy(t, PolicyConfig{}), apps)
	got := s.Resolve("feature-x", "redis.example.com").Service
	want := &Service{
		Name:  "redis.example.com",
		Env:   "feature-x",
		Addrs: addrs("10.0.0.1", "10.0.0.2"),
		Ports: []Port{{"redis", 6379, "tcp"}, {"redis", 6380, "tcp"}},
		// Each address with the ports of the apps that run there, so that
		// SRV pairs a port with the addresses that serve it.
		Backends: []Backend{
			{netip.MustParseAddr("10.0.0.1"), []Port{{"redis", 6380, "tcp"}}},
			{netip.MustParseAddr("10.0.0.2"), []Port{{"redis", 6379, "tcp"}, {"redis", 6380, "tcp"}}},
		},
		Apps: []string{"/redis-a", "/redis-b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := s.Resolve("integration", "redis.example.com").Service; got == nil || !reflect.DeepEqual(got.Apps, []string{"/redis-other-env"}) {
		t.Errorf("integration: %+v", got)
	}
}

func TestRejections(t *testing.T) {
	apps := []App{
		testApp("/good", labels("", "good.example.com"), running("10.0.0.1")),
		testApp("/bad-name", labels("", "bad_name.example.com"), running("10.0.0.2")),
		testApp("/bad-ip", labels("", "x.example.com", "OAK_IP", "10.0.0.256"), running("10.0.0.3")),
		testApp("", labels("", "noid.example.com")),
	}
	p := mustPolicy(t, PolicyConfig{})
	s := Build(p, apps)
	want := []Rejection{
		{AppID: "", Label: "id", Reason: "app has no id"},
		{AppID: "/bad-ip", Label: "OAK_IP", Value: "10.0.0.256", Reason: `"10.0.0.256" is not an IP address`},
		{AppID: "/bad-name", Label: "OAK_NAMES", Value: "bad_name.example.com", Reason: `name "bad_name.example.com" contains '_'; only [a-z0-9-.] are allowed`},
	}
	if got := s.Rejected(); !reflect.DeepEqual(got, want) {
		t.Errorf("Rejected() = %+v\nwant %+v", got, want)
	}
	// Check gives each app, alone, the snapshot's decision.
	for i := range apps {
		got := p.Check(&apps[i])
		j := slices.IndexFunc(want, func(r Rejection) bool { return r.AppID == apps[i].ID })
		switch {
		case j < 0 && got != nil:
			t.Errorf("Check(%q) = %+v, want nil", apps[i].ID, *got)
		case j >= 0 && (got == nil || *got != want[j]):
			t.Errorf("Check(%q) = %+v, want %+v", apps[i].ID, got, want[j])
		}
	}
	if st := s.Stats(); st.Apps != 1 || st.Rejected != 3 || st.Names != 1 || st.Tasks != 1 {
		t.Errorf("stats %+v", st)
	}
	if s.Resolve("", "good.example.com").Service == nil {
		t.Errorf("good app is not served")
	}
	if _, how := s.EnvOf(netip.MustParseAddr("10.0.0.2")); how != ByDefault {
		t.Errorf("a rejected app's task still identifies clients: %v", how)
	}
	// Fixing the app takes it out of Rejected.
	fixed := s.Apply([]App{testApp("/bad-name", labels("", "bad-name.example.com"), running("10.0.0.2"))}, nil)
	if st := fixed.Stats(); st.Apps != 2 || st.Rejected != 2 {
		t.Errorf("after fix: %+v", st)
	}
}

func TestEnvsAndStats(t *testing.T) {
	apps := []App{
		testApp("/a", labels("feature-x", "a.example.com"), running("10.0.0.1")),
		testApp("/b", labels("staging", "a.example.com,b.example.com"), running("10.0.0.2"), task("TASK_STAGING", "h")),
		testApp("/plain", nil, running("10.0.0.3")),
	}
	s := Build(mustPolicy(t, PolicyConfig{}), apps)
	if got := s.Envs(); !reflect.DeepEqual(got, []string{"feature-x", "integration", "staging"}) {
		t.Errorf("Envs() = %v", got)
	}
	want := Stats{Apps: 3, Tasks: 3, LiveTasks: 3, Rejected: 0, Names: 2, Envs: 3}
	if got := s.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

// TestApplyEquivalence checks that a snapshot reached by Apply holds what
// Build of the final app set holds, and that Apply leaves its input alone.
func TestApplyEquivalence(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{Fallback: []FallbackRule{{"feature-*", "staging"}}})
	base := []App{
		testApp("/int/redis", labels("", "redis.example.com", "OAK_HTTP", "redis.example.com"), running("10.0.0.1")),
		testApp("/int/db", labels("", "db.example.com,db2.example.com"), running("10.0.0.2"), running("10.0.0.3")),
		testApp("/stg/redis", labels("staging", "redis.example.com", "OAK_IP", "10.0.1.1"), running("172.17.0.2")),
		testApp("/fx/web", labels("feature-x", "web.example.com", "OAK_HTTP", "web.example.com:8080"), running("10.0.2.1")),
		testApp("/plain", nil, running("10.0.9.9")),
		testApp("/bad", labels("", "bad name")),
	}
	steps := []struct {
		name   string
		upsert []App
		remove []string
	}{
		{"nothing", nil, nil},
		{"add app", []App{testApp("/fx/redis", labels("feature-x", "redis.example.com"), running("10.0.2.2"))}, nil},
		{"change names", []App{testApp("/int/db", labels("", "db.example.com,db3.example.com"), running("10.0.0.2"))}, nil},
		{"change env", []App{testApp("/stg/redis", labels("feature-y", "redis.example.com", "OAK_IP", "10.0.1.1"), running("172.17.0.2"))}, nil},
		{"become unhealthy", []App{withHealthChecks(testApp("/int/redis", labels("", "redis.example.com"), health(running("10.0.0.1"), false)))}, nil},
		{"remove", nil, []string{"/fx/web", "/does-not-exist"}},
		{"fix rejected", []App{testApp("/bad", labels("", "good.example.com"), running("10.0.3.1"))}, nil},
		{"break accepted", []App{testApp("/int/db", labels("", "db.example.com", "OAK_IP", "nope"))}, nil},
		{"conflict", []App{testApp("/stg/twin", labels("staging", "twin.example.com"), running("10.0.9.9"))}, nil},
		{"duplicate ids: last wins", []App{
			testApp("/dup", labels("", "first.example.com"), running("10.0.4.1")),
			testApp("/dup", labels("feature-z", "second.example.com"), running("10.0.4.2")),
		}, nil},
		{"upsert and remove: remove wins", []App{testApp("/gone", labels("", "gone.example.com"), running("10.0.5.1"))}, []string{"/gone"}},
		{"remove everything", nil, []string{"/int/redis", "/int/db", "/stg/redis", "/fx/web", "/plain", "/bad", "/fx/redis", "/stg/twin", "/dup"}},
	}
	current := map[string]App{}
	var order []string
	put := func(a App) {
		if _, ok := current[a.ID]; !ok {
			order = append(order, a.ID)
		}
		current[a.ID] = a
	}
	for _, a := range base {
		put(a)
	}
	s := Build(p, base)
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			before := contentOf(t, s)
			next := s.Apply(step.upsert, step.remove)
			if after := contentOf(t, s); !reflect.DeepEqual(before, after) {
				t.Fatalf("Apply modified its input snapshot")
			}
			removed := map[string]bool{}
			for _, id := range step.remove {
				removed[id] = true
			}
			for _, a := range step.upsert {
				if !removed[a.ID] {
					put(a)
				}
			}
			for id := range removed {
				delete(current, id)
			}
			var final []App
			for _, id := range order {
				if a, ok := current[id]; ok {
					final = append(final, a)
				}
			}
			want := Build(p, final)
			sameContent(t, next, want)
			// One app at a time, the removals with the last: the same
			// snapshot, since a snapshot is a function of its apps.
			parts := s
			for i, a := range step.upsert {
				if i < len(step.upsert)-1 {
					parts = parts.Apply([]App{a}, nil)
				} else {
					parts = parts.Apply([]App{a}, step.remove)
				}
			}
			if len(step.upsert) == 0 {
				parts = parts.Apply(nil, step.remove)
			}
			sameContent(t, parts, want)
			s = next
		})
	}
	if st := s.Stats(); st != (Stats{}) {
		t.Errorf("after removing everything: %+v", st)
	}
}

// TestProblemsChanged: an Apply that leaves the rejections and conflicts
// alone is told from one that touches them, and unrelated snapshots are
// never taken for the same.
func TestProblemsChanged(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{})
	base := Build(p, []App{
		testApp("/good", labels("", "good.example.com"), running("10.0.0.1")),
		testApp("/bad", labels("", "bad_name.example.com"), running("10.0.0.2")),
		testApp("/x", labels("feature-x", "x.example.com", "OAK_IP", "10.0.0.9"), running("10.0.0.9")),
		testApp("/y", labels("feature-y", "y.example.com", "OAK_IP", "10.0.0.9"), running("10.0.0.9")),
	})
	if len(base.Rejected()) != 1 || len(base.Conflicts()) != 1 {
		t.Fatalf("base: %v rejected, %v conflicts", base.Rejected(), base.Conflicts())
	}
	tests := []struct {
		name string
		next *Snapshot
		want bool
	}{
		{"itself", base, false},
		{"a task change of an accepted app", base.Apply([]App{testApp("/good", labels("", "good.example.com"), running("10.0.0.3"))}, nil), false},
		{"a new accepted app", base.Apply([]App{testApp("/new", labels("", "new.example.com"), running("10.0.0.4"))}, nil), false},
		{"a task change of the rejected app", base.Apply([]App{testApp("/bad", labels("", "bad_name.example.com"), running("10.0.0.5"))}, nil), false},
		{"a new rejected app", base.Apply([]App{testApp("/worse", labels("", "-.example.com"))}, nil), true},
		{"the rejected app fixed", base.Apply([]App{testApp("/bad", labels("", "bad-name.example.com"), running("10.0.0.2"))}, nil), true},
		{"the rejected app removed", base.Apply(nil, []string{"/bad"}), true},
		{"the conflict cleared", base.Apply(nil, []string{"/y"}), true},
		{"the same apps built anew", Build(p, []App{testApp("/good", labels("", "good.example.com"), running("10.0.0.1"))}), true},
	}
	if !base.ProblemsChanged(nil) {
		t.Errorf("ProblemsChanged(nil) = false: nothing to compare with")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.next.ProblemsChanged(base); got != tt.want {
				t.Errorf("ProblemsChanged = %v, want %v", got, tt.want)
			}
			if got := base.ProblemsChanged(tt.next); got != tt.want {
				t.Errorf("ProblemsChanged, the other way = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFixedAddrsChanged: an Apply that changes what FixedAddrs lists is
// told from one that does not (task changes, other labels).
func TestFixedAddrsChanged(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{})
	fixed := func(id, ip string, tasks ...Task) App {
		return testApp(id, labels("", strings.Trim(id, "/")+".example.com", "OAK_IP", ip), tasks...)
	}
	apps := []App{
		fixed("/db", "10.0.0.1", running("10.0.0.1")),
		testApp("/web", labels("", "web.example.com"), running("10.0.1.1")),
		fixed("/bad", "10.0.0.300"),
	}
	base := Build(p, apps)
	tests := []struct {
		name string
		next *Snapshot
		want bool
	}{
		{"itself", base, false},
		{"a task change of a fixed-address app", base.Apply([]App{fixed("/db", "10.0.0.1")}, nil), false},
		{"a task change of another app", base.Apply([]App{testApp("/web", labels("", "web.example.com"), running("10.0.1.2"))}, nil), false},
		{"another name", base.Apply([]App{testApp("/db", labels("", "db2.example.com", "OAK_IP", "10.0.0.1"), running("10.0.0.1"))}, nil), false},
		{"the same apps again", base.Apply([]App{fixed("/db", "10.0.0.1", running("10.0.0.1")), fixed("/bad", "10.0.0.300")}, nil), false},
		{"a new fixed address", base.Apply([]App{fixed("/db", "10.0.0.2", running("10.0.0.2"))}, nil), true},
		{"an app without one", base.Apply([]App{testApp("/new", labels("", "new.example.com"))}, nil), true},
		{"an app gone", base.Apply(nil, []string{"/web"}), true},
		{"a rejected app fixed", base.Apply([]App{fixed("/bad", "10.0.0.3")}, nil), true},
		{"an accepted app rejected", base.Apply([]App{fixed("/db", "10.0.0.x")}, nil), true},
		{"the same apps built anew", Build(p, apps), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.next.FixedAddrsChanged(base); got != tt.want {
				t.Errorf("FixedAddrsChanged = %v, want %v (FixedAddrs %v, were %v)", got, tt.want, tt.next.FixedAddrs(), base.FixedAddrs())
			}
			if !tt.want && !slices.Equal(tt.next.FixedAddrs(), base.FixedAddrs()) { // the test's own premise
				t.Errorf("FixedAddrs changed: %v, were %v", tt.next.FixedAddrs(), base.FixedAddrs())
			}
		})
	}
	// Two Applies to one snapshot are two versions, even if each changes
	// the same app.
	a, b := base.Apply(nil, []string{"/web"}), base.Apply(nil, []string{"/web"})
	if !a.FixedAddrsChanged(b) {
		t.Errorf("sibling snapshots taken for one version")
	}
	if !base.FixedAddrsChanged(nil) {
		t.Errorf("FixedAddrsChanged(nil) = false")
	}
}

// TestSnapshotObjects counts the objects a snapshot keeps per app, which
// the collector marks on the core that serves queries (BenchmarkLiveHeap
// in watcher measures the marking). The apps, 10,000 as in bench-dns, are
// as most apps are: one running task, one name, one port. Each keeps its
// app, its address's owner and its name's placed envs, plus a share of
// the tables' blocks and their entries: under four objects. Before the
// app kept its one port inline, the name its one app id, and a block its
// leaves in one array, it was over seven.
func TestSnapshotObjects(t *testing.T) {
	const n = 10000
	apps := make([]App, n)
	for i := range apps {
		ip := netip.AddrFrom4([4]byte{10, 20, byte(i >> 8), byte(i)}).String()
		apps[i] = testApp(fmt.Sprintf("/svc-%d", i), labels("", fmt.Sprintf("svc%d.example.com", i)), running(ip))
		apps[i].Ports = []PortSpec{{Name: "main", Number: 6379, Protocol: "tcp"}}
	}
	policy := mustPolicy(t, PolicyConfig{})
	before := liveObjects()
	s := Build(policy, apps)
	perApp := float64(liveObjects()-before) / n
	if st := s.Stats(); st.Apps != n || st.LiveTasks != n {
		t.Fatalf("built %+v, want %d apps each with a live task", st, n)
	}
	t.Logf("%.2f objects per app", perApp)
	if perApp >= 4 {
		t.Errorf("a snapshot keeps %.2f objects per app, want fewer than 4", perApp)
	}
	runtime.KeepAlive(apps)
}

// TestApplyAdoptsStrings: new versions of every app, their strings equal
// but made anew, leave the snapshot holding as many objects as the first
// version did. The tables keep the first version's strings (a name's key
// and ancestors, an app id in a name's claims), so a new version that kept
// its own would hold more objects for the collector to mark, for as long
// as the app runs (BenchmarkLiveHeap/after-kills in watcher). Each
// version's id, name and port name are parts of one string, as the
// watcher's unpacker makes them, so that keeping any one of them keeps the
// version's string.
func TestApplyAdoptsStrings(t *testing.T) {
	const n = 2000
	version := func(round int) []App {
		apps := make([]App, n)
		for i := range apps {
			id, name := fmt.Sprintf("/svc-%d", i), fmt.Sprintf("svc%d.example.com", i)
			all := id + name + "main" // one allocation
			id, name, port := all[:len(id)], all[len(id):len(id)+len(name)], all[len(id)+len(name):]
			ip := netip.AddrFrom4([4]byte{10, 20 + byte(round), byte(i >> 8), byte(i)}).String()
			apps[i] = testApp(id, labels("", name), running(ip))
			apps[i].Ports = []PortSpec{{Name: port, Number: 6379, Protocol: "tcp"}}
		}
		return apps
	}
	s := Build(mustPolicy(t, PolicyConfig{}), version(0))
	first := liveObjects()
	for round := 1; round <= 3; round++ {
		s = s.Apply(version(round), nil) // each app on a new address
	}
	after := liveObjects()
	if st := s.Stats(); st.Apps != n || st.LiveTasks != n {
		t.Fatalf("after the new versions: %+v, want %d apps each with a live task", st, n)
	}
	runtime.KeepAlive(s)
	if more := float64(after-first) / n; more > 0.25 {
		t.Errorf("three new versions of each app left %.2f more objects per app in the snapshot, want none", more)
	}
}

package catalog

import (
	"fmt"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"testing"
)

// testApp returns an app with the given labels (nil: none) and tasks.
func testApp(id string, labels map[string]string, tasks ...Task) App {
	return App{ID: id, Labels: labels, Tasks: tasks}
}

// withHealthChecks gives a one health check.
func withHealthChecks(a App) App {
	a.HealthChecks = 1
	return a
}

// task returns a task in state with the given ipAddresses and host.
func task(state, host string, ips ...string) Task {
	return Task{ID: fmt.Sprintf("t.%s.%v", host, ips), State: state, Host: host, IPs: ips}
}

// running returns a TASK_RUNNING task with one container IP.
func running(ip string) Task { return task(taskRunning, "192.0.2.250", ip) }

// health returns t with the given health check results.
func health(t Task, alive ...bool) Task {
	t.Health = append(slices.Clone(t.Health), alive...)
	return t
}

func labels(env, names string, extra ...string) map[string]string {
	l := map[string]string{}
	if env != "" {
		l["OAK_ENV"] = env
	}
	if names != "" {
		l["OAK_NAMES"] = names
	}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

func mustPolicy(t testing.TB, cfg PolicyConfig) *Policy {
	t.Helper()
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	return p
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// content is everything a snapshot holds, as plain maps, so that two
// snapshots built differently can be compared (the shard layout and seed
// are not content).
type content struct {
	Apps      map[string]*app
	Rejected  map[string]Rejection
	Names     map[string]claims
	VHosts    map[string]claims
	Suffixes  map[string]int
	Reverse   map[string]int
	Addrs     map[addrKey]*owner
	EnvCounts map[string]int
	Stats     Stats
	Conflicts []AddrConflict
	Envs      []string
	Virtual   []EnvVHosts
}

func flatten[K comparable, V any](t testing.TB, what string, tab *table[K, V]) map[K]V {
	t.Helper()
	out := map[K]V{}
	held := 0
	for k, v := range tab.all() {
		if _, twice := out[k]; twice {
			t.Errorf("%s: key %v held twice", what, k)
		}
		out[k] = v
		held++
	}
	if held != tab.n {
		t.Errorf("%s: table counts %d entries, holds %d", what, tab.n, held)
	}
	return out
}

func contentOf(t testing.TB, s *Snapshot) content {
	t.Helper()
	c := content{
		Apps:      flatten(t, "apps", &s.apps),
		Rejected:  flatten(t, "rejected", &s.rejected),
		Names:     flatten(t, "names", &s.names),
		VHosts:    flatten(t, "vhosts", &s.vhosts),
		Suffixes:  flatten(t, "suffixes", &s.suffixes),
		Reverse:   flatten(t, "reverse", &s.reverse),
		Addrs:     flatten(t, "addrs", &s.addrs),
		EnvCounts: flatten(t, "envs", &s.envs),
		Stats:     s.Stats(),
		Conflicts: s.Conflicts(),
		Envs:      s.Envs(),
		Virtual:   s.VHostViews(s.Envs()),
	}
	return c
}

// sameContent fails the test when two snapshots hold different content.
func sameContent(t testing.TB, got, want *Snapshot) {
	t.Helper()
	g, w := contentOf(t, got), contentOf(t, want)
	if reflect.DeepEqual(g, w) {
		return
	}
	v := reflect.ValueOf(g)
	for i := range v.NumField() {
		if !reflect.DeepEqual(v.Field(i).Interface(), reflect.ValueOf(w).Field(i).Interface()) {
			t.Errorf("content differs in %s:\n got %s\nwant %s", v.Type().Field(i).Name,
				dump(v.Field(i).Interface()), dump(reflect.ValueOf(w).Field(i).Interface()))
		}
	}
}

// dump prints maps of pointers by value, for failure messages.
func dump(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map {
		return fmt.Sprintf("%+v", v)
	}
	out := "{"
	iter := rv.MapRange()
	for iter.Next() {
		val := iter.Value()
		if val.Kind() == reflect.Pointer && !val.IsNil() {
			val = val.Elem()
		}
		out += fmt.Sprintf("%v: %+v; ", iter.Key(), val.Interface())
	}
	return out + "}"
}

// liveObjects returns the objects on the heap after two collections: what
// is still reachable, and what the collector marks.
func liveObjects() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapObjects)
}

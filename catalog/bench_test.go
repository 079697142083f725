package catalog

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// Size of the synthetic cluster: the integration env holds the whole stack
// and 99 feature envs each hold their own copies of some of its services.
const (
	benchApps        = 10000
	benchTasksPerApp = 3
	benchEnvs        = 100
	benchServices    = 2000 // apps (and names) in the integration env
)

var benchKinds = []string{"redis", "mq", "db", "zk", "api", "web", "search", "cache"}

// benchName is the name of service i, e.g. redis3.db.example.com.
func benchName(i int) string {
	kind := benchKinds[i%len(benchKinds)]
	return fmt.Sprintf("%s%d.%s.example.com", kind, i/len(benchKinds), []string{"db", "svc", "infra"}[i%3])
}

func benchEnv(i int) string {
	if i == 0 {
		return "integration"
	}
	return fmt.Sprintf("feature-%d", i)
}

// benchApp is app i of the synthetic cluster: the first benchServices apps
// are the integration env, the others are spread over the feature envs.
// Every app has three tasks with their own IPs; every other app has a
// health check; every fourth has an OAK_IP and a virtual host.
func benchApp(i, version int) App {
	service, env := i, 0
	if i >= benchServices {
		service = (i * 7) % benchServices
		env = 1 + i%(benchEnvs-1)
	}
	l := map[string]string{
		"OAK_NAMES": benchName(service),
		"OAK_PORTS": "main:6379",
	}
	if env != 0 {
		l["OAK_ENV"] = benchEnv(env)
	}
	if i%4 == 0 {
		l["OAK_IP"] = netip.AddrFrom4([4]byte{10, 199, byte(i >> 8), byte(i)}).String()
		l["OAK_HTTP"] = fmt.Sprintf("%s:8080", benchName(service))
	}
	a := testApp(fmt.Sprintf("/%s/app-%d", benchEnv(env), i), l)
	for k := range benchTasksPerApp {
		ip := netip.AddrFrom4([4]byte{172, byte(16 + k), byte(i >> 8), byte(i)}).String()
		t := task(taskRunning, fmt.Sprintf("192.0.2.%d", i%200), ip)
		t.ID = fmt.Sprintf("app-%d.%d-%d", i, version, k)
		if i%2 == 0 {
			t = health(t, version%2 == 0)
		}
		a.Tasks = append(a.Tasks, t)
	}
	if i%2 == 0 {
		a = withHealthChecks(a)
	}
	return a
}

func benchCluster() []App {
	apps := make([]App, benchApps)
	for i := range apps {
		apps[i] = benchApp(i, 0)
	}
	return apps
}

func benchPolicy(b *testing.B) *Policy {
	return mustPolicy(b, PolicyConfig{
		Fallback: []FallbackRule{{"feature-1?", "feature-1"}},
		CIDRs:    []CIDRRule{{netip.MustParsePrefix("10.0.0.0/8"), "lab"}},
	})
}

func BenchmarkBuild(b *testing.B) {
	apps := benchCluster()
	p := benchPolicy(b)
	b.ReportAllocs()
	for b.Loop() {
		Build(p, apps)
	}
	s := Build(p, apps)
	st := s.Stats()
	if st.Apps != benchApps || st.Tasks != benchApps*benchTasksPerApp || st.Envs != benchEnvs {
		b.Fatalf("unexpected cluster: %+v", st)
	}
}

func BenchmarkApplyOneApp(b *testing.B) {
	p := benchPolicy(b)
	s := Build(p, benchCluster())
	// Alternate between two versions of one feature app (healthy, then not)
	// so that every Apply really changes its backends.
	versions := [][]App{{benchApp(4242, 1)}, {benchApp(4242, 2)}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Apply(versions[i%2], nil)
		i++
	}
}

func BenchmarkResolve(b *testing.B) {
	s := Build(benchPolicy(b), benchCluster())
	queries := []struct{ env, name string }{
		{"integration", benchName(17)},
		{"feature-12", benchName(1)},   // falls back through feature-1
		{"feature-42", benchName(999)}, // falls back to integration
		{"feature-7", "nope.example.com"},
	}
	for _, q := range queries {
		if answer := s.Resolve(q.env, q.name); answer.Service == nil && q.name != "nope.example.com" {
			b.Fatalf("%v: no service", q)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q := queries[i%len(queries)]
		s.Resolve(q.env, q.name)
		i++
	}
}

// BenchmarkResolveSpread resolves every name of the cluster for clients of
// every env, in a shuffled order, as a DNS server sees them: unlike
// BenchmarkResolve, whose four queries stay in the CPU's caches, most reads
// here miss them, so it shows how many memory loads a lookup depends on,
// up to the first address.
func BenchmarkResolveSpread(b *testing.B) {
	s := Build(benchPolicy(b), benchCluster())
	type query struct{ env, name string }
	var queries []query
	for i := range benchServices {
		for e := range benchEnvs {
			queries = append(queries, query{benchEnv(e), benchName(i)})
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(queries), func(i, j int) { queries[i], queries[j] = queries[j], queries[i] })
	for _, q := range queries {
		s.Resolve(q.env, q.name) // memoize every chain
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q := queries[i%len(queries)]
		svc := s.Resolve(q.env, q.name).Service
		if svc == nil {
			b.Fatalf("%v: no service", q)
		}
		_ = svc.Addrs[0] // a DNS server reads the addresses too
		i++
	}
}

func BenchmarkEnvOf(b *testing.B) {
	s := Build(benchPolicy(b), benchCluster())
	clients := addrs("172.16.16.10", "10.199.0.4", "10.1.2.3", "192.0.2.7")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.EnvOf(clients[i%len(clients)])
		i++
	}
}

// BenchmarkResolveVHost is the vhost decision, as nginxctl's /v1/views and
// the renderer ask it: a host of the env, one it falls back for, one held
// nowhere, one unknown.
func BenchmarkResolveVHost(b *testing.B) {
	s := Build(benchPolicy(b), benchCluster())
	queries := []struct{ env, host string }{
		{"integration", benchName(16)},
		{"feature-12", benchName(0)},
		{"feature-42", benchName(996)},
		{"feature-7", "nope.example.com"},
	}
	for _, q := range queries[:3] {
		if answer := s.ResolveVHost(q.env, q.host); answer.Kind != Served {
			b.Fatalf("%v: %v", q, answer.Kind)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q := queries[i%len(queries)]
		s.ResolveVHost(q.env, q.host)
		i++
	}
}

// BenchmarkVHostViews is what nginxctl asks per render: every env's vhost
// decisions where they can differ from the default env's.
func BenchmarkVHostViews(b *testing.B) {
	s := Build(benchPolicy(b), benchCluster())
	envs := s.Envs()
	b.ReportAllocs()
	for b.Loop() {
		s.VHostViews(envs)
	}
}

// BenchmarkApplyBatch applies a batch of 64 changed apps to the
// 10,000-app cluster, as the watcher does under churn, whole or in parts:
// the cost per app, and what splitting a batch costs (each Apply copies
// the tables' block lists once).
func BenchmarkApplyBatch(b *testing.B) {
	p := benchPolicy(b)
	s := Build(p, benchCluster())
	const batch = 64
	versions := make([][]App, 2)
	for v := range versions {
		for i := range batch {
			versions[v] = append(versions[v], benchApp(i*(benchApps/batch)+1, v+1))
		}
	}
	for _, part := range []int{1, 4, 8, 16, batch} {
		b.Run(fmt.Sprintf("part=%d", part), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				next := s
				apps := versions[i%2]
				for len(apps) > 0 {
					n := min(part, len(apps))
					next = next.Apply(apps[:n], nil)
					apps = apps[n:]
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/app")
		})
	}
}

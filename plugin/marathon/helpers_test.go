package marathon

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/watcher"
)

// fakeSource is a watcher.Source over a fixed snapshot (nil = not synced).
type fakeSource struct {
	snapshot *catalog.Snapshot
	status   watcher.Status
}

func (f *fakeSource) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (f *fakeSource) Snapshot() *catalog.Snapshot { return f.snapshot }
func (f *fakeSource) Ready() bool                 { return f.snapshot != nil }
func (f *fakeSource) Status() watcher.Status      { return f.status }

// appSpec is a Marathon app in a test topology: running tasks at ips, or
// a registered app with no running task when down is set.
type appSpec struct {
	id, env, names, ports string
	ips                   []string
	down                  bool
}

func (s appSpec) application() catalog.App {
	labels := map[string]string{"OAK_NAMES": s.names}
	if s.env != "" {
		labels["OAK_ENV"] = s.env
	}
	if s.ports != "" {
		labels["OAK_PORTS"] = s.ports
	}
	app := catalog.App{ID: s.id, Labels: labels}
	state := "TASK_RUNNING"
	if s.down {
		state = "TASK_STAGING"
	}
	for i, ip := range s.ips {
		app.Tasks = append(app.Tasks, catalog.Task{ID: fmt.Sprintf("%s.%d", s.id, i), State: state, IPs: []string{ip}})
	}
	return app
}

// Clients of the test topology, one per way of choosing an env.
const (
	featureClient     = "10.0.3.10"  // runs feature-x's app1: feature-x by app
	integrationClient = "10.0.1.10"  // runs integration's app1: integration by app
	stagingClient     = "10.9.1.1"   // env_cidr 10.9.0.0/16 staging
	unknownClient     = "192.0.2.1"  // nothing matches: the default env
	v6Client          = "fd00::3:11" // runs feature-x's v6 app
)

// topology is a three-level chain, feature-x -> staging -> integration,
// plus feature-y -> integration.
func topology() []appSpec {
	big := appSpec{id: "/int/big", names: "big.example.com"}
	for i := 1; i <= 100; i++ {
		big.ips = append(big.ips, fmt.Sprintf("10.1.0.%d", i))
	}
	return []appSpec{
		{id: "/int/app1", names: "app1.example.com", ports: "http:8080,dns:53/udp,admin:9090", ips: []string{"10.0.1.10"}},
		{id: "/int/redis1", names: "redis1.db.example.com", ports: "redis:6379", ips: []string{"10.0.1.21"}},
		{id: "/int/mq1", names: "mq1.example.com", ips: []string{"10.0.1.23"}},
		{id: "/int/svc", names: "svc.example.com", ips: []string{"10.0.1.40", "10.0.1.41"}},
		{id: "/int/dual", names: "dual.example.com", ips: []string{"10.0.1.30", "fd00::30"}},
		{id: "/int/down", names: "down.example.com", ips: []string{"10.0.1.50"}, down: true},
		{id: "/int/parent", names: "parent.example.com", ips: []string{"10.0.1.60"}, down: true}, // held, with a live child
		{id: "/int/child", names: "child.parent.example.com", ips: []string{"10.0.1.61"}},
		big,
		{id: "/staging/redis1", env: "staging", names: "redis1.db.example.com", ports: "redis:6379", ips: []string{"10.0.2.21"}},
		{id: "/staging/only", env: "staging", names: "stagingonly.example.com", ips: []string{"10.0.2.50"}},
		{id: "/fx/app1", env: "feature-x", names: "app1.example.com", ports: "http:8080", ips: []string{featureClient}},
		{id: "/fx/v6", env: "feature-x", names: "v6.example.com", ips: []string{v6Client}},
		{id: "/fx/mq1", env: "feature-x", names: "mq1.example.com", ips: []string{"10.0.3.23"}, down: true},
		{id: "/fx/gone", env: "feature-x", names: "gone.example.com", ips: []string{"10.0.3.60"}, down: true},
		{id: "/fy/app1", env: "feature-y", names: "app1.example.com", ips: []string{"10.0.4.10"}},
	}
}

func testPolicy(t testing.TB) *catalog.Policy {
	t.Helper()
	policy, err := catalog.NewPolicy(catalog.PolicyConfig{
		Fallback: []catalog.FallbackRule{{Pattern: "feature-x", Parent: "staging"}},
		CIDRs:    []catalog.CIDRRule{{Prefix: netip.MustParsePrefix("10.9.0.0/16"), Env: "staging"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return policy
}

func testSnapshot(t testing.TB) *catalog.Snapshot {
	t.Helper()
	var apps []catalog.App
	for _, spec := range topology() {
		apps = append(apps, spec.application())
	}
	snapshot := catalog.Build(testPolicy(t), apps)
	if rejected := snapshot.Rejected(); len(rejected) > 0 {
		t.Fatalf("topology has rejected apps: %+v", rejected)
	}
	return snapshot
}

// newTestMarathon returns the handler over snapshot for example.com and the
// 10.in-addr.arpa and ip6.arpa reverse zones, followed by a handler that
// answers everything with a TXT "next" record so that tests can tell a
// fallthrough.
func newTestMarathon(snapshot *catalog.Snapshot, configure ...func(*Marathon)) *Marathon {
	m := &Marathon{
		Next:   nextHandler(),
		zones:  []string{"example.com.", "10.in-addr.arpa.", "ip6.arpa."},
		ttl:    defaultTTL,
		source: &fakeSource{snapshot: snapshot},
	}
	for _, f := range configure {
		f(m)
	}
	return m
}

func withFallthrough(m *Marathon) { m.fall = fall.F{Zones: []string{"."}} }

func pinned(env string) func(*Marathon) { return func(m *Marathon) { m.pinnedEnv = env } }

// nextTXT is what the next plugin answers in tests.
const nextTXT = "answered by the next plugin"

func nextHandler() test.HandlerFunc {
	return func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetReply(r)
		owner := "."
		if len(r.Question) > 0 {
			owner = r.Question[0].Name
		}
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 0}, Txt: []string{nextTXT}}}
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	}
}

// answeredByNext reports whether a reply came from nextHandler.
func answeredByNext(m *dns.Msg) bool {
	if len(m.Answer) != 1 {
		return false
	}
	txt, ok := m.Answer[0].(*dns.TXT)
	return ok && len(txt.Txt) == 1 && txt.Txt[0] == nextTXT
}

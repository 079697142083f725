package catalog

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// reference is a naive model of the rules in the README, written from the
// rules and not from the implementation: every question scans every app.
// It shares only label parsing and the policy's chains with the catalog,
// which have tests of their own.
type reference struct {
	policy *Policy
	apps   []refApp // accepted apps
}

type refApp struct {
	id, env  string
	names    []string
	http     []VHost
	fixedIP  netip.Addr
	running  []Task // tasks in TASK_RUNNING
	live     []Task // running tasks that pass their health checks
	portsLbl []Port
}

// newReference takes apps in order; a later app with the same id replaces
// an earlier one.
func newReference(p *Policy, apps []App) *reference {
	r := &reference{policy: p}
	byID := map[string]int{}
	var order []App
	for _, a := range apps {
		if i, ok := byID[a.ID]; ok {
			order[i] = a
			continue
		}
		byID[a.ID] = len(order)
		order = append(order, a)
	}
	for _, a := range order {
		if ra, ok := r.accept(a); ok {
			r.apps = append(r.apps, ra)
		}
	}
	return r
}

// accept applies the label rules: a valid id and labels, and a fixed IP
// that is the Docker ip parameter, no loopback, link-local or broadcast
// address unless allowed, and inside the ip_pool ranges when there are any.
func (r *reference) accept(a App) (refApp, bool) {
	if a.ID == "" {
		return refApp{}, false
	}
	l, err := r.policy.Labels().Parse(a.Labels)
	if err != nil {
		return refApp{}, false
	}
	ra := refApp{id: a.ID, env: l.Env, names: l.Names, http: l.HTTP, fixedIP: l.IP, portsLbl: l.Ports}
	if ra.env == "" {
		ra.env = r.policy.DefaultEnv()
	}
	if ip := l.IP; ip.IsValid() {
		if a.DockerIP != "" {
			if d, err := netip.ParseAddr(strings.TrimSpace(a.DockerIP)); err != nil || d.Unmap() != ip {
				return refApp{}, false
			}
		}
		allowed := func(kind string) bool { return slices.Contains(r.policy.cfgAllow(), kind) }
		if ip.IsLoopback() && !allowed("loopback") || ip.IsLinkLocalUnicast() && !allowed("link-local") ||
			ip == netip.MustParseAddr("255.255.255.255") && !allowed("broadcast") {
			return refApp{}, false
		}
		if pools := r.policy.pools; len(pools) > 0 {
			inside := false
			for _, pool := range pools {
				if pool.Contains(ip) {
					edge := ip.Is4() && pool.Bits() < 31 && (ip == pool.Masked().Addr() || ip == lastAddr(pool))
					inside = !edge || allowed("broadcast")
				}
			}
			if !inside {
				return refApp{}, false
			}
		}
	}
	for _, t := range a.Tasks {
		if t.State != "TASK_RUNNING" {
			continue
		}
		ra.running = append(ra.running, t)
		healthy := len(t.Health) > 0
		for _, h := range t.Health {
			healthy = healthy && h
		}
		if a.HealthChecks == 0 || healthy {
			ra.live = append(ra.live, t)
		}
	}
	return ra, true
}

// cfgAllow lists the allowed address kinds, for the reference only.
func (p *Policy) cfgAllow() []string {
	var out []string
	for _, kind := range []string{"loopback", "link-local", "broadcast"} {
		if bit, _ := addrKindOf(kind); p.allow&bit != 0 {
			out = append(out, kind)
		}
	}
	return out
}

// usable is an address Marathon reports that a client or backend can have.
func usable(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	return a, !a.IsUnspecified() && !a.IsMulticast()
}

// backends: the fixed IP while a task is live; else the live tasks' own
// addresses; else the agents of live tasks.
func (ra refApp) backends() []netip.Addr {
	var out []netip.Addr
	for _, t := range ra.live {
		if ra.fixedIP.IsValid() {
			out = append(out, ra.fixedIP)
			continue
		}
		own := false
		for _, ip := range t.IPs {
			if a, ok := usable(ip); ok {
				out = append(out, a)
				own = true
			}
		}
		if !own {
			if a, ok := usable(t.Host); ok {
				out = append(out, a)
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// claims: the fixed IP and the running tasks' own addresses, while the app
// runs a task.
func (ra refApp) claims(addr netip.Addr) bool {
	if len(ra.running) == 0 {
		return false
	}
	if ra.fixedIP == addr {
		return true
	}
	for _, t := range ra.running {
		for _, ip := range t.IPs {
			if a, ok := usable(ip); ok && a == addr {
				return true
			}
		}
	}
	return false
}

type refAnswer struct {
	kind     Kind
	env      string
	addrs    []netip.Addr
	children bool
}

// decide walks the chain over the apps claiming key (by has).
func (r *reference) decide(env string, has func(refApp) bool) (refAnswer, bool) {
	claimed := false
	for _, a := range r.apps {
		claimed = claimed || has(a)
	}
	if !claimed {
		return refAnswer{}, false
	}
	chain := r.policy.Chain(env)
	for _, e := range chain {
		var addrs []netip.Addr
		for _, a := range r.apps {
			if a.env == e && has(a) {
				addrs = append(addrs, a.backends()...)
			}
		}
		if len(addrs) > 0 {
			slices.SortFunc(addrs, netip.Addr.Compare)
			return refAnswer{kind: Served, env: e, addrs: slices.Compact(addrs)}, true
		}
	}
	for _, e := range chain {
		for _, a := range r.apps {
			if a.env == e && has(a) {
				return refAnswer{kind: Held, env: e}, true
			}
		}
	}
	return refAnswer{kind: Foreign}, true
}

func (r *reference) resolve(env, name string) refAnswer {
	name = strings.TrimSuffix(name, ".") // as Resolve documents
	named := func(n string) func(refApp) bool {
		return func(a refApp) bool { return slices.Contains(a.names, n) }
	}
	below := false
	for _, a := range r.apps {
		for _, n := range a.names {
			below = below || strings.HasSuffix(n, "."+name)
		}
		for _, b := range a.backends() {
			if len(a.names) > 0 {
				rev := reverseOf(b)
				below = below || strings.HasSuffix(rev, "."+name) // the PTR owner itself is Reverse's to answer
			}
		}
	}
	if answer, ok := r.decide(env, named(name)); ok {
		answer.children = below && answer.kind != Served
		return answer
	}
	if below {
		return refAnswer{kind: EmptyNonTerminal, children: true}
	}
	labels := strings.Split(name, ".")
	for i := 1; i < len(labels); i++ {
		if answer, ok := r.decide(env, named(strings.Join(labels[i:], "."))); ok {
			if answer.kind == Served {
				answer.kind = BelowServed
			}
			return answer
		}
	}
	return refAnswer{}
}

func (r *reference) resolveVHost(env, host string) refAnswer {
	answer, _ := r.decide(env, func(a refApp) bool {
		return slices.ContainsFunc(a.http, func(v VHost) bool { return v.Host == host })
	})
	return answer
}

// envOf: an app claiming the address (one env: that env; several: the
// default env, a conflict); else the most specific CIDR rule; else default.
func (r *reference) envOf(addr netip.Addr) (string, Classification) {
	var envs []string
	for _, a := range r.apps {
		if a.claims(addr) && !slices.Contains(envs, a.env) {
			envs = append(envs, a.env)
		}
	}
	switch {
	case len(envs) == 1:
		return envs[0], ByApp
	case len(envs) > 1:
		return r.policy.DefaultEnv(), ByConflict
	}
	best := -1
	env := ""
	for _, rule := range r.policy.CIDRRules() {
		if rule.Prefix.Contains(addr) && rule.Prefix.Bits() > best {
			best, env = rule.Prefix.Bits(), rule.Env
		}
	}
	if best >= 0 {
		return env, ByCIDR
	}
	return r.policy.DefaultEnv(), ByDefault
}

func (r *reference) reverse(addr netip.Addr) []NameRef {
	var out []NameRef
	for _, a := range r.apps {
		if slices.Contains(a.backends(), addr) {
			for _, n := range a.names {
				out = append(out, NameRef{n, a.env})
			}
		}
	}
	slices.SortFunc(out, func(x, y NameRef) int {
		return strings.Compare(x.Name+" "+x.Env, y.Name+" "+y.Env)
	})
	return slices.Compact(out)
}

// reverseOf is the PTR owner of an address, spelled out naively.
func reverseOf(a netip.Addr) string {
	var labels []string
	if a.Is4() {
		for _, b := range a.As4() {
			labels = append([]string{fmt.Sprint(b)}, labels...)
		}
		return strings.Join(labels, ".") + ".in-addr.arpa"
	}
	for _, b := range a.As16() {
		labels = append([]string{fmt.Sprintf("%x", b&0xf), fmt.Sprintf("%x", b>>4)}, labels...)
	}
	return strings.Join(labels, ".") + ".ip6.arpa"
}

// agree fails the test where the snapshot and the reference disagree on a
// question about names, vhosts, classification or reverse lookups.
func agree(t *testing.T, s *Snapshot, ref *reference, names, hosts, envs []string, probes []netip.Addr) {
	t.Helper()
	failures := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if failures++; failures <= 10 {
			t.Errorf(format, args...)
		}
	}
	check := func(what string, got Answer, want refAnswer) {
		t.Helper()
		var addrs []netip.Addr
		env := got.Env
		switch got.Kind {
		case Served:
			addrs = got.Service.Addrs
		case BelowServed:
			addrs, env = got.Service.Addrs, got.Service.Env
		case Foreign, EmptyNonTerminal, Unknown:
			env = "" // the reference does not say which env
		}
		if got.Kind != want.kind || env != want.env || !slices.Equal(addrs, want.addrs) || got.Children != want.children {
			fail("%s: got %v env %q addrs %v children %v; reference %v env %q addrs %v children %v",
				what, got.Kind, env, addrs, got.Children, want.kind, want.env, want.addrs, want.children)
		}
	}
	for _, env := range envs {
		for _, name := range names {
			check(fmt.Sprintf("Resolve(%s, %s)", env, name), s.Resolve(env, name), ref.resolve(env, name))
		}
		for _, host := range hosts {
			check(fmt.Sprintf("ResolveVHost(%s, %s)", env, host), s.ResolveVHost(env, host), ref.resolveVHost(env, host))
		}
	}
	conflicts := map[netip.Addr]bool{}
	for _, c := range s.Conflicts() {
		conflicts[c.Addr] = true
	}
	for _, addr := range probes {
		env, how := s.EnvOf(addr)
		wantEnv, wantHow := ref.envOf(addr)
		if env != wantEnv || how != wantHow {
			fail("EnvOf(%s) = %s %v; reference %s %v", addr, env, how, wantEnv, wantHow)
		}
		if conflicts[addr] != (wantHow == ByConflict) {
			fail("Conflicts() lists %s: %v; reference %v", addr, conflicts[addr], wantHow == ByConflict)
		}
		if got, want := s.Reverse(addr), ref.reverse(addr); !slices.Equal(got, want) {
			fail("Reverse(%s) = %v; reference %v", addr, got, want)
		}
	}
}

// TestReferenceModel: after every step of random Build and Apply
// sequences over a small universe of envs, names and addresses, the
// snapshot answers every question as the reference does.
func TestReferenceModel(t *testing.T) {
	p := mustPolicy(t, PolicyConfig{
		Fallback: []FallbackRule{{"feature-*", "staging"}},
		CIDRs:    []CIDRRule{{netip.MustParsePrefix("10.0.0.0/16"), "lab"}, {netip.MustParsePrefix("10.0.1.0/24"), "feature-vpn"}},
		IPPools:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/23"), netip.MustParsePrefix("fd00::/120")},
		IPAllow:  []string{"link-local"},
	})
	u := newUniverse()
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		current := map[string]App{}
		s := Build(p, nil)
		for step := range 30 {
			var upsert []App
			var remove []string
			for range 1 + rng.IntN(4) {
				a := u.randomApp(rng)
				if rng.IntN(5) == 0 {
					remove = append(remove, a.ID)
				} else {
					upsert = append(upsert, a)
				}
			}
			switch rng.IntN(3) {
			case 0: // Apply
				s = s.Apply(upsert, remove)
				for _, a := range upsert {
					current[a.ID] = a
				}
				for _, id := range remove {
					delete(current, id)
				}
			case 1: // a full resync, as the watcher applies it: every listed app, the missing ones removed
				for _, a := range upsert {
					current[a.ID] = a
				}
				for _, id := range remove {
					delete(current, id)
				}
				s = s.Apply(listOf(current), remove)
			default: // Build from scratch
				for _, a := range upsert {
					current[a.ID] = a
				}
				s = Build(p, listOf(current))
			}
			agree(t, s, newReference(p, listOf(current)), u.queries, u.hosts, u.envs, u.addrs)
			if t.Failed() {
				t.Fatalf("seed %d step %d: apps %+v", seed, step, listOf(current))
			}
		}
	}
}

func listOf(apps map[string]App) []App {
	out := make([]App, 0, len(apps))
	for _, a := range apps {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b App) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// universe is the small world random apps are drawn from, so that they
// collide on names, hosts and addresses.
type universe struct {
	envs, names, hosts, queries []string
	addrs                       []netip.Addr
}

func newUniverse() *universe {
	u := &universe{
		envs:  []string{"integration", "staging", "feature-x", "feature-y", "lab", "feature-vpn"},
		names: []string{"a.example.com", "b.example.com", "c.a.example.com", "x.y.example.com", "db.example.com", "a.example.org"},
		hosts: []string{"a.example.com", "www.example.com", "api.example.com"},
	}
	for _, s := range []string{"10.0.0.1", "10.0.0.2", "10.0.1.3", "10.0.2.4", "fd00::5", "127.0.0.9", "169.254.0.1", "10.0.0.0", "192.0.2.6"} {
		u.addrs = append(u.addrs, netip.MustParseAddr(s))
	}
	u.queries = append(slices.Clone(u.names), "example.com", "y.example.com", "q.a.example.com", "_x._tcp.db.example.com",
		"com", "org", "nope.example.com", "in-addr.arpa", "0.0.10.in-addr.arpa", "1.0.0.10.in-addr.arpa", "2.0.10.in-addr.arpa")
	for _, a := range u.addrs {
		u.queries = append(u.queries, reverseOf(a))
	}
	return u
}

func (u *universe) randomApp(rng *rand.Rand) App {
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	addr := func() string { return u.addrs[rng.IntN(len(u.addrs))].String() }
	labels := map[string]string{}
	if rng.IntN(4) > 0 {
		labels["OAK_ENV"] = pick(u.envs)
	}
	if rng.IntN(5) > 0 {
		labels["OAK_NAMES"] = pick(u.names)
		if rng.IntN(3) == 0 {
			labels["OAK_NAMES"] += "," + pick(u.names)
		}
	}
	if rng.IntN(3) == 0 {
		labels["OAK_HTTP"] = pick(u.hosts)
		if rng.IntN(2) == 0 {
			labels["OAK_HTTP"] += ":8080"
		}
	}
	if rng.IntN(3) == 0 {
		labels["OAK_IP"] = addr()
	}
	if rng.IntN(15) == 0 {
		labels["OAK_NAMES"] = "bad_name.example.com" // rejected
	}
	a := App{ID: fmt.Sprintf("/app-%d", rng.IntN(12)), Labels: labels}
	if rng.IntN(4) == 0 {
		if rng.IntN(2) == 0 {
			a.DockerIP = labels["OAK_IP"]
		} else {
			a.DockerIP = addr()
		}
	}
	if rng.IntN(3) == 0 {
		a.HealthChecks = 1
	}
	for range rng.IntN(3) {
		task := Task{ID: fmt.Sprint(rng.Int()), State: "TASK_RUNNING", Host: addr()}
		switch rng.IntN(4) {
		case 0:
			task.State = "TASK_STAGING"
		case 1:
			task.IPs = nil // host networking
		default:
			task.IPs = []string{addr()}
		}
		for range rng.IntN(3) {
			task.Health = append(task.Health, rng.IntN(3) > 0)
		}
		a.Tasks = append(a.Tasks, task)
	}
	return a
}

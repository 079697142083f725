package nginxctl

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func route(host, env string, backends ...string) Route {
	r := Route{Host: host, Env: env}
	for _, b := range backends {
		ap := netip.MustParseAddrPort(b)
		r.Backends = append(r.Backends, Backend{Addr: ap.Addr(), Port: ap.Port()})
	}
	return r
}

func held(host, env string) Route { return Route{Host: host, Env: env, Held: true} }

func TestValidate(t *testing.T) {
	good := func() Model {
		return Model{
			DefaultEnv: "integration",
			Clients:    []ClientEnv{{netip.MustParseAddr("10.0.0.1"), "feature-x"}, {netip.MustParseAddr("fd00::1"), "staging"}},
			CIDRs:      []CIDREnv{{netip.MustParsePrefix("10.1.2.0/24"), "staging"}, {netip.MustParsePrefix("10.0.0.0/8"), "feature-x"}},
			Default:    []Route{route("a.example.com", "integration", "10.0.0.9:80"), held("b.example.com", "integration")},
			Envs:       []EnvRoutes{{Env: "feature-x", Routes: []Route{route("a.example.com", "feature-x", "10.0.0.1:80", "10.0.0.2:80")}}},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*Model)
		want   string // substring of the error; "" = valid
	}{
		{"good", func(*Model) {}, ""},
		{"empty model", func(m *Model) { *m = Model{DefaultEnv: "integration"} }, ""},
		{"no default env", func(m *Model) { m.DefaultEnv = "" }, "default env: env is empty"},
		{"clients unsorted", func(m *Model) { slices.Reverse(m.Clients) }, "not sorted"},
		{"client mapped v4", func(m *Model) { m.Clients[0].Addr = netip.MustParseAddr("::ffff:10.0.0.1") }, "mapped"},
		{"client zone", func(m *Model) { m.Clients[1].Addr = netip.MustParseAddr("fe80::1%eth0") }, "zone"},
		{"cidr least specific first", func(m *Model) { slices.Reverse(m.CIDRs) }, "most specific first"},
		{"cidr host bits", func(m *Model) { m.CIDRs[0].Prefix = netip.MustParsePrefix("10.1.2.3/24") }, "host bits"},
		{"route host upper case", func(m *Model) { m.Default[0].Host = "A.example.com" }, "only [a-z0-9.-]"},
		{"route held with backends", func(m *Model) { m.Default[1].Backends = m.Default[0].Backends }, "held with backends"},
		{"route served without backends", func(m *Model) { m.Default[0].Backends = nil }, "served without backends"},
		{"backend port 0", func(m *Model) { m.Default[0].Backends[0].Port = 0 }, "port is 0"},
		{"backends unsorted", func(m *Model) { slices.Reverse(m.Envs[0].Routes[0].Backends) }, "not sorted"},
		{"routes unsorted", func(m *Model) { slices.Reverse(m.Default) }, "not sorted"},
		{"default env among envs", func(m *Model) { m.Envs[0].Env = "integration" }, "default env integration is listed"},
		{"env name with semicolon", func(m *Model) { m.Envs[0].Env = "x;y" }, "must match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			tc.change(&m)
			err := m.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// hostile is a corpus of values that would change an Nginx config if they
// reached it unchecked.
var hostile = []string{
	"a.example.com;",
	"a.example.com}",
	"a.example.com\ninclude /etc/passwd;",
	"a.example.com include /etc/passwd",
	"$host.example.com",
	`"a.example.com"`,
	"'a'.example.com",
	"a.example.com\n}\nserver { listen 9999; location / { content_by_lua_block { os.execute('id') } } }",
	"a.example.com; ssl_engine pkcs11",
	"\u0430pp1.example.com",  // Cyrillic a
	"app1.example.com\u200b", // zero-width space
	"app1.ex\u0430mple.com",  // Cyrillic a in the domain
	"app1.example.com.",      // trailing dot: not the form the model carries
	strings.Repeat("a", 10240) + ".example.com",
	"-a.example.com",
	"a..example.com",
	"*.example.com",
	"",
}

// TestSanitizeHostile: every hostile host and env is left out with a
// reason, and the rest of the model stays.
func TestSanitizeHostile(t *testing.T) {
	m := Model{DefaultEnv: "integration", Default: []Route{route("app1.example.com", "integration", "127.0.1.10:8080")}}
	for _, h := range hostile {
		m.Default = append(m.Default, route(h, "integration", "127.0.1.10:8080"))
		m.Envs = append(m.Envs, EnvRoutes{Env: h, Routes: []Route{route("app2.example.com", "integration", "127.0.1.10:8080")}})
	}
	m.Default = append(m.Default,
		route("app1.other-team.com", "integration", "127.0.1.10:8080"), // outside the domains
		route("app3.example.com", "inte;gration", "127.0.1.10:8080"),   // hostile serving env
		Route{Host: "app4.example.com", Env: "integration", Backends: []Backend{{Port: 80}}},
		route("app5.example.com", "integration", "[::ffff:127.0.0.1]:80"),
		route("app6.example.com", "integration", "224.0.0.1:80"),
	)
	m.Clients = []ClientEnv{{netip.MustParseAddr("127.0.2.10"), "x\ny"}, {netip.Addr{}, "feature-x"}}
	m.CIDRs = []CIDREnv{{netip.MustParsePrefix("10.0.0.0/8"), "$oak_env"}, {netip.Prefix{}, "feature-x"}}

	domains, err := ParseDomains("example.com")
	if err != nil {
		t.Fatal(err)
	}
	clean, rejected, err := m.Sanitize(domains)
	if err != nil {
		t.Fatal(err)
	}
	if err := clean.Validate(); err != nil {
		t.Fatalf("Sanitize's output does not validate: %v", err)
	}
	want := Model{DefaultEnv: "integration", Default: []Route{route("app1.example.com", "integration", "127.0.1.10:8080")}}
	if !modelsEqual(clean, want) {
		t.Errorf("Sanitize kept %+v, want %+v", clean, want)
	}
	// One rejection per hostile item, each with a reason; a route whose
	// only backend is bad has two (the backend, then the route).
	if wantN := 2*len(hostile) + 2 + 2*3 + 2 + 2; len(rejected) != wantN {
		t.Errorf("%d rejections, want %d: %+v", len(rejected), wantN, rejected)
	}
	for _, r := range rejected {
		if r.Reason == "" || r.Source == "" {
			t.Errorf("rejection without source or reason: %+v", r)
		}
		if len(r.Host) > maxShownValue+3 || len(r.Env) > maxShownValue+3 {
			t.Errorf("rejection keeps a value of %d bytes", max(len(r.Host), len(r.Env)))
		}
	}
	for _, h := range hostile {
		if !slices.ContainsFunc(rejected, func(r Rejection) bool { return r.Source == "route" && r.Host == shown(h) }) {
			t.Errorf("host %.40q: no route rejection", h)
		}
		if !slices.ContainsFunc(rejected, func(r Rejection) bool { return r.Source == "env" && r.Env == shown(h) }) {
			t.Errorf("env %.40q: no env rejection", h)
		}
	}
	if !slices.ContainsFunc(rejected, func(r Rejection) bool {
		return r.Host == "app1.other-team.com" && strings.Contains(r.Reason, "outside the controller's domains")
	}) {
		t.Errorf("the other team's vhost is not rejected for its domain: %+v", rejected)
	}
}

func TestSanitizeKeepsFirstAndSorts(t *testing.T) {
	m := Model{
		DefaultEnv: "integration",
		Clients:    []ClientEnv{{netip.MustParseAddr("10.0.0.2"), "b"}, {netip.MustParseAddr("10.0.0.1"), "a"}, {netip.MustParseAddr("10.0.0.2"), "c"}},
		CIDRs:      []CIDREnv{{netip.MustParsePrefix("10.0.0.0/8"), "a"}, {netip.MustParsePrefix("10.1.0.0/16"), "b"}},
		Default:    []Route{route("b.example.com", "integration", "10.0.0.2:80", "10.0.0.1:80", "10.0.0.1:80"), route("a.example.com", "integration", "10.0.0.1:80")},
		Envs:       []EnvRoutes{{Env: "b", Routes: []Route{held("a.example.com", "b")}}, {Env: "a", Routes: []Route{held("a.example.com", "a")}}, {Env: "a"}},
	}
	clean, rejected, err := m.Sanitize(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := clean.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(clean.Clients) != 2 || clean.Clients[1].Env != "b" {
		t.Errorf("clients %+v: want the first of each address, sorted", clean.Clients)
	}
	if clean.CIDRs[0].Prefix.Bits() != 16 {
		t.Errorf("cidrs %+v: want most specific first", clean.CIDRs)
	}
	if got := clean.Default[1].Backends; len(got) != 2 || got[0].Addr.String() != "10.0.0.1" {
		t.Errorf("backends %+v: want sorted and deduped", got)
	}
	if len(clean.Envs) != 2 || clean.Envs[0].Env != "a" || len(rejected) != 1 || rejected[0].Source != "env" {
		t.Errorf("envs %+v, rejected %+v: want a, b sorted and the second a rejected", clean.Envs, rejected)
	}
}

func TestModelView(t *testing.T) {
	m := Model{
		DefaultEnv: "integration",
		Default:    []Route{route("a.example.com", "integration", "10.0.0.1:80"), route("c.example.com", "integration", "10.0.0.3:80")},
		Envs: []EnvRoutes{{Env: "feature-x", Routes: []Route{
			route("a.example.com", "feature-x", "10.0.1.1:80"), route("b.example.com", "staging", "10.0.2.2:80"), held("d.example.com", "feature-x"),
		}}},
	}
	host := func(rs []Route) (out []string) {
		for _, r := range rs {
			out = append(out, r.Host+"@"+r.Env)
		}
		return out
	}
	for env, want := range map[string][]string{
		"integration": {"a.example.com@integration", "c.example.com@integration"},
		"feature-x":   {"a.example.com@feature-x", "b.example.com@staging", "c.example.com@integration", "d.example.com@feature-x"},
		"other":       {"a.example.com@integration", "c.example.com@integration"},
	} {
		if got := host(m.View(env)); !slices.Equal(got, want) {
			t.Errorf("View(%s) = %v, want %v", env, got, want)
		}
	}
}

func TestParseDomains(t *testing.T) {
	d, err := ParseDomains(" Example.com., example.org,,example.com")
	if err != nil {
		t.Fatal(err)
	}
	if d.String() != "example.com,example.org" {
		t.Errorf("domains %s", d)
	}
	for host, want := range map[string]bool{"example.com": true, "a.b.example.org": true, "badexample.com": false, "example.com.evil.net": false} {
		if d.Contains(host) != want {
			t.Errorf("Contains(%s) = %v", host, !want)
		}
	}
	if _, err := ParseDomains("example.com;"); err == nil {
		t.Error("a domain with ';' is accepted")
	}
	if !Domains(nil).Contains("anything.net") {
		t.Error("no domains should admit every host")
	}
}

func modelsEqual(a, b Model) bool {
	routesEqual := func(x, y []Route) bool { return slices.EqualFunc(x, y, sameRoute) }
	return a.DefaultEnv == b.DefaultEnv && slices.Equal(a.Clients, b.Clients) && slices.Equal(a.CIDRs, b.CIDRs) &&
		routesEqual(a.Default, b.Default) &&
		slices.EqualFunc(a.Envs, b.Envs, func(x, y EnvRoutes) bool { return x.Env == y.Env && routesEqual(x.Routes, y.Routes) })
}

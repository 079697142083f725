package nginxctl

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

var testOpts = RenderOptions{Listen: "127.0.0.1:8080", Control: netip.MustParseAddrPort("127.0.0.1:8081")}

func renderModel(t testing.TB, m Model, o RenderOptions) Config {
	t.Helper()
	cfg, err := Render(&m, o)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRenderDeterministic(t *testing.T) {
	m := Model{
		DefaultEnv: "integration",
		Clients:    []ClientEnv{{netip.MustParseAddr("10.0.0.1"), "feature-x"}},
		Default:    []Route{route("a.example.com", "integration", "10.0.0.9:80", "10.0.0.8:80"), route("b.example.com", "integration", "10.0.0.7:80", "10.0.0.8:80")},
		Envs:       []EnvRoutes{{Env: "feature-x", Routes: []Route{route("a.example.com", "feature-x", "10.0.0.1:80"), held("c.example.com", "feature-x")}}},
	}
	m, _, _ = m.Sanitize(nil)
	first := renderModel(t, m, testOpts)
	for range 20 {
		if again := renderModel(t, m, testOpts); !bytes.Equal(again.Text, first.Text) || again.Generation != first.Generation {
			t.Fatal("the same model rendered different text")
		}
	}
	if got := liveGeneration(first.Text); got != first.Generation {
		t.Errorf("liveGeneration = %q, want %q", got, first.Generation)
	}
	changed := m
	changed.Default = append([]Route{}, m.Default...)
	changed.Default[1] = route("b.example.com", "integration", "10.0.0.7:81")
	if other := renderModel(t, changed, testOpts); other.Generation == first.Generation {
		t.Error("a changed model kept its generation")
	}
	text := string(first.Text)
	for _, want := range []string{
		"    10.0.0.1/32 feature-x;\n",
		"    \"feature-x|a.example.com\" 10.0.0.1:80;\n",
		"    \"feature-x|c.example.com\" held:feature-x;\n",
		"    held:feature-x feature-x;\n",
		"return 200 \"" + first.Generation + "\\n\";",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %q", want)
		}
	}
	// One upstream block per distinct set of several backends.
	if n := strings.Count(text, "upstream oak_"); n != 2 {
		t.Errorf("%d upstream blocks, want 2 (two multi-backend routes, single ones have none)", n)
	}
}

func TestRenderRefusesInvalid(t *testing.T) {
	m := Model{DefaultEnv: "integration", Default: []Route{route("a.example.com;", "integration", "10.0.0.1:80")}}
	if _, err := Render(&m, testOpts); err == nil {
		t.Error("an invalid model rendered")
	}
	for _, o := range []RenderOptions{
		{Listen: "127.0.0.1:8080; include x", Control: testOpts.Control},
		{Listen: ":0", Control: testOpts.Control},
		{Listen: ":8080", Control: netip.MustParseAddrPort("10.0.0.1:8081")},
		{Listen: ":8080", Control: testOpts.Control, EnvHeader: "X-Env;"},
	} {
		if _, err := Render(&Model{DefaultEnv: "integration"}, o); err == nil {
			t.Errorf("options %+v rendered", o)
		}
	}
}

// TestRenderSizeFollowsOwnRoutes: an env adds one geo line per client it
// owns and one map line per route it owns, nothing per default route.
func TestRenderSizeFollowsOwnRoutes(t *testing.T) {
	lines := func(m Model) int { return bytes.Count(renderModel(t, m, testOpts).Text, []byte("\n")) }
	base := lines(syntheticModel(1000, 1, 0))
	if got := lines(syntheticModel(1000, 100, 0)) - base; got != 99 {
		t.Errorf("99 envs with one client each and no own routes added %d lines, want 99", got)
	}
	if got := lines(syntheticModel(1000, 100, 10)) - base; got != 99+99*10 {
		t.Errorf("99 envs owning one client and 10 routes each added %d lines, want %d", got, 99+99*10)
	}
}

// syntheticModel has hosts routes in the default env and envs-1 other
// envs, each owning its first own hosts, with one client each.
func syntheticModel(hosts, envs, own int) Model {
	m := Model{DefaultEnv: "integration"}
	for h := range hosts {
		m.Default = append(m.Default, route(fmt.Sprintf("app%05d.example.com", h), "integration", fmt.Sprintf("10.1.%d.%d:8080", h/250, h%250+1)))
	}
	for e := 1; e < envs; e++ {
		env := fmt.Sprintf("feature-%03d", e)
		m.Clients = append(m.Clients, ClientEnv{netip.AddrFrom4([4]byte{10, 2, byte(e / 250), byte(e%250 + 1)}), env})
		var routes []Route
		for h := range own {
			routes = append(routes, route(fmt.Sprintf("app%05d.example.com", h), env, fmt.Sprintf("10.3.%d.%d:8080", e, h+1)))
		}
		if len(routes) > 0 {
			m.Envs = append(m.Envs, EnvRoutes{Env: env, Routes: routes})
		}
	}
	return m
}

func TestMapKeyEscapesParameters(t *testing.T) {
	m := Model{DefaultEnv: "integration", Default: []Route{route("default", "integration", "10.0.0.1:80"), route("include", "integration", "10.0.0.2:80")}}
	text := string(renderModel(t, m, testOpts).Text)
	if !strings.Contains(text, "    \\default 10.0.0.1:80;\n") || !strings.Contains(text, "    \\include 10.0.0.2:80;\n") {
		t.Errorf("hosts named like map parameters are not escaped:\n%s", text)
	}
}
